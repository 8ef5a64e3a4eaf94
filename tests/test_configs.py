"""Every shipped config validates, starts with its command, and the small ones train as they are."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.clihelp import CONFIGS, Cli, read_json
from trainctl.config import load_config

ALL = sorted(CONFIGS.glob("*.yaml"))
SMALL = ["digits_quickstart", "linear_regression", "nonlinear_regression", "xor", "wine_wide_deep", "wine_two_heads"]
NEEDS_IDX = ["mnist_mlp", "fashion_mnist", "fashion_mnist_augment", "fashion_mnist_resnet"]


def test_there_are_configs() -> None:
    assert {p.stem for p in ALL} >= set(SMALL + NEEDS_IDX)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_config_validates_and_names_its_command(path: Path) -> None:
    load_config(path)
    first = path.read_text().splitlines()[0]
    assert first == f"# trainctl train configs/{path.name}"


@pytest.mark.parametrize("name", SMALL)
def test_small_config_trains_end_to_end(cli: Cli, name: str) -> None:
    out = cli.train_json(CONFIGS / f"{name}.yaml")
    assert out["status"] in ("completed", "stopped_early")
    history = read_json(Path(out["run_dir"]) / "history.json")
    assert np.isfinite(history["loss"]).all()


@pytest.mark.parametrize("name", NEEDS_IDX)
def test_idx_configs_smoke(cli: Cli, name: str, shared_datasets: Path) -> None:
    out = cli.train_json(CONFIGS / f"{name}.yaml", "--smoke")
    assert out["status"] == "completed" and out["epochs"] == 1
    assert np.isfinite(out["metrics"]["test"]["loss"])


def test_xor_reaches_full_accuracy(cli: Cli) -> None:
    out = cli.train_json(CONFIGS / "xor.yaml")
    history = read_json(Path(out["run_dir"]) / "history.json")
    assert history["binary_accuracy"][-1] == 1.0


def _dense_weights(run: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(run / "model.weights.h5", "r") as f:
        group = f["layers/dense/vars"]
        return group["0"][()], group["1"][()]


def test_linear_regression_recovers_w_and_b(cli: Cli) -> None:
    from trainctl.data import load_data

    loaded = load_config(CONFIGS / "linear_regression.yaml")
    out = cli.train_json(CONFIGS / "linear_regression.yaml")
    kernel, bias = _dense_weights(Path(out["run_dir"]))
    data = load_data(loaded.config.data, base_dir=CONFIGS, seed=loaded.config.seed)
    # the least-squares line through the same noisy points is what gradient descent must find
    slope, intercept = np.polyfit(data.x_train[:, 0], data.y_train[:, 0], 1)
    assert kernel[0, 0] == pytest.approx(slope, abs=0.02)
    assert bias[0] == pytest.approx(intercept, abs=0.1)
    assert kernel[0, 0] == pytest.approx(4.0, abs=0.5) and bias[0] == pytest.approx(3.0, abs=2.0)


@pytest.mark.slow
def test_fashion_mnist_reaches_087(cli: Cli, shared_datasets: Path) -> None:
    out = cli.train_json(CONFIGS / "fashion_mnist.yaml")
    assert out["epochs"] == 5
    assert out["metrics"]["test"]["accuracy"] >= 0.87


@pytest.fixture
def idx_dir(shared_datasets_or_env: Path) -> Path:
    return shared_datasets_or_env


@pytest.fixture
def shared_datasets_or_env() -> Path:
    """The shared IDX files: ../shared/datasets, else $TRAINCTL_DATA_DIR (a worktree elsewhere)."""
    import os

    from tests.conftest import SHARED_DATA

    for folder in (SHARED_DATA, Path(os.environ.get("TRAINCTL_DATA_DIR", "/nonexistent"))):
        if (folder / "fashion_mnist").is_dir():
            return folder
    pytest.skip("no shared Fashion-MNIST IDX files (../shared/datasets or $TRAINCTL_DATA_DIR)")


def _make(script: str, out: Path, *args: str) -> None:
    import subprocess
    import sys

    from tests.clihelp import ROOT

    cmd = [sys.executable, str(ROOT / "benchmarks" / script), str(out), "--limit", "300", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)


def test_folder_augment_config_smoke(cli: Cli, idx_dir: Path, tmp_path: Path) -> None:
    """The config as shipped, on a small folder written by the documented command."""
    _make("make_image_folder.py", tmp_path / "png", "--data-dir", str(idx_dir))
    d = tmp_path / "png"
    out = cli.train_json(
        CONFIGS / "fashion_mnist_folder_augment.yaml",
        "--smoke",
        f"data.directory={d / 'train'}",
        f"data.test_directory={d / 'test'}",
    )
    assert out["status"] == "completed" and np.isfinite(out["metrics"]["test"]["loss"])


def test_mlp_npy_config_smoke(cli: Cli, idx_dir: Path, tmp_path: Path) -> None:
    """The out-of-core MLP config on shards written by the documented command."""
    _make("make_npy_table.py", tmp_path / "npy", "--data-dir", str(idx_dir))
    d = tmp_path / "npy"
    out = cli.train_json(
        CONFIGS / "fashion_mnist_mlp_npy.yaml",
        "--smoke",
        f"data.x={d}/x_train_*.npy",
        f"data.y={d}/y_train_*.npy",
        f"data.x_test={d}/x_test.npy",
        f"data.y_test={d}/y_test.npy",
    )
    assert out["status"] == "completed" and np.isfinite(out["metrics"]["test"]["loss"])
    info = read_json(Path(out["run_dir"]) / "run.json")
    assert info["data"]["cache"] == "none"
