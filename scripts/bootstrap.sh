#!/usr/bin/env bash
# Set up a development environment on a fresh machine: a venv in .venv with the CPU build of
# torch installed first (an unpinned torch would pull GBs of CUDA wheels), then expertpm with
# every extra, editable. Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check torch==2.13.0
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
# The registry's browser tests drive Debian's headless Chromium (they skip, saying so, without it).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "bootstrap: could not install chromium; browser tests will be skipped" >&2
  else
    echo "bootstrap: install chromium and chromium-driver for the browser tests" >&2
  fi
fi
echo "bootstrap: ready ($(.venv/bin/expertpm --version))"
