#!/usr/bin/env bash
# Install, check that hpcm_balanced/ matches the notebooks, and run every notebook's tests (nbdev_test).
# Flags for heavy cells (slow, cuda) are off unless TEST_FLAGS names them, e.g. TEST_FLAGS="slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# One BLAS/OpenMP thread per notebook worker: CI has 2 cores and 2 workers, and oversubscription was measured
# to slow the CPU training cells ~20x.
export PATH="$PWD/.venv/bin:$PATH" WANDB_MODE=offline WANDB_SILENT=true MPLBACKEND=Agg OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
nbdev_export
if ! git diff --exit-code --stat -- hpcm_balanced/; then
  echo "hpcm_balanced/ differs from what nbdev_export writes: run nbdev_export and commit the result." >&2
  exit 1
fi
if [ -n "$(git status --porcelain --untracked-files=all -- hpcm_balanced/)" ]; then
  git status --short -- hpcm_balanced/
  echo "nbdev_export wrote files that are not committed: commit them." >&2
  exit 1
fi
n=$(ls nbs/*.ipynb | grep -v '/_' | wc -l)
start=$(date +%s)
nbdev_test --n_workers "${TEST_WORKERS:-2}" --timing --flags "${TEST_FLAGS:-}"
echo "nbdev_test took $(( $(date +%s) - start )) s"
echo "notebooks: $n passed, 0 failed"
