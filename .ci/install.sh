#!/usr/bin/env bash
# Installs realsim's exact working set into .venv (CPU torch 2.13.0 first, so nothing pulls a CUDA build).
# `bash .ci/install.sh --nerfstudio` instead makes .venv-ns: nerfstudio 1.1.5 (torch 2.14.x) with realsim installed too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "${1:-}" = "--nerfstudio" ]; then
    # nerfstudio 1.1.5 in its own venv .venv-ns (it pins viser 0.2.7, gsplat 1.4.0, timm 0.6.7: it cannot share .venv).
    # torch stays 2.14.1 (+ torchvision 0.29.1), installed first and then held by the pins: CPU torch 2.13.0 cannot host
    # nerfstudio, because PyPI has no CPU torchvision and its torchvision wheels need CUDA torch's libtorch_cuda
    # (`import torchvision` raises; nerfstudio's pipelines import it). realsim is installed there without its pins
    # (realsim's own viewer needs viser 1.x: use .venv); its C++ kernels build under torch 2.14 too.
    t0=$(date +%s)
    if [ ! -x .venv-ns/bin/python ]; then "$PY" -m venv .venv-ns; fi
    log=$(mktemp)
    run() { "$@" >>"$log" 2>&1 || { grep -v "is ignored" "$log" | tail -40; echo "install step failed: $*" >&2; exit 1; }; }
    pins=(torch==2.14.1 torchvision==0.29.1)
    run .venv-ns/bin/python -m pip install -q --upgrade pip
    run .venv-ns/bin/python -m pip install -q "${pins[@]}"
    run .venv-ns/bin/python -m pip install -q "nerfstudio==1.1.5" "${pins[@]}"
    # realsim's own needs that nerfstudio does not bring, then realsim itself with no dependency resolution
    run .venv-ns/bin/python -m pip install -q "pycolmap>=3.11,<5" "safetensors>=0.4" "usd-core>=26.3" "mujoco>=3.2,<5" \
        "xatlas>=0.0.9,<0.1" "av>=12,<20" "ninja>=1.11" "plyfile>=1.0" "${pins[@]}"
    run .venv-ns/bin/python -m pip install -q --no-deps -e .
    rm -f "$log"
    .venv-ns/bin/python - <<'PY'
import torch, nerfstudio, realsim.recon  # noqa: F401
import torchvision  # noqa: F401  (nerfstudio's pipelines import it)
assert torch.__version__.startswith("2.14."), f"unexpected torch {torch.__version__}"
print("realsim nerfstudio venv ok: torch", torch.__version__)
PY
    echo "realsim install --nerfstudio: $(( $(date +%s) - t0 )) s, .venv-ns $(du -sh .venv-ns | cut -f1)"
    exit 0
fi
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
