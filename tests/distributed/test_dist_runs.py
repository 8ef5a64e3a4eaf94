"""One run folder, written by rank 0 alone, that evaluate and predict open; callbacks decide on
the reduced numbers, so EarlyStopping stops every rank at the epoch one process stops at."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.clihelp import Cli, read_json, run_history, write
from tests.distributed.disthelp import only_run, trainctl

CONFIG = """
name: decide
seed: 9
device: cpu
threads: 1
data: {source: sklearn, name: digits, test_split: 0.2, x: [{scale: 16}]}
model:
  layers:
    - {type: Dense, units: 32, activation: relu, input_shape: [64]}
    - {type: Dropout, rate: 0.2}
    - {type: Dense, units: 10, activation: softmax}
compile: {optimizer: {type: Adam, learning_rate: 0.003}, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit:
  epochs: 10
  batch_size: 64
  validation_split: 0.1
  verbose: 2
  callbacks:
    # the first epoch sets the best val_loss; no later one improves by 10: stop after epoch 2
    - {type: EarlyStopping, monitor: val_loss, patience: 1, min_delta: 10}
    - {type: ReduceLROnPlateau, monitor: loss, patience: 0, factor: 0.5, min_delta: 10}
    - {type: ModelCheckpoint, filepath: "checkpoints/epoch{epoch:02d}.weights.h5", save_weights_only: true}
    - {type: CSVLogger}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(the 2-process run, the 1-process run, the 2-process stdout+stderr)."""
    tmp = tmp_path_factory.mktemp("decide")
    cfg = write(tmp, CONFIG)
    Cli(tmp / "one").train_json(cfg)
    done = trainctl("train", cfg, "--runs-dir", tmp / "two", "--nproc-per-node", "2")
    assert done.returncode == 0, done.stderr
    return only_run(tmp / "two"), only_run(tmp / "one"), done.stdout + done.stderr


def test_early_stopping_stops_every_rank_at_the_same_epoch(runs: tuple[Path, Path, str]) -> None:
    two, one, output = runs
    info = read_json(two / "run.json")
    assert info["status"] == "stopped_early" == read_json(one / "run.json")["status"]
    assert info["epochs"] == 2 == read_json(one / "run.json")["epochs"]
    assert run_history(two)["lr"] == run_history(one)["lr"]
    assert "completed" not in output and "stopped_early" in output


def test_one_run_folder_written_by_rank_zero(runs: tuple[Path, Path, str]) -> None:
    two, _, output = runs
    info = read_json(two / "run.json")
    assert info["distributed"] | {"timeout_s": 0} == {
        "world_size": 2,
        "backend": "gloo",
        "nodes": 1,
        "nproc_per_node": 2,
        "timeout_s": 0,
    }
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["epoch01.weights.h5", "epoch02.weights.h5"]
    assert len((two / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs, once
    lines = [line for line in output.splitlines() if line.strip()]
    assert [n for line, n in Counter(lines).items() if n > 1] == []  # no log line twice
    assert sum(line.startswith("Epoch ") for line in lines) == 2
    assert sum(line.startswith("run folder:") for line in lines) == 1


def test_evaluate_and_predict_open_it(runs: tuple[Path, Path, str], tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    two, _, _ = runs
    done = trainctl("evaluate", two, "--json")
    assert done.returncode == 0, done.stderr
    rows = tmp_path / "rows.npy"
    np.save(rows, load_digits().data[:5].astype(np.float32))
    done = trainctl("predict", two, rows, "--classes")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) >= 5
