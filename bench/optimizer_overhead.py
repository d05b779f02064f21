"""Time per training step: Adam vs Balanced (exact / lagged) vs HierarchicalBalanced, on a small CompressAI codec.

Usage: .venv/bin/python bench/optimizer_overhead.py [--rounds 30] [--warmup 3] [--batch 8] [--patch 128]

Model: `compressai.models.MeanScaleHyperprior(N=64, M=96)` on the CPU (so the numbers are about the optimizer
and the extra forward, not about HPCM), batch 8 of 128x128 random crops (with flips) of scikit-image photos
(astronaut, coffee, chelsea; no network). Loss `lmbda*255^2*MSE + bpp` (lmbda 0.013). Every variant also does
CompressAI's aux step (Adam, lr 1e-3, on `aux_loss()`, i.e. the EntropyBottleneck quantiles), the same in all.

Variants (each with its own copy of the same initial model, all in this one run):
- `adam`: `torch.optim.Adam` on the plain sum, with `clip_grad_norm_(1.0)` as HPCM's train.py does.
- `cautious_sum`: `Balanced` step (clip + Cautious Adam) on the plain sum: the cost of the step alone.
- `balanced_lagged`: `Balanced(update_mode='lagged')` on (distortion, bpp): no extra forward.
- `balanced_exact`: `Balanced(update_mode='exact')`: + a no-grad forward on the same batch and `update_task_weights`.
- `hierarchical_lagged` / `hierarchical_exact`: `HierarchicalBalanced` on 5 synthetic tasks that sum to the same
  loss: the y rate split by latent position into s1 (1/16 of positions, plus the z rate), s2 (3/16), s3 (3/4);
  the distortion split into the top and bottom halves of the image (s1, s2).

Rounds are interleaved (one step of each variant per round, the order rotated every round) so drifts in machine
speed hit all variants alike; `--warmup` rounds are not timed. We report the median seconds per step, the
median optimizer-step time, and ratios to `adam` from this run. Writes runs/bench/optimizer_overhead.json.
Goals: lagged <= 1.05x Adam, exact <= 1.5x Adam.
"""
from __future__ import annotations
import argparse, copy, os, statistics, time

import numpy as np
import torch
import torch.nn.functional as F
from compressai.models import MeanScaleHyperprior

from hpcm_balanced.core import seed_everything, write_bench
from hpcm_balanced.optim import Balanced, HierarchicalBalanced

LMBDA = 0.013


def photo_batches(n_batches: int, batch: int, patch: int, seed: int = 0) -> list[torch.Tensor]:
    "`n_batches` tensors (batch, 3, patch, patch) in [0, 1]: random crops + flips of scikit-image photos."
    import skimage.data
    photos = [torch.from_numpy(np.ascontiguousarray(getattr(skimage.data, n)())).permute(2, 0, 1).float() / 255
              for n in ('astronaut', 'coffee', 'chelsea')]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        crops = []
        for _ in range(batch):
            img = photos[rng.integers(len(photos))]
            top = rng.integers(img.shape[1] - patch + 1); left = rng.integers(img.shape[2] - patch + 1)
            c = img[:, top:top + patch, left:left + patch]
            if rng.random() < 0.5: c = c.flip(2)
            if rng.random() < 0.5: c = c.flip(1)
            crops.append(c)
        out.append(torch.stack(crops).contiguous())
    return out


def bits(likelihoods: torch.Tensor) -> torch.Tensor:
    return -torch.log2(likelihoods)


def two_tasks(out: dict, x: torch.Tensor) -> torch.Tensor:
    "(distortion, bpp): lmbda*255^2*MSE and the total bpp (y + z)."
    B, _, H, W = x.shape
    distortion = LMBDA * 255 ** 2 * F.mse_loss(out['x_hat'], x)
    bpp = sum(bits(l).sum() for l in out['likelihoods'].values()) / (B * H * W)
    return torch.stack([distortion, bpp])


def five_tasks(out: dict, x: torch.Tensor) -> torch.Tensor:
    "Five synthetic per-scale tasks in HIERARCHICAL_TASKS order; they sum to `two_tasks(out, x).sum()`."
    B, _, H, W = x.shape
    se = LMBDA * 255 ** 2 * (out['x_hat'] - x) ** 2 / x.numel()
    d_s1, d_s2 = se[:, :, :H // 2].sum(), se[:, :, H // 2:].sum()
    by = bits(out['likelihoods']['y'])
    h = torch.arange(by.shape[2]).view(-1, 1); w = torch.arange(by.shape[3]).view(1, -1)
    s1 = (h % 4 == 0) & (w % 4 == 0)
    s2 = (h % 2 == 0) & (w % 2 == 0) & ~s1
    s3 = ~(s1 | s2)
    n = B * H * W
    r = [(by * m).sum() / n for m in (s1, s2, s3)]
    r_z = bits(out['likelihoods']['z']).sum() / n
    return torch.stack([d_s1, r[0] + r_z, d_s2, r[1], r[2]])


class Variant:
    "One model + optimizer(s) + the step it takes; `step(x)` returns (total seconds, optimizer-step seconds)."

    def __init__(self, name: str, model: torch.nn.Module, lr: float = 1e-4):
        self.name, self.model = name, model
        net = [p for n, p in model.named_parameters() if not n.endswith('quantiles')]
        aux = [p for n, p in model.named_parameters() if n.endswith('quantiles')]
        self.aux_opt = torch.optim.Adam(aux, lr=1e-3)
        if name == 'adam':
            self.opt, self.tasks = torch.optim.Adam(net, lr=lr), two_tasks
        elif name == 'cautious_sum':
            self.opt, self.tasks = Balanced(net, lr=lr, n_tasks=2), two_tasks
        elif name.startswith('balanced_'):
            self.opt = Balanced(net, lr=lr, n_tasks=2, gamma=0.001, update_mode=name.split('_')[1])
            self.tasks = two_tasks
        elif name.startswith('hierarchical_'):
            self.opt = HierarchicalBalanced(net, lr=lr, update_mode=name.split('_')[1])
            self.tasks = five_tasks
        else:
            raise ValueError(f"variant={name!r} is unknown; expected one of {VARIANTS}.")
        self.net = net

    def step(self, x: torch.Tensor) -> tuple[float, float]:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        losses = self.tasks(self.model(x), x)
        weighted = isinstance(self.opt, Balanced) and self.name != 'cautious_sum'
        loss = self.opt.weighted_loss(losses) if weighted else losses.sum()
        loss.backward()
        t1 = time.perf_counter()
        if isinstance(self.opt, Balanced):
            self.opt.step()
        else:
            torch.nn.utils.clip_grad_norm_(self.net, 1.0)
            self.opt.step()
        t2 = time.perf_counter()
        if weighted and self.opt.update_mode == 'exact':
            with torch.no_grad():
                self.opt.update_task_weights(self.tasks(self.model(x), x))
        self.aux_opt.zero_grad(set_to_none=True)
        self.model.aux_loss().backward()
        self.aux_opt.step()
        t3 = time.perf_counter()
        return t3 - t0, t2 - t1


VARIANTS = ('adam', 'cautious_sum', 'balanced_lagged', 'balanced_exact', 'hierarchical_lagged', 'hierarchical_exact')


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rounds', type=int, default=30, help='timed steps per variant')
    ap.add_argument('--warmup', type=int, default=3, help='untimed steps per variant first')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--patch', type=int, default=128)
    ap.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    args = ap.parse_args(argv)
    if 'adam' not in args.variants: ap.error("--variants must include 'adam' (the reference for the ratios)")
    seed_everything(0)
    base = MeanScaleHyperprior(N=64, M=96).train()
    variants = [Variant(n, copy.deepcopy(base)) for n in args.variants]
    batches = photo_batches(10, args.batch, args.patch)
    total = {v.name: [] for v in variants}; opt_t = {v.name: [] for v in variants}
    load_before = os.getloadavg()[0]
    t_start = time.perf_counter()
    for r in range(args.warmup + args.rounds):
        x = batches[r % len(batches)]
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:          # rotate the order every round
            seed_everything(1000 + r)                   # same quantization noise draw for every variant
            t, to = v.step(x)
            if r >= args.warmup: total[v.name].append(t); opt_t[v.name].append(to)
        if r == args.warmup - 1: print(f'warm-up done ({time.perf_counter() - t_start:.1f} s)')
    ref = statistics.median(total['adam'])
    results = {}
    for v in variants:
        med = statistics.median(total[v.name])
        q = np.percentile(total[v.name], [25, 75]).tolist()
        results[v.name] = dict(median_s=med, iqr_s=q, mean_s=statistics.fmean(total[v.name]),
                               optimizer_step_median_s=statistics.median(opt_t[v.name]),
                               ratio_to_adam=med / ref, n=len(total[v.name]))
        if isinstance(v.opt, Balanced) and v.name != 'cautious_sum':
            tw = v.opt.get_task_weights()
            results[v.name]['task_weights_at_end'] = tw if isinstance(tw, dict) else tw.tolist()
    goals = {}
    for name, limit in (('balanced_lagged', 1.05), ('hierarchical_lagged', 1.05),
                        ('balanced_exact', 1.5), ('hierarchical_exact', 1.5)):
        if name in results:
            goals[name] = dict(limit=limit, ratio=results[name]['ratio_to_adam'],
                               met=results[name]['ratio_to_adam'] <= limit)
    print(f"{'variant':22s} {'median s/step':>14s} {'opt.step s':>11s} {'x Adam':>7s}")
    for n, r in results.items():
        print(f"{n:22s} {r['median_s']:14.4f} {r['optimizer_step_median_s']:11.4f} {r['ratio_to_adam']:7.3f}")
    for n, g in goals.items(): print(f"goal {n}: {g['ratio']:.3f} <= {g['limit']}  {'met' if g['met'] else 'NOT met'}")
    payload = dict(config=dict(model='MeanScaleHyperprior(N=64, M=96)', device='cpu', batch=args.batch,
                               patch=args.patch, rounds=args.rounds, warmup=args.warmup, lmbda=LMBDA,
                               data='scikit-image astronaut/coffee/chelsea random crops + flips',
                               aux='Adam(lr=1e-3) on model.aux_loss() every step, all variants',
                               adam='torch.optim.Adam(lr=1e-4) + clip_grad_norm_(1.0)',
                               threads=torch.get_num_threads()),
                   results=results, goals=goals, wall_s=time.perf_counter() - t_start,
                   load_average_1min=dict(before=load_before, after=os.getloadavg()[0],
                                          note='other processes on the machine inflate absolute times; the '
                                               'interleaved rounds keep the ratios comparable'))
    path = write_bench('optimizer_overhead', payload)
    print(f'wrote {path}')
    return payload


if __name__ == '__main__':
    main()
