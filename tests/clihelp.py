"""Helpers for driving the CLI in-process (Typer's CliRunner) and reading run folders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from typer.testing import CliRunner

from trainctl.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


class Cli:
    def __init__(self, runs: Path) -> None:
        self.runs = runs
        self.runner = CliRunner()

    def __call__(self, *args: str | Path, runs: bool = True):
        argv = [str(a) for a in args]
        if runs and argv and argv[0] == "train" and "--runs-dir" not in argv:
            argv += ["--runs-dir", str(self.runs)]
        return self.runner.invoke(app, argv, catch_exceptions=False)

    def train_json(self, *args: str | Path) -> dict:
        res = self("train", *args, "--json")
        assert res.exit_code == 0, res.output + res.stderr
        return json.loads(res.stdout)


def train_until_then_signal(cfg: Path, runs: Path, marker: str, sig: int) -> tuple[int, str]:
    """Run ``trainctl train`` in a real subprocess, send ``sig`` once a stdout line starts with
    ``marker`` (e.g. ``Epoch 3/``), and return (exit code, stderr)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainctl", "train", str(cfg), "--runs-dir", str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(marker):
            break
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def run_weights(run: Path) -> dict[str, np.ndarray]:
    """Every array of a run's ``model.weights.h5``, by its path in the file."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(run / "model.weights.h5", "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def run_history(run: Path) -> dict[str, list[float]]:
    """A run's ``history.json`` without ``epoch_time`` (wall time, never equal between runs)."""
    history = read_json(run / "history.json")
    history.pop("epoch_time")
    return history


def assert_same_run(run: Path, reference: Path) -> None:
    """Bit-identical: the same history and the same weights, array for array."""
    assert run_history(run) == run_history(reference)
    got, want = run_weights(run), run_weights(reference)
    assert got.keys() == want.keys()
    for key in want:
        assert np.array_equal(got[key], want[key]), key


__all__: Sequence[str] = [
    "CONFIGS", "Cli", "assert_same_run", "read_json", "run_history", "run_weights", "write"
]  # fmt: skip
