#!/usr/bin/env bash
# Install, then run the main job on the embedded default: a tiny HPCM training run on photos shipped with
# scikit-image, then a real compress/decompress of held-out images (outputs under runs/demo/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export WANDB_MODE=${WANDB_MODE:-offline}
.venv/bin/hpcm-train --run_name demo "$@"
