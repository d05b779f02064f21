#!/usr/bin/env bash
# Install, then run the main job on the embedded default (hpcm-demo): the shipped HPCM-tiny models (pretrained/)
# compress and decompress held-out photos that ship with scikit-image, against Pillow's JPEG/WebP on the same photos,
# then a short Balanced R-D fine-tune from the shipped weights. Outputs under runs/demo/. No network, no ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export WANDB_MODE=${WANDB_MODE:-offline}
.venv/bin/hpcm-demo "$@"
