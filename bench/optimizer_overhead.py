"""Optimizer cost on this CPU: the step alone on HPCM-Base's parameters, then whole training steps (exact vs lagged).

Usage: .venv/bin/python bench/optimizer_overhead.py [--threads 2] [--rounds 15] [--warmup 2]
       [--train-rounds 15] [--no-train] [--batch 8] [--patch 128]

Part 1, the optimizer step (`step`): the parameters of `hpcm_balanced.models.hpcm_base()` (68.5M in 280 tensors),
with random gradients of total norm 5, so that clipping to `max_norm=1` is active in every step. Variants, all on
the same parameter tensors, each with its own optimizer state:
- `adam_foreach`: `torch.optim.Adam(foreach=True).step()`, the reference for the ratios;
- `adam_foreach_clip`: the same after `clip_grad_norm_(params, 1.0)` (what HPCM's train.py does), like for like
  with `Balanced.step()`, which clips;
- `balanced`: `Balanced.step()` (clip + Cautious Adam, multi-tensor; the default);
- `balanced_noclip`: `Balanced(max_norm=0).step()`: Cautious Adam without clipping, like for like with bare Adam
  (it still computes the gradient norm, to skip a step whose gradient is not finite);
- `balanced_plain`: `Balanced(cautious=False).step()` (clip + Adam, multi-tensor);
- `balanced_loop`: `Balanced(foreach=False).step()`: the per-tensor loop over `cautious_adam_update`, i.e. the
  step before the multi-tensor version (the before/after ratio);
- `hierarchical`: `HierarchicalBalanced.step()`.
Before every timed step the gradients are restored (untimed) to their original values, since clipping scales them
in place. Rounds are interleaved (one step of every variant per round, the order rotated every round) so that
drifts in machine speed hit all variants alike; `--warmup` rounds are not timed. We record the median wall time and
the median process CPU time (all threads) per step, their ratios to `adam_foreach`, and the median number of
minor page faults per step (Adam's foreach step allocates a 274 MB temporary; when the allocator has returned that
memory to the OS it is faulted in again, which is part of Adam's cost and of its variation between runs).

Part 2, whole training steps (`train`): `compressai.models.MeanScaleHyperprior(N=64, M=96)` on the CPU, batch 8
of 128x128 random crops (with flips) of scikit-image photos (astronaut, coffee, chelsea; no network), loss
`lmbda*255^2*MSE + bpp` (lmbda 0.013), plus CompressAI's aux step in every variant. Variants: `adam` (+ clip),
`cautious_sum` (Balanced step on the plain sum), `balanced_lagged`, `balanced_exact` (+ a no-grad forward and
`update_task_weights`), `hierarchical_lagged` / `hierarchical_exact` on 5 synthetic per-scale tasks that sum to the
same loss. Goals: lagged <= 1.05x Adam, exact <= 1.5x Adam.

Writes runs/bench/optimizer_overhead.json (via core.write_bench) with the load average before and after.
Goal of part 1 (issue 14): the Cautious-Adam step at most 1.10x `Adam(foreach=True)`, like for like in wall time:
`balanced_noclip` / `adam_foreach` (no clipping on either side) and `balanced` / `adam_foreach_clip` (the same clipping
on both). `balanced` / bare `adam_foreach` (clipping on one side only) is printed as well.
"""
from __future__ import annotations
import argparse, copy, os, resource, statistics, time

import numpy as np
import torch
import torch.nn.functional as F

from hpcm_balanced.core import seed_everything, write_bench
from hpcm_balanced.optim import Balanced, HierarchicalBalanced

LMBDA = 0.013
STEP_VARIANTS = ('adam_foreach', 'adam_foreach_clip', 'balanced', 'balanced_noclip', 'balanced_plain', 'balanced_loop',
                 'hierarchical')


# ---------------------------------------------------------------------------------------------------------------
# Part 1: the optimizer step alone on HPCM-Base's parameters

def make_step_variant(name: str, params: list[torch.Tensor]):
    "A zero-argument callable doing one optimizer step of variant `name` on `params` (grads already set)."
    if name.startswith('adam_foreach'):
        opt = torch.optim.Adam(params, lr=1e-4, foreach=True)
        if name == 'adam_foreach': return opt.step
        def adam_clip():
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
            opt.step()
        return adam_clip
    if name == 'hierarchical': return HierarchicalBalanced(params, lr=1e-4).step
    kw = dict(balanced={}, balanced_noclip=dict(max_norm=0.0), balanced_plain=dict(cautious=False),
              balanced_loop=dict(foreach=False))
    if name not in kw: raise ValueError(f"variant={name!r} is unknown; expected one of {STEP_VARIANTS}.")
    return Balanced(params, lr=1e-4, **kw[name]).step


def bench_step(args) -> dict:
    from hpcm_balanced.models import hpcm_base
    seed_everything(0)
    params = [p for p in hpcm_base().parameters()]
    g = torch.Generator().manual_seed(0)
    grads0 = [torch.randn(p.shape, generator=g) for p in params]
    norm0 = torch.nn.utils.get_total_norm(grads0).item()
    torch._foreach_mul_(grads0, 5.0 / norm0)                         # total norm 5: clipping always active
    for p, g0 in zip(params, grads0): p.grad = g0.clone()
    grads = [p.grad for p in params]
    steps = {name: make_step_variant(name, params) for name in args.variants}
    wall = {n: [] for n in steps}; cpu = {n: [] for n in steps}; faults = {n: [] for n in steps}
    names = list(steps)
    t_start = time.perf_counter()
    for r in range(args.warmup + args.rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            torch._foreach_copy_(grads, grads0)                       # untimed: clipping scaled them in place
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0, c0 = time.perf_counter(), time.process_time()
            steps[name]()
            t1, c1 = time.perf_counter(), time.process_time()
            f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            if r >= args.warmup: wall[name].append(t1 - t0); cpu[name].append(c1 - c0); faults[name].append(f1 - f0)
        if r == args.warmup - 1: print(f'step: warm-up done ({time.perf_counter() - t_start:.1f} s)')
    ref_w, ref_c = statistics.median(wall['adam_foreach']), statistics.median(cpu['adam_foreach'])
    res = {}
    for n in names:
        mw, mc = statistics.median(wall[n]), statistics.median(cpu[n])
        res[n] = dict(median_wall_s=mw, median_cpu_s=mc, iqr_wall_s=np.percentile(wall[n], [25, 75]).tolist(),
                      ratio_wall=mw / ref_w, ratio_cpu=mc / ref_c, n=len(wall[n]),
                      median_page_faults=statistics.median(faults[n]))
    print(f"{'step variant':20s} {'wall s':>8s} {'x Adam':>7s} {'cpu s':>8s} {'x Adam':>7s} {'faults':>8s}")
    for n, v in res.items():
        print(f"{n:20s} {v['median_wall_s']:8.3f} {v['ratio_wall']:7.3f} {v['median_cpu_s']:8.3f} {v['ratio_cpu']:7.3f}"
              f" {v['median_page_faults']:8.0f}")
    # The goal (issue 14): the Cautious-Adam step costs at most 1.10x Adam(foreach=True), measured like for like:
    # without clipping on both sides, and with the same clipping on both sides. `balanced` (it clips) against bare
    # Adam (it does not) is printed too, as a cost of the whole default step, but it is not like for like.
    goal = dict(limit=1.10, balanced_vs_bare_adam=dict(wall=res.get('balanced', {}).get('ratio_wall'),
                                                        cpu=res.get('balanced', {}).get('ratio_cpu')))
    pairs = [(n, r) for n, r in (('balanced_noclip', 'adam_foreach'), ('balanced', 'adam_foreach_clip'))
             if n in res and r in res]
    for name, ref in pairs:
        ratio = dict(wall=res[name]['median_wall_s'] / res[ref]['median_wall_s'],
                     cpu=res[name]['median_cpu_s'] / res[ref]['median_cpu_s'])
        goal[f'{name}_vs_{ref}'] = ratio
        print(f"like for like: {name} / {ref}: wall {ratio['wall']:.3f}, cpu {ratio['cpu']:.3f}")
    if pairs:
        goal['met'] = all(goal[f'{n}_vs_{r}']['wall'] <= goal['limit'] for n, r in pairs)
        print(f"goal (like for like, wall) <= {goal['limit']:.2f}x: {'met' if goal['met'] else 'NOT met'}")
    if goal['balanced_vs_bare_adam']['wall'] is not None:
        print(f"(not like for like) balanced with clipping / bare adam_foreach: wall "
              f"{goal['balanced_vs_bare_adam']['wall']:.3f}, cpu {goal['balanced_vs_bare_adam']['cpu']:.3f}")
    return dict(config=dict(model='hpcm_base', n_params=sum(p.numel() for p in params), n_tensors=len(params),
                            grad_norm=5.0, max_norm=1.0, rounds=args.rounds, warmup=args.warmup, lr=1e-4,
                            grads='restored (untimed) before every step'),
                results=res, goal=goal, wall_s=time.perf_counter() - t_start)


# ---------------------------------------------------------------------------------------------------------------
# Part 2: whole training steps on a small CompressAI codec (exact vs lagged)

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


TRAIN_VARIANTS = ('adam', 'cautious_sum', 'balanced_lagged', 'balanced_exact', 'hierarchical_lagged',
                  'hierarchical_exact')


class TrainVariant:
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
            raise ValueError(f"variant={name!r} is unknown; expected one of {TRAIN_VARIANTS}.")
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


def bench_train(args) -> dict:
    from compressai.models import MeanScaleHyperprior
    seed_everything(0)
    base = MeanScaleHyperprior(N=64, M=96).train()
    variants = [TrainVariant(n, copy.deepcopy(base)) for n in TRAIN_VARIANTS]
    batches = photo_batches(10, args.batch, args.patch)
    total = {v.name: [] for v in variants}; opt_t = {v.name: [] for v in variants}
    t_start = time.perf_counter()
    for r in range(args.warmup + args.train_rounds):
        x = batches[r % len(batches)]
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:          # rotate the order every round
            seed_everything(1000 + r)                   # same quantization noise draw for every variant
            t, to = v.step(x)
            if r >= args.warmup: total[v.name].append(t); opt_t[v.name].append(to)
        if r == args.warmup - 1: print(f'train: warm-up done ({time.perf_counter() - t_start:.1f} s)')
    ref = statistics.median(total['adam'])
    results = {}
    for v in variants:
        med = statistics.median(total[v.name])
        results[v.name] = dict(median_s=med, iqr_s=np.percentile(total[v.name], [25, 75]).tolist(),
                               optimizer_step_median_s=statistics.median(opt_t[v.name]),
                               ratio_to_adam=med / ref, n=len(total[v.name]))
        if isinstance(v.opt, Balanced) and v.name != 'cautious_sum':
            results[v.name]['task_weights_at_end'] = v.opt.get_task_weights()
    goals = {}
    for name, limit in (('balanced_lagged', 1.05), ('hierarchical_lagged', 1.05),
                        ('balanced_exact', 1.5), ('hierarchical_exact', 1.5)):
        goals[name] = dict(limit=limit, ratio=results[name]['ratio_to_adam'],
                           met=results[name]['ratio_to_adam'] <= limit)
    print(f"{'train variant':22s} {'median s/step':>14s} {'opt.step s':>11s} {'x Adam':>7s}")
    for n, r in results.items():
        print(f"{n:22s} {r['median_s']:14.4f} {r['optimizer_step_median_s']:11.4f} {r['ratio_to_adam']:7.3f}")
    for n, g in goals.items(): print(f"goal {n}: {g['ratio']:.3f} <= {g['limit']}  {'met' if g['met'] else 'NOT met'}")
    return dict(config=dict(model='MeanScaleHyperprior(N=64, M=96)', batch=args.batch, patch=args.patch,
                            rounds=args.train_rounds, warmup=args.warmup, lmbda=LMBDA,
                            data='scikit-image astronaut/coffee/chelsea random crops + flips',
                            aux='Adam(lr=1e-3) on model.aux_loss() every step, all variants',
                            adam='torch.optim.Adam(lr=1e-4) + clip_grad_norm_(1.0)'),
                results=results, goals=goals, wall_s=time.perf_counter() - t_start)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--threads', type=int, default=2, help='torch threads (intra-op)')
    ap.add_argument('--rounds', type=int, default=15, help='timed optimizer steps per variant (part 1)')
    ap.add_argument('--warmup', type=int, default=2, help='untimed rounds first (both parts)')
    ap.add_argument('--variants', nargs='+', default=list(STEP_VARIANTS), choices=STEP_VARIANTS)
    ap.add_argument('--train-rounds', type=int, default=15, help='timed training steps per variant (part 2)')
    ap.add_argument('--no-train', action='store_true', help='skip part 2')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--patch', type=int, default=128)
    args = ap.parse_args(argv)
    if 'adam_foreach' not in args.variants: ap.error("--variants must include 'adam_foreach' (the reference)")
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    payload = dict(threads=torch.get_num_threads(), step=bench_step(args))
    if not args.no_train: payload['train'] = bench_train(args)
    payload['wall_s'] = time.perf_counter() - t0
    payload['load_average'] = dict(before=list(load_before), after=list(os.getloadavg()), cpu_count=os.cpu_count(),
                                   note='1/5/15-minute load averages; other processes on the machine inflate '
                                        'absolute times, the interleaved rounds keep the ratios comparable')
    path = write_bench('optimizer_overhead', payload)
    print(f'wrote {path}')
    return payload


if __name__ == '__main__':
    main()
