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
rm -f "$log"
python - <<'PY'
import torch, sys
assert torch.__version__.startswith("2.13.0"), f"wrong torch {torch.__version__}"
assert not torch.version.cuda, "a CUDA torch was pulled in"
print("realsim install ok: torch", torch.__version__, "python", sys.version.split()[0])
PY
