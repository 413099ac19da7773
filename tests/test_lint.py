"""`ruff check` (rule set in pyproject.toml [tool.ruff], version pinned in .ci/constraints.txt) is part of the suite."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert exe, "ruff is not installed: pip install -c .ci/constraints.txt -e '.[dev]' (or bash .ci/install.sh)"
    r = subprocess.run([exe, "check", "--no-cache", "--output-format", "concise", "."], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"ruff check found problems:\n{r.stdout}{r.stderr}"
