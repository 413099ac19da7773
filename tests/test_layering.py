"""The package layers import downwards only: cli -> {sim, recon, render, assets}, sim -> {recon, render, assets},
recon -> {render, assets}, render -> assets; assets imports none of them. Function-level imports count too."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "cli": {"cli", "sim", "recon", "render", "assets"},
    "sim": {"sim", "recon", "render", "assets"},
    "recon": {"recon", "render", "assets"},
    "render": {"render", "assets"},
    "assets": {"assets"},
}


def _module_name(path: Path) -> list[str]:
    parts = ["realsim", *path.relative_to(ROOT).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path, source: str | None = None):
    """(line, absolute module name) for every import in the file, at any depth (functions, try blocks, ...)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name[:-1]
    source = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                # `from .. import sim` names the layer through the alias, not the module
                names = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
                for m in names:
                    yield node.lineno, m
            else:
                yield node.lineno, node.module or ""


def _violations(layer: str) -> list[str]:
    out = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for line, mod in _imports(path):
            parts = mod.split(".")
            if parts[0] == "realsim" and len(parts) > 1 and parts[1] in ALLOWED and parts[1] not in ALLOWED[layer]:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    return out


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_follow_the_layers(layer):
    bad = _violations(layer)
    assert not bad, f"{layer}/ may import only {sorted(ALLOWED[layer] - {layer})}:\n" + "\n".join(bad)


def test_the_walk_sees_relative_and_nested_imports():
    # guard the checker itself: function-level relative imports resolve to absolute names, in modules and __init__ files
    src = "def f():\n    from ..sim import world\n    from ..assets.frames import camera_center\n    from . import ref\n"
    assert [m for _, m in _imports(ROOT / "render" / "x.py", src)] == [
        "realsim.sim", "realsim.assets.frames", "realsim.render.ref"]
    assert [m for _, m in _imports(ROOT / "sim" / "motion" / "__init__.py", "from ..world import World\n")] == [
        "realsim.sim.world"]
