#!/usr/bin/env bash
# Install, then run the main job on the embedded default (hpcm-demo; outputs under runs/demo/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export WANDB_MODE=${WANDB_MODE:-offline}
.venv/bin/hpcm-demo "$@"
