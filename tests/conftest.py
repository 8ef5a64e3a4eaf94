"""Shared test setup: offline data, quiet Keras, and no accidental downloads."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "datasets").resolve()
if not SHARED_DATA.is_dir() and os.environ.get("TRAINCTL_DATA_DIR"):  # a checkout elsewhere (a git worktree)
    SHARED_DATA = Path(os.environ["TRAINCTL_DATA_DIR"]).resolve()

os.environ.setdefault("KERAS_BACKEND", "torch")
if SHARED_DATA.is_dir():
    os.environ.setdefault("TRAINCTL_DATA_DIR", str(SHARED_DATA))


@pytest.fixture
def shared_datasets() -> Path:
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip("../shared/datasets is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def keras() -> ModuleType:
    """Real Keras 3 on the torch backend (the ``test`` extra), the reference many tests compare to."""
    module = pytest.importorskip("keras")
    if module.backend.backend() != "torch":
        pytest.skip("needs KERAS_BACKEND=torch")
    return module


@pytest.fixture
def cli(tmp_path: Path):
    """The CLI, run in-process, writing runs under tmp_path."""
    from tests.clihelp import Cli

    return Cli(tmp_path / "runs")
