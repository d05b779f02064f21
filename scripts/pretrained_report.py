"""Measure every shipped model (pretrained/*.pth) on Kodak with real bitstreams against Pillow's JPEG and WebP on the
same images, and write pretrained/kodak.json (the numbers pretrained/README.md quotes).

    python scripts/pretrained_report.py            # needs ../shared/datasets/kodak; about a minute per model on 2 cores

For each model: bpp (real bitstreams, mean over the 24 images), PSNR-RGB, MS-SSIM-RGB, and the PSNR of JPEG / WebP at
the same bpp, interpolated linearly in log(bpp) between the two qualities around it (`jpeg_psnr_at_bpp`); `margin_db`
is the model's PSNR minus JPEG's. A model whose bpp falls outside JPEG's measured range gets no JPEG number (null).
"""
import json, math, sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hpcm_balanced.core import write_json                    # noqa: E402
from hpcm_balanced.data import kodak_dir                      # noqa: E402
from hpcm_balanced.evaluate import evaluate, pillow_codec_curve   # noqa: E402


def psnr_at(curve: dict, bpp: float) -> float | None:
    "PSNR of a codec curve at `bpp`, linear in log(bpp) between its neighbours; None outside its range."
    b, p = np.asarray(curve['results']['bpp'], float), np.asarray(curve['results']['psnr-rgb'], float)
    order = np.argsort(b); b, p = b[order], p[order]
    if not b[0] <= bpp <= b[-1]: return None
    return float(np.interp(math.log(bpp), np.log(b), p))


def main() -> dict:
    kd = kodak_dir()
    if kd is None: raise SystemExit("pretrained_report: ../shared/datasets/kodak is absent here")
    classic = {c: pillow_codec_curve(c, kd, progress=False) for c in ('jpeg', 'webp')}
    out = dict(images=24, dataset='kodak', classic={c: v['results'] for c, v in classic.items()}, models={})
    for f in sorted((ROOT / 'pretrained').glob('*.pth')):
        r = evaluate(f, kd, progress=False)
        res = r['results']
        row = dict(lmbda=r['meta'].get('lmbda'), model=r['meta'].get('model'), bpp=res['bpp'][0],
                   psnr=res['psnr-rgb'][0], ms_ssim=res['ms-ssim-rgb'][0], n_images=res['n_images'][0],
                   **{f'{c}_psnr_at_bpp': psnr_at(classic[c], res['bpp'][0]) for c in classic})
        row['margin_db_vs_jpeg'] = None if row['jpeg_psnr_at_bpp'] is None else row['psnr'] - row['jpeg_psnr_at_bpp']
        out['models'][f.name] = row
        print(f"{f.name}: {row['bpp']:.4f} bpp, {row['psnr']:.2f} dB; JPEG at that bpp "
              f"{row['jpeg_psnr_at_bpp'] if row['jpeg_psnr_at_bpp'] is None else round(row['jpeg_psnr_at_bpp'], 2)} dB, "
              f"WebP {row['webp_psnr_at_bpp'] if row['webp_psnr_at_bpp'] is None else round(row['webp_psnr_at_bpp'], 2)} dB", flush=True)
    write_json(ROOT / 'pretrained' / 'kodak.json', out)
    return out


if __name__ == '__main__':
    main()
