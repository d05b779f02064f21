"""Model speed on this CPU: forward+backward per 256x256 image and real encode/decode of kodim01, HPCM beside CompressAI.

Usage: .venv/bin/python bench/model_speed.py [--models hpcm_tiny hpcm_base hpcm_phi_context mbt2018-mean cheng2020_anchor]
       [--repeats 3] [--threads N] [--profile]
Writes runs/bench/model_speed.json (via core.write_bench). Everything is measured in this one run, so compare the
numbers as ratios. Models are randomly initialised (CompressAI's with quality=3, pretrained=False): rates mean
nothing, and entropy-coding time depends on the number of non-trivial symbols, so trained models may code somewhat
slower or faster. Each timing is the median of `--repeats` runs after one untimed warm-up; we record both wall
time and the process CPU time (the machine may be shared: CPU time is less sensitive to other load; with T threads
it is up to T x the wall time). Decode exactness is checked (HPCM: y_hat identical bit for bit; the others: the
decoded image equals the eval forward's). `--profile` adds, per model, where compress / decompress spend their time
(cProfile, grouped: network, rANS, index building, list/array conversions, gathers/masks, other).
HPCM-1B is left out by default (4 GB of weights, minutes per image on a CPU); name it to include it.
"""
from __future__ import annotations
import argparse, os, statistics, sys, time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hpcm_balanced.core import seed_everything, shared_path, write_bench
from hpcm_balanced.models import HPCM, MODEL_NAMES, get_model

ZOO_MODELS = ('mbt2018_mean', 'cheng2020_anchor')       # CompressAI's zoo as is (no padding, unframed streams)
DEFAULT_MODELS = ('hpcm_tiny', 'hpcm_base', 'hpcm_phi_context', 'bmshj2018-hyperprior', 'mbt2018-mean', 'cheng2020_anchor')


def build(name: str) -> torch.nn.Module:
    if name in MODEL_NAMES: return get_model(name)
    if name in ZOO_MODELS:
        from compressai import zoo
        return getattr(zoo, name)(quality=3, pretrained=False)
    raise ValueError(f"unknown model {name!r}; accepted: {MODEL_NAMES + ZOO_MODELS}")


PROFILE_GROUPS = (  # (group, function names as cProfile reports them); first match wins
    ('network (conv, attention, activations)', ('conv2d', 'conv_transpose2d', 'scaled_dot_product_attention',
                                                 'leaky_relu', 'leaky_relu_', 'relu', 'gdn', 'linear')),
    ('rANS calls', ('encode_with_indexes', 'flush', 'decode_stream', 'set_stream', 'encode', 'decode')),
    ('index building', ('build_indexes', '_scale_indexes', 'bucketize', '_channel_indexes')),
    ('list/array conversions', ('tolist', 'tensor', 'asarray', 'from_numpy', 'int', 'numpy')),
    ('gathers, masks, concatenation', ('gather', 'cat', 'reshape', 'new_zeros', 'zeros_like', 'to', 'round',
                                       'chunk', 'stack', 'unsqueeze', 'expand', 'regrid', 'where')),
)


def profile_breakdown(fn) -> dict:
    "Seconds of `fn()` per group of `PROFILE_GROUPS` (cProfile own time of each function), plus 'other' and 'total'."
    import cProfile, pstats
    pr = cProfile.Profile(time.process_time)           # CPU time: less sensitive to other load on the machine
    pr.enable(); fn(); pr.disable()
    out = {g: 0.0 for g, _ in PROFILE_GROUPS}
    out['other (Python glue, hashing, ...)'] = 0.0
    for (_, _, func), (_, _, tt, _, _) in pstats.Stats(pr).stats.items():
        name = func.strip('<>').replace('built-in method ', '').replace("method '", '').split("'")[0].split('.')[-1]
        group = next((g for g, names in PROFILE_GROUPS if name in names), 'other (Python glue, hashing, ...)')
        out[group] += tt
    out['total'] = sum(out.values())
    return {k: round(v, 3) for k, v in out.items()}


def timed(fn, repeats: int) -> tuple[dict, object]:
    "Run fn once untimed, then `repeats` times: median wall and CPU seconds, and the last result."
    out = fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
    return {'wall_s': statistics.median(wall), 'cpu_s': statistics.median(cpu), 'wall_all_s': wall}, out


def fwd_bwd(model, x):
    def step():
        model.zero_grad(set_to_none=True)
        out = model(x)
        bits = sum((-torch.log2(l)).sum() for l in out['likelihoods'].values())
        loss = bits / x[0, 0].numel() + 0.013 * 255 ** 2 * torch.mean((out['x_hat'] - x) ** 2)
        loss.backward()
        return loss.item()
    return step


def load_kodim01() -> tuple[torch.Tensor, str]:
    p = shared_path('datasets', 'kodak', 'kodim01.png')
    if p is None:
        from skimage import data
        print('kodim01 (../shared/datasets/kodak) is absent: using skimage astronaut 512x512 instead')
        return torch.from_numpy(data.astronaut()).permute(2, 0, 1).float().div(255)[None], 'skimage.astronaut'
    a = np.asarray(Image.open(p).convert('RGB'))
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float().div(255)[None], str(p.name)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS))
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--coding_repeats', type=int, default=2)
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    ap.add_argument('--profile', action='store_true', help='where compress / decompress spend their time')
    args = ap.parse_args(argv)
    if args.threads: torch.set_num_threads(args.threads)
    kodim, kodim_name = load_kodim01()
    H, W = kodim.shape[-2:]
    results = {'gpu': 'not lent in this task', 'device': 'cpu', 'torch_threads': torch.get_num_threads(),
               'load_average_start': os.getloadavg(), 'image': kodim_name, 'image_size': [H, W],
               'repeats': args.repeats, 'coding_repeats': args.coding_repeats, 'models': {}}
    for name in args.models:
        seed_everything(0)
        model = build(name)
        r = {'parameters': sum(p.numel() for p in model.parameters())}
        if hasattr(model, 'config'): r['config'] = {k: v for k, v in vars(model.config).items()}
        if hasattr(model, 'quality'): r['quality'] = model.quality
        # forward + backward, one 256x256 image (batch 1), training mode
        model.train()
        x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
        r['fwd_bwd_256'], _ = timed(fwd_bwd(model, x), args.repeats)
        print(f"{name}: fwd+bwd 256x256 {r['fwd_bwd_256']['wall_s']:.3f} s wall, {r['fwd_bwd_256']['cpu_s']:.3f} s CPU", flush=True)
        # real encode / decode of kodim01
        model.eval(); model.zero_grad(set_to_none=True)
        model.update(force=True)
        is_hpcm = isinstance(model, HPCM)
        with torch.no_grad():
            enc_fn = (lambda: model.compress(kodim, return_y_hat=True)) if is_hpcm else (lambda: model.compress(kodim))
            r['encode'], enc = timed(enc_fn, args.coding_repeats)
            y_hat = enc.pop('y_hat', None); enc.pop('z_hat', None)
            dec_fn = ((lambda: model.decompress(enc['strings'], enc['shape'], return_y_hat=True)) if is_hpcm
                      else (lambda: model.decompress(enc['strings'], enc['shape'])))
            r['decode'], dec = timed(dec_fn, args.coding_repeats)
            if args.profile:
                r['profile_compress_s'] = profile_breakdown(enc_fn)
                r['profile_decompress_s'] = profile_breakdown(dec_fn)
                print(f"{name}: compress {r['profile_compress_s']}\n{name}: decompress {r['profile_decompress_s']}", flush=True)
        nbytes = sum(len(s[0]) for s in enc['strings'])
        r['bytes'] = nbytes
        names = getattr(model, 'stream_names', None) or [f'stream{i}' for i in range(len(enc['strings']))]
        r['bytes_per_stream'] = {n: len(s[0]) for n, s in zip(names, enc['strings'])}
        r['bpp'] = 8 * nbytes / (H * W)
        r['x_hat_shape_ok'] = list(dec['x_hat'].shape[-2:]) == [H, W]
        if is_hpcm: r['y_hat_exact'] = bool(torch.equal(dec['y_hat'], y_hat))
        elif name in MODEL_NAMES:
            with torch.no_grad(): r['x_hat_exact'] = bool(torch.equal(dec['x_hat'], model(kodim)['x_hat'].clamp(0, 1)))
        print(f"{name}: encode {r['encode']['wall_s']:.2f} s, decode {r['decode']['wall_s']:.2f} s wall "
              f"({r['encode']['cpu_s']:.2f}/{r['decode']['cpu_s']:.2f} s CPU), {nbytes} bytes", flush=True)
        results['models'][name] = r
        del model
    m = results['models']
    if 'hpcm_tiny' in m and 'hpcm_base' in m:
        results['ratios'] = {
            'fwd_bwd_base_over_tiny': m['hpcm_base']['fwd_bwd_256']['wall_s'] / m['hpcm_tiny']['fwd_bwd_256']['wall_s'],
            **{f'encode_{k}_over_hpcm_base': m[k]['encode']['wall_s'] / m['hpcm_base']['encode']['wall_s']
               for k in m if k != 'hpcm_base'},
            **{f'decode_{k}_over_hpcm_base': m[k]['decode']['wall_s'] / m['hpcm_base']['decode']['wall_s']
               for k in m if k != 'hpcm_base'}}
    results['load_average_end'] = os.getloadavg()
    path = write_bench('model_speed', results)
    print('wrote', path)
    return results


if __name__ == '__main__':
    main(sys.argv[1:])
