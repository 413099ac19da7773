"""Shared fixtures: real data through REALSIM_DATA (default ../shared/data beside the repo), skipped loudly when absent."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("REALSIM_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def realsim_data() -> Path:
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}: set REALSIM_DATA to the shared data folder")
    return root


@pytest.fixture
def fresh_log_handlers():
    """cli.main adds a stderr handler per call bound to that moment's sys.stderr; capsys swaps stderr per test.
    CLI test modules use it with `pytestmark = pytest.mark.usefixtures("fresh_log_handlers")`."""
    logging.getLogger("realsim").handlers.clear()
    yield
    logging.getLogger("realsim").handlers.clear()


def need_data(rel: str) -> Path:
    """Path to a shared dataset, or skip the test saying which folder is missing."""
    p = data_root() / rel
    if not p.exists():
        pytest.skip(f"real data {p} absent: set REALSIM_DATA to the shared data folder")
    return p
