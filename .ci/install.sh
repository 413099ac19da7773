#!/usr/bin/env bash
# Installs realsim's exact working set into .venv (CPU torch 2.13.0 first, so nothing pulls a CUDA build).
# `bash .ci/install.sh --nerfstudio` also makes .venv-ns: nerfstudio 1.1.5 and realsim, layered on .venv (its torch).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "${1:-}" = "--nerfstudio" ]; then
    # nerfstudio 1.1.5 in .venv-ns ($REALSIM_NS_VENV), a venv layered over .venv: a .pth adds .venv's site-packages after
    # its own, so it runs .venv's CPU torch 2.13.0 (and the kernels built for it) while its own site-packages hold what
    # nerfstudio pins against .venv (viser 0.2.7, protobuf 3.20, ...) and the rest of .ci/ns-requirements.txt, installed
    # with --no-deps (nerfstudio's declared requirements would pull CUDA torch 2.14 and 8 GB). Nothing is written to .venv.
    t0=$(date +%s)
    NSV=${REALSIM_NS_VENV:-.venv-ns}
    if [ ! -x .venv/bin/python ]; then bash .ci/install.sh; fi
    main_site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    base_py=$(.venv/bin/python -c "import sys; print(sys._base_executable)")
    ns_site() { "$NSV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"; }
    if [ -x "$NSV/bin/python" ] && [ ! -f "$(ns_site)/_realsim_venv.pth" ]; then
        echo "realsim install --nerfstudio: replacing the self-contained $NSV (torch 2.14 + CUDA) by one layered on .venv"
        rm -rf "$NSV"
    fi
    if [ ! -x "$NSV/bin/python" ]; then "$base_py" -m venv "$NSV"; fi
    echo "import site; site.addsitedir('$main_site')" > "$(ns_site)/_realsim_venv.pth"
    log=$(mktemp)
    run() { "$@" >>"$log" 2>&1 || { grep -v "is ignored" "$log" | tail -40; echo "install step failed: $*" >&2; exit 1; }; }
    todo=$(mktemp)
    .venv/bin/python - .ci/ns-requirements.txt >"$todo" <<'PY'
import importlib.metadata as md, re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
have = {norm(d.metadata["Name"]): d.version for d in md.distributions()}
for line in open(sys.argv[1]):  # the pins .venv does not hold at that exact version
    req = line.split("#")[0].strip()
    if req and have.get(norm(req.split("==")[0])) != req.split("==")[1]:
        print(req)
PY
    run "$NSV/bin/python" -m pip install -q --no-deps -r "$todo"
    run "$NSV/bin/python" -m pip install -q --no-deps -e .  # realsim's nerfstudio entry points (pyproject.toml)
    rm -f "$log" "$todo"
    "$NSV/bin/python" - <<'PY'
# torchvision's C ops (_C.so) link CUDA torch's libtorch_cuda and do not load on CPU torch; torchvision then imports
# without them (its _has_ops() is False, ops raise when called) except for two fake-kernel registrations of ops that
# were never defined: guard those the way torchvision guards the others. nerfstudio uses torchvision's Python only.
import importlib.util, pathlib, re
p = pathlib.Path(importlib.util.find_spec("torchvision").submodule_search_locations[0]) / "_meta_registrations.py"
src = p.read_text()
guard = r'@(torch.library.register_fake("\1") if torchvision.extension._has_ops() else (lambda f: f))'
src, n = re.subn(r'^@torch\.library\.register_fake\("(torchvision::\w+)"\)$', guard, src, flags=re.M)
if n:
    p.write_text(src)
PY
    "$NSV/bin/python" - "$main_site" <<'PY'
import sys, torch, torchvision  # noqa: F401
import nerfstudio.scripts.train, nerfstudio.scripts.render, nerfstudio.scripts.viewer.run_viewer  # noqa: F401
from nerfstudio.plugins.registry import discover_methods
assert torch.__file__.startswith(sys.argv[1]) and not torch.version.cuda, f"not .venv's CPU torch: {torch.__file__}"
assert {"realsim-scaffold", "realsim-3dgs"} <= set(discover_methods()[0]), "realsim's nerfstudio methods not found"
print("realsim nerfstudio venv ok: torch", torch.__version__, "torchvision", torchvision.__version__)
PY
    echo "realsim install --nerfstudio: $(( $(date +%s) - t0 )) s, $NSV $(du -sh "$NSV" | cut -f1) (+ .venv)"
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
