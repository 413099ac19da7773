#!/usr/bin/env bash
# Installs realsim's exact working set into .venv (CPU torch 2.13.0 first, so nothing pulls a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
. .venv/bin/activate
log=$(mktemp)
run() { "$@" >>"$log" 2>&1 || { cat "$log" | grep -v "is ignored" | tail -40; echo "install step failed: $*" >&2; exit 1; }; }
run python -m pip install -q --upgrade pip
run python -m pip install -q "torch==2.13.0"
run python -m pip install -q -c .ci/constraints.txt -e ".[dev]"
# headless Chromium + chromedriver from the distribution for the browser tests of `realsim view` (tests/test_view_browser.py)
if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >>"$log" 2>&1 \
        || echo "realsim install: could not apt-get chromium chromium-driver (the browser tests will skip)" >&2
fi
rm -f "$log"
python - <<'PY'
import torch, sys
assert torch.__version__.startswith("2.13.0"), f"wrong torch {torch.__version__}"
assert not torch.version.cuda, "a CUDA torch was pulled in"
print("realsim install ok: torch", torch.__version__, "python", sys.version.split()[0])
PY
