"""The conv family's shipped configs train end to end through the CLI (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from trainctl.cli.main import app

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def train(tmp_path: Path, *args: str) -> dict:
    res = CliRunner().invoke(app, ["train", *args, "--runs-dir", str(tmp_path), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output + res.stderr
    return json.loads(res.stdout)


def test_conv1d_sequence_learns_the_digits(tmp_path: Path) -> None:
    """A real task: a few epochs already classify held-out digits far above chance (0.1)."""
    out = train(tmp_path, str(CONFIGS / "conv1d_sequence.yaml"), "fit.epochs=6")
    assert out["status"] == "completed"
    assert out["metrics"]["test"]["accuracy"] >= 0.9


def test_mnist_cnn_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (SHARED / "mnist").is_dir():
        pytest.skip("../shared/datasets is not present")
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(SHARED))
    out = train(tmp_path, str(CONFIGS / "mnist_cnn.yaml"), "--smoke")
    assert out["status"] == "completed" and out["epochs"] == 1
    assert np.isfinite(out["metrics"]["test"]["loss"])
    # the saved convolution kernels are in Keras's layout: (kh, kw, in, filters)
    with h5py.File(Path(out["run_dir"]) / "model.weights.h5", "r") as f:
        assert f["layers/conv2d/vars/0"].shape == (3, 3, 1, 32)
        assert f["layers/conv2d_1/vars/0"].shape == (3, 3, 32, 64)
        assert f["layers/dense/vars/0"].shape == (1600, 10)
