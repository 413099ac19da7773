#!/usr/bin/env bash
# The README's test command: installs into .venv if needed, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install.sh
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$PWD/build/torch_extensions}" XDG_CACHE_HOME="${XDG_CACHE_HOME:-$PWD/build/cache}"
export REALSIM_DATA="${REALSIM_DATA:-$(cd .. && pwd)/shared/data}" MPLBACKEND=Agg
exec .venv/bin/python -m pytest -q "$@"
