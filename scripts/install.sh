#!/usr/bin/env bash
# Create .venv (if missing), install hpcm-balanced with its dev tools, register the Jupyter kernel.
# Works offline where the package index is local; torch resolves to 2.14.1 (CUDA build, runs on CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -vE "^WARNING: Location|is neither a file nor a directory" || true
.venv/bin/python -c "import hpcm_balanced, torch, torchvision, compressai, nbdev" \
  || { echo "install failed: hpcm_balanced or one of its dependencies does not import" >&2; exit 1; }
# --- browser test (nbs/browser_test.ipynb) -------------------------------------------------------------------------
# It drives Debian's Chromium with Playwright (pip, in dev_requirements; no browser download). Installed here when
# run as root with apt-get; otherwise the test fails and names what to install (it never skips).
if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/lib/chromium/chromium ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (apt-get) for the browser test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null \
      || echo "warning: apt-get install chromium failed: nbs/browser_test.ipynb will fail until Chromium is installed" >&2
  else
    echo "warning: no Chromium: nbs/browser_test.ipynb needs it (sudo apt-get install -y chromium, or CHROMIUM=/path/to/chrome)" >&2
  fi
fi
# --- end of the browser test block ---------------------------------------------------------------------------------
# --- Classic codecs (hpcm_balanced.classic, hpcm-anchors): Debian packages, installed only when a program is missing.
# Without root or apt-get this prints one line; the codecs then fail with an error naming the package to install.
CLASSIC_PKGS="ffmpeg x265 libjxl-tools libavif-bin"
classic_missing=""
for t in ffmpeg x265 cjxl djxl avifenc avifdec; do command -v "$t" >/dev/null 2>&1 || classic_missing="$classic_missing $t"; done
if [ -n "$classic_missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $CLASSIC_PKGS >/dev/null 2>&1; }
    apt_install || { apt-get update -q >/dev/null 2>&1 && apt_install; } \
      || echo "classic codecs:$classic_missing missing and 'apt-get install $CLASSIC_PKGS' failed (hpcm-anchors will say what is missing)" >&2
  else
    echo "classic codecs:$classic_missing missing; as root run: apt-get install $CLASSIC_PKGS (hpcm-anchors will say what is missing)" >&2
  fi
fi
# --- end of classic codecs
# A kernel named hpcm-balanced, so JupyterLab and papermill (-k hpcm-balanced) find this environment.
.venv/bin/python -m ipykernel install --user --name hpcm-balanced --display-name "Python (hpcm-balanced)" >/dev/null
echo "installed: $(.venv/bin/python -c 'import hpcm_balanced,torch,compressai; print("hpcm_balanced", hpcm_balanced.__version__, "| torch", torch.__version__, "| compressai", compressai.__version__)')"
