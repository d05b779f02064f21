"""Training throughput (images/s) of HPCM-tiny through the real training step, per optimizer.

Usage: .venv/bin/python bench/train_throughput.py [--rounds 8] [--warmup 2] [--batch 4] [--patch 128] [--device auto]

Each variant is a `hpcm_balanced.train.Trainer` (same seed, so the same initial HPCM-tiny) and is timed through
`Trainer.train_step`, i.e. exactly what a run does per batch: forward, R-D loss, task losses, backward, clipping,
the optimizer step and, for `exact`, the second no-grad forward + `update_task_weights`:

- `adam`: `torch.optim.Adam` on `lmbda*255^2*MSE + bpp` with `clip_grad_norm_(1.0)`.
- `balanced_exact` / `balanced_lagged`: `Balanced` (FAMO weights + Cautious Adam) on (distortion, bpp).
- `hierarchical_exact` / `hierarchical_lagged`: `HierarchicalBalanced` on the five real per-scale tasks.

The batches are random crops of the built-in photos (the same batches for every variant). Rounds are interleaved
(one step of each variant per round, order rotated) so drifts in machine speed hit all alike; `--warmup` rounds are
not timed. Reports the median seconds per step, images/s = batch / median, and ratios to `adam` from this one run
(compare ratios, not absolute numbers, across machines). Writes runs/bench/train_throughput.json.
"""
from __future__ import annotations
import argparse, os, shutil, statistics, tempfile, time

import torch

from hpcm_balanced.core import write_bench
from hpcm_balanced.train import Trainer, TrainConfig

VARIANTS = {
    'adam': dict(),
    'balanced_exact': dict(use_balanced=True, balanced_update='exact'),
    'balanced_lagged': dict(use_balanced=True, balanced_update='lagged'),
    'hierarchical_exact': dict(use_hierarchical=True, balanced_update='exact'),
    'hierarchical_lagged': dict(use_hierarchical=True, balanced_update='lagged'),
}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rounds', type=int, default=8)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--patch', type=int, default=128)
    ap.add_argument('--device', default='auto')
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix='hpcm-bench-')
    try: return _bench(args, tmp)
    finally: shutil.rmtree(tmp, ignore_errors=True)      # the runs' folders (checkpoints): scratch


def _bench(args, tmp: str) -> dict:
    trainers = {}
    for name, kw in VARIANTS.items():
        cfg = TrainConfig(run_name=name, runs_dir=tmp, batch_size=args.batch, patch_size=args.patch, device=args.device,
                          wandb_mode='disabled', progress=False, plots=False, **kw)
        trainers[name] = Trainer(cfg)
    first = next(iter(trainers.values()))
    n_batches = args.rounds + args.warmup
    it = iter(first.train_loader)
    batches = []
    for _ in range(n_batches):
        try: batches.append(next(it))
        except StopIteration:
            it = iter(first.train_loader); batches.append(next(it))
    names = list(trainers)
    times = {n: [] for n in names}
    for r in range(n_batches):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            t = trainers[n]
            x = batches[r].to(t.device)
            if t.device.type == 'cuda': torch.cuda.synchronize()
            t0 = time.perf_counter()
            row = t.train_step(x)
            if t.device.type == 'cuda': torch.cuda.synchronize()
            if r >= args.warmup: times[n].append(time.perf_counter() - t0)
            assert row is not None, f'{n}: step skipped (non-finite)'
    for t in trainers.values(): t.close()           # the run locks
    med = {n: statistics.median(v) for n, v in times.items()}
    results = {
        'model': 'hpcm_tiny', 'device': str(first.device), 'batch': args.batch, 'patch': args.patch,
        'rounds': args.rounds, 'warmup': args.warmup, 'load_average_1min': os.getloadavg()[0],
        'gpu_lent': torch.cuda.is_available(),
        'seconds_per_step_median': med,
        'images_per_s': {n: args.batch / m for n, m in med.items()},
        'ratio_to_adam': {n: m / med['adam'] for n, m in med.items()},
        'note': ('CPU only: no GPU is lent to this task. Step = forward + loss + backward + clip + optimizer step '
                 '(+ the no-grad second forward for exact). Other processes on the machine inflate absolute numbers; '
                 'the interleaved rounds keep the ratios comparable.'),
    }
    path = write_bench('train_throughput', results)
    for n in names:
        print(f"{n:>20}: {med[n]:.3f} s/step, {args.batch / med[n]:.2f} images/s, {med[n] / med['adam']:.2f}x adam")
    print(f"wrote {path}")
    return results


if __name__ == '__main__':
    main()
