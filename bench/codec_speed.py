"""Encode / decode time per image and real vs estimated bits per stream: our codecs beside Pillow's JPEG and WebP.

Usage: .venv/bin/python bench/codec_speed.py [--models hpcm_tiny hpcm_base runs/x/checkpoints/best.pth ...]
       [--n_images 3] [--device cpu] [--no_estimate]
`--models` takes model names (random init) or checkpoint files (ours or the authors', as `hpcm-eval` loads them).
Writes runs/bench/codec_speed.json (via core.write_bench). All timings come from this one run, on the same images:
compare them as ratios. Each codec first codes the first image once, untimed, so that one-off costs (mask
layouts cached per image size, allocator growth, library loading) are not charged to the first image. Random
weights give a different bitstream size from a trained model, so their rates mean nothing; entropy-coding time
grows with the number of symbols, so trained models may be somewhat faster or slower to code than these numbers.
Per image and stream (`model.stream_names`) it also records the real bits written (whole stream, frame included)
and the bits the eval-mode `forward` estimates (-log2 of the likelihoods), and their ratio: how close the entropy
coder comes to the model (meaningful with trained weights).
"""
from __future__ import annotations
import argparse, os, statistics, sys, time
from pathlib import Path

import torch

from hpcm_balanced.core import get_device, seed_everything, write_bench
from hpcm_balanced.data import builtin_images, iter_images, kodak_dir
from hpcm_balanced.codec_io import code_image, warm_up
from hpcm_balanced.evaluate import available_pillow_codecs, load_model, pillow_round_trip


@torch.no_grad()
def estimated_bits(model: torch.nn.Module, x: torch.Tensor) -> dict:
    "{stream: bits} that the eval-mode forward of `model` estimates for image x (3,H,W): -log2 of its likelihoods."
    device = next(model.parameters()).device
    out = model(x.reshape(1, 3, *x.shape[-2:]).to(device, torch.float32))
    return {k: float((-torch.log2(v.double())).sum()) for k, v in out['likelihoods'].items()}


def bits_summary(rows: list[dict], names) -> dict:
    "Per stream: total real bits, total estimated bits and their ratio over the images of `rows`."
    out = {}
    for n in names:
        real = sum(r['real_bits'][n] for r in rows); est = sum(r['estimated_bits'][n] for r in rows)
        out[n] = {'real_bits': real, 'estimated_bits': round(est, 1), 'real_over_estimated': real / est if est else None}
    return out


def bench_images(n_images: int) -> tuple[list[tuple[str, torch.Tensor]], str]:
    "The first `n_images` Kodak images, or the built-in photos when ../shared is absent."
    k = kodak_dir()
    if k is not None:
        imgs = []
        for p, x, _ in iter_images(k):
            imgs.append((p.name, x))
            if len(imgs) == n_images: break
        return imgs, 'kodak'
    print('Kodak (../shared) is absent: timing the built-in photos instead.')
    return list(builtin_images().items())[:n_images], 'builtin'


def summarize(rows: list[dict]) -> dict:
    enc, dec = [r['encoding_time'] for r in rows], [r['decoding_time'] for r in rows]
    return {'per_image': rows, 'mean_encoding_time_s': statistics.fmean(enc),
            'mean_decoding_time_s': statistics.fmean(dec), 'mean_bpp': statistics.fmean(r['bpp'] for r in rows)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--models', nargs='+', default=['hpcm_tiny', 'hpcm_base'])
    ap.add_argument('--n_images', type=int, default=3)
    ap.add_argument('--quality', type=int, default=75, help='JPEG / WebP quality')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--no_estimate', action='store_true', help='skip the estimated bits (one forward per image)')
    args = ap.parse_args(argv)
    device = get_device(args.device)
    load_start = os.getloadavg() if hasattr(os, 'getloadavg') else None
    images, source = bench_images(args.n_images)
    codecs: dict[str, dict] = {}
    for c in [c for c in ('jpeg', 'webp') if c in available_pillow_codecs()]:
        pillow_round_trip(images[0][1], c, args.quality)  # warm-up, not timed
        rows = []
        for name, x in images:
            r = pillow_round_trip(x, c, args.quality); r.pop('x_hat')
            rows.append({'image': name, **{k: r[k] for k in ('bpp', 'encoding_time', 'decoding_time')}})
        codecs[f'{c}_q{args.quality}'] = summarize(rows)
        print(f"{c}: enc {codecs[f'{c}_q{args.quality}']['mean_encoding_time_s'] * 1e3:.1f} ms, "
              f"dec {codecs[f'{c}_q{args.quality}']['mean_decoding_time_s'] * 1e3:.1f} ms per image")
    for m in args.models:
        seed_everything(0)
        t0 = time.perf_counter()
        model, meta = load_model(m, device)
        model.update(force=True)
        setup = time.perf_counter() - t0
        label = Path(m).stem if Path(m).is_file() else m
        warm_up(model, images[0][1])  # full-size first image: mask layouts are cached per size; not timed
        rows = []
        for name, x in images:
            r = code_image(model, x); r.pop('x_hat')
            row = {'image': name, 'height': r['height'], 'width': r['width'],
                   **{k: r[k] for k in ('bpp', 'encoding_time', 'decoding_time')},
                   'real_bits': {k[5:]: v for k, v in r.items() if k.startswith('bits_')}}
            msg = f"{label} {name}: enc {r['encoding_time']:.2f} s, dec {r['decoding_time']:.2f} s"
            if not args.no_estimate:
                row['estimated_bits'] = estimated_bits(model, x)
                msg += ', bits real/estimated ' + ', '.join(
                    f"{k} {row['real_bits'][k]}/{row['estimated_bits'][k]:.0f}" for k in row['real_bits'] if k in row['estimated_bits'])
            rows.append(row)
            print(msg, flush=True)
        codecs[label] = {**summarize(rows), 'source': meta, 'build_and_update_s': setup,
                         'n_parameters': sum(p.numel() for p in model.parameters())}
        if not args.no_estimate:
            codecs[label]['bits_per_stream'] = bits_summary(rows, rows[0]['real_bits'])
        del model
    ref = next((k for k in codecs if k.startswith('jpeg')), None)
    ratios = {}
    if ref:
        for k, v in codecs.items():
            if k == ref: continue
            ratios[f'{k}_vs_{ref}'] = {
                'encoding': v['mean_encoding_time_s'] / codecs[ref]['mean_encoding_time_s'],
                'decoding': v['mean_decoding_time_s'] / codecs[ref]['mean_decoding_time_s']}
    note = ('CPU only (no GPU lent for this run); random-init models have meaningless bpp; HPCM published '
            'times are ~81 ms per Kodak image on a GPU') if device.type == 'cpu' else f'device {device}'
    path = write_bench('codec_speed', {'images': source, 'n_images': len(images), 'device': str(device),
                                       'torch_threads': torch.get_num_threads(), 'quality': args.quality,
                                       'codecs': codecs, 'ratios': ratios, 'note': note,
                                       # other processes on the machine inflate CPU timings: record how busy it was
                                       'load_average_1_5_15min': {'start': load_start, 'end': os.getloadavg()
                                                                  if hasattr(os, 'getloadavg') else None}})
    print(f'wrote {path}')
    return {'codecs': codecs, 'ratios': ratios}


if __name__ == '__main__':
    main(sys.argv[1:])
