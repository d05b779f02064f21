"""The GPU check (issue 14): one script, at most about 8 minutes on one GPU, writes runs/bench/gpu_check.json.

Usage:
    python bench/gpu_check.py                       # on a machine with a CUDA GPU
    python bench/gpu_check.py --checkpoint HPCM_Base_0013.pth.tar   # time the codec with the authors' weights
    python bench/gpu_check.py --dry-run             # on a CPU: the same plumbing with HPCM-tiny, tiny sizes, seconds

Sections, in this order (each one timed, its failure recorded without stopping the others; a section that would not
fit in what is left of `--budget-s` is skipped and says so):

1. `cuda_cells`: `nbdev_test --flags cuda` on the notebooks that hold `#|cuda` cells.
2. `amp_vs_fp32`: HPCM-Base trained `--amp-steps` steps in bf16 autocast and in fp32 from the same seed on the same
   batches; the losses and bpp must be finite and close (mean of the last 20 steps within 5%).
3. `throughput`: training images/s of HPCM-Base at the authors' batch (32 x 256x256) through the real training
   step, for Adam, Balanced exact / lagged and hierarchical, with and without `channels_last`, and with
   `torch.compile` for Adam and Balanced lagged; ratios to plain Adam from the same run.
4. `codec`: Kodak encode / decode time per image of HPCM-Base (the authors report 81.8 / 81.3 ms), median over the
   images, CUDA synchronised, bpp from the bytes.
5. `gpu_smoke`: the `gpu-smoke` study preset (every arm of the GPU study for 20 steps) through `hpcm-sweep`.

Random weights are used unless `--checkpoint` names the authors' HPCM-Base file (coding speed depends a little on
the symbols, so report which). Commit the JSON under results/gpu/ with the GPU's name.
"""
from __future__ import annotations
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time, traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hpcm_balanced.core import write_bench, seed_everything                 # noqa: E402
from hpcm_balanced.train import Trainer, TrainConfig                         # noqa: E402

OBJECTIVES = {'adam': {}, 'balanced_exact': dict(use_balanced=True, balanced_update='exact'),
              'balanced_lagged': dict(use_balanced=True, balanced_update='lagged'),
              'hierarchical': dict(use_hierarchical=True, balanced_update='exact')}


def sizes(dry: bool) -> dict:
    "Model, batch, crop, step counts: the real check, or the CPU dry run."
    if dry: return dict(model='hpcm_tiny', batch=2, patch=128, amp_steps=6, warmup=1, timed=2, device='cpu', images=2)
    return dict(model='hpcm_base', batch=32, patch=256, amp_steps=200, warmup=3, timed=10, device='cuda', images=24)


def trainer(tmp: Path, name: str, s: dict, **kw) -> Trainer:
    cfg = TrainConfig(model=s['model'], batch_size=s['batch'], patch_size=s['patch'], device=s['device'], runs_dir=str(tmp),
                      run_name=name, overwrite=True, eval_images=0, val_images=1, progress=False, plots=False,
                      wandb_mode='disabled', deterministic=False, lr=1e-4, **kw)
    return Trainer(cfg)


def batches(s: dict, n: int, seed: int = 0) -> list[torch.Tensor]:
    "`n` fixed training batches of random crops of the built-in photos (the same for every variant)."
    from hpcm_balanced.data import BuiltinDataset
    ds, g = BuiltinDataset(s['patch'], train=True), torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    return [torch.stack([ds[int(torch.randint(len(ds), (1,), generator=g))] for _ in range(s['batch'])]) for _ in range(n)]


def sync(dev: str) -> None:
    if dev == 'cuda': torch.cuda.synchronize()


def cuda_cells(s: dict, dry: bool, tmp: Path) -> dict:
    nbs = sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if '#|cuda' in p.read_text() or '#| cuda' in p.read_text())
    cmd = [shutil.which('nbdev_test') or 'nbdev_test', '--flags', 'cuda', '--n_workers', '1']
    out = dict(notebooks=[p.name for p in nbs], command=' '.join(cmd) + ' --path <notebook>')
    if dry: return {**out, 'ran': False, 'why': 'dry run: listed only'}
    res = {}
    for p in nbs:
        r = subprocess.run(cmd + ['--path', str(p)], cwd=ROOT, capture_output=True, text=True)
        res[p.name] = dict(returncode=r.returncode, tail=(r.stdout + r.stderr)[-1500:])
    return {**out, 'ran': True, 'results': res, 'passed': all(v['returncode'] == 0 for v in res.values())}


def amp_vs_fp32(s: dict, dry: bool, tmp: Path) -> dict:
    data, out = batches(s, s['amp_steps']), {}
    for mode, amp in (('bf16', True), ('fp32', False)):
        seed_everything(0)
        t = trainer(tmp, f'amp_{mode}', s, amp=amp)
        rows = []
        for x in data: rows.append(t.train_step(x.to(t.device)))
        t.close()
        ok = [r for r in rows if r is not None]
        out[mode] = dict(losses=[r['train/loss'] for r in ok], bpp=[r['train/bpp'] for r in ok], skipped=len(rows) - len(ok))
    tail = lambda v: statistics.fmean(v[-20:]) if v else float('nan')
    a, b = tail(out['bf16']['losses']), tail(out['fp32']['losses'])
    rel = abs(a - b) / max(abs(b), 1e-12)
    finite = all(map(lambda v: v == v and abs(v) != float('inf'), out['bf16']['losses'] + out['fp32']['losses']))
    return dict(steps=s['amp_steps'], last20_loss_bf16=a, last20_loss_fp32=b, relative_difference=rel,
                last20_bpp_bf16=tail(out['bf16']['bpp']), last20_bpp_fp32=tail(out['fp32']['bpp']), finite=finite,
                close=rel < 0.05, curves={k: v['losses'] for k, v in out.items()})


def throughput(s: dict, dry: bool, tmp: Path) -> dict:
    variants = [(o, cl, False) for o in OBJECTIVES for cl in (False, True)] + [(o, False, True) for o in ('adam', 'balanced_lagged')]
    if dry: variants = [('adam', False, False), ('adam', True, False), ('balanced_exact', False, False), ('adam', False, True)]
    data, res = batches(s, s['warmup'] + s['timed'], seed=1), {}
    for obj, cl, comp in variants:
        name = f"{obj}{'_channels_last' if cl else ''}{'_compile' if comp else ''}"
        try:
            seed_everything(0)
            t = trainer(tmp, name, s, channels_last=cl, compile=comp and not dry, **OBJECTIVES[obj])
            times = []
            for i, x in enumerate(data):
                x = x.to(t.device)
                if cl: x = x.contiguous(memory_format=torch.channels_last)
                sync(s['device']); t0 = time.perf_counter()
                t.train_step(x)
                sync(s['device'])
                if i >= s['warmup']: times.append(time.perf_counter() - t0)
            t.close()
            med = statistics.median(times)
            res[name] = dict(s_per_step=med, images_per_s=s['batch'] / med,
                             peak_mem_gb=torch.cuda.max_memory_allocated() / 2 ** 30 if s['device'] == 'cuda' else None)
            if s['device'] == 'cuda': torch.cuda.reset_peak_memory_stats()
        except Exception as e: res[name] = dict(error=f"{type(e).__name__}: {e}")
    base = res.get('adam', {}).get('images_per_s')
    for v in res.values():
        if base and 'images_per_s' in v: v['vs_adam'] = v['images_per_s'] / base
    return dict(batch=s['batch'], patch=s['patch'], model=s['model'], variants=res)


def codec(s: dict, dry: bool, tmp: Path, checkpoint: str | None) -> dict:
    from hpcm_balanced.models import get_model
    from hpcm_balanced.runs import load_model_from_checkpoint
    from hpcm_balanced.codec_io import code_images, summarize
    from hpcm_balanced.data import eval_source
    model = load_model_from_checkpoint(checkpoint)[0] if checkpoint else get_model(s['model'])
    model = model.to(s['device']).eval(); model.update(force=True)
    source, label = eval_source('builtin' if dry else 'kodak')
    rows = code_images(model, source, max_images=s['images'], progress=False)
    enc, dec = [r['encoding_time'] for r in rows], [r['decoding_time'] for r in rows]
    r = summarize(rows, 'codec')['results']
    return dict(images=len(rows), source=label, weights=checkpoint or 'random init', encode_ms_median=1e3 * statistics.median(enc),
                decode_ms_median=1e3 * statistics.median(dec), encode_ms_mean=1e3 * statistics.fmean(enc),
                decode_ms_mean=1e3 * statistics.fmean(dec), bpp=r['bpp'][0], psnr=r['psnr-rgb'][0],
                authors_ms=dict(encode=81.8, decode=81.3))


def gpu_smoke(s: dict, dry: bool, tmp: Path) -> dict:
    yml = ROOT / 'sweeps' / 'study_gpu-smoke.yaml'
    if not yml.is_file(): return dict(ran=False, why=f'{yml.name} does not exist')
    cmd = [sys.executable, '-m', 'hpcm_balanced.sweep', str(yml), '--executor', 'local', '--runs-dir', str(tmp / 'sweeps')]
    if dry: cmd.append('--dry-run')
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, WANDB_MODE='disabled'))
    return dict(ran=not dry, command=' '.join(cmd[1:]), returncode=r.returncode, sweep_seconds=time.time() - t0,
                tail=(r.stdout + r.stderr)[-2000:], passed=r.returncode == 0)


SECTIONS = [('cuda_cells', 60), ('amp_vs_fp32', 120), ('throughput', 150), ('codec', 60), ('gpu_smoke', 240)]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dry-run', action='store_true', help='CPU, HPCM-tiny, tiny sizes: check the plumbing')
    ap.add_argument('--budget-s', type=float, default=470, help='skip sections that would not fit in what is left')
    ap.add_argument('--checkpoint', default=None, help="the authors' HPCM-Base file for the codec timing")
    ap.add_argument('--only', nargs='*', default=None, help='run only these sections')
    ap.add_argument('--out', default=None, help='output folder (default runs/bench)')
    a = ap.parse_args(argv)
    if not a.dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA GPU here; run with --dry-run to check the plumbing on a CPU")
    s, t_start = sizes(a.dry_run), time.time()
    tmp = Path(tempfile.mkdtemp(prefix='gpu-check-'))
    result = dict(dry_run=a.dry_run, sizes=s, sections={})          # write_bench adds the machine
    for name, estimate in SECTIONS:
        if a.only is not None and name not in a.only: continue
        left = a.budget_s - (time.time() - t_start)
        if not a.dry_run and left < estimate:
            result['sections'][name] = dict(skipped=f'time budget: {left:.0f} s left, about {estimate} s needed'); continue
        t0 = time.time()
        try:
            fn = globals()[name]
            out = fn(s, a.dry_run, tmp, a.checkpoint) if name == 'codec' else fn(s, a.dry_run, tmp)
            result['sections'][name] = dict(ok=True, seconds=time.time() - t0, **out)
        except Exception as e:
            result['sections'][name] = dict(ok=False, seconds=time.time() - t0, error=f"{type(e).__name__}: {e}",
                                            traceback=traceback.format_exc()[-2000:])
        print(f"{name}: {'ok' if result['sections'][name].get('ok') else 'FAILED'} in {time.time() - t0:.1f} s", flush=True)
    result['seconds'] = time.time() - t_start
    shutil.rmtree(tmp, ignore_errors=True)
    path = write_bench('gpu_check', result, a.out)
    print(f"wrote {path} ({result['seconds']:.0f} s)")
    return result


if __name__ == '__main__':
    main()
