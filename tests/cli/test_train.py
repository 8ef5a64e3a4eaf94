"""``trainctl train``: the run folder, the history files, plain output, determinism."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tests.clihelp import CONFIGS, Cli, read_json, run_weights, write

TINY = """
name: tiny
seed: 5
data: {source: sklearn, name: iris, test_split: 0.2, x: [standardize]}
model:
  layers:
    - {type: Dense, units: 8, activation: relu, input_shape: [4]}
    - {type: Dense, units: 3, activation: softmax}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit: {epochs: 3, batch_size: 16, validation_split: 0.25}
"""

RUN_FILES = {
    "config.yaml", "config.resolved.yaml", "run.json", "history.json", "history.csv",
    "metrics.json", "summary.txt", "preprocess.json", "model.json", "model.weights.h5", "model.h5",
}  # fmt: skip


def test_run_folder_layout_and_json_output(cli: Cli, tmp_path: Path) -> None:
    out = cli.train_json(write(tmp_path, TINY))
    run = Path(out["run_dir"])
    assert out["status"] == "completed" and out["epochs"] == 3
    assert run.parent == cli.runs and run.name.startswith("tiny-")
    assert {p.name for p in run.iterdir()} >= RUN_FILES
    history = read_json(run / "history.json")
    assert list(history) == ["loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time"]
    assert all(len(v) == 3 for v in history.values())
    assert history["lr"] == [0.001] * 3
    rows = list(csv.reader((run / "history.csv").open()))
    assert rows[0] == ["epoch", *history]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    assert float(rows[2][1]) == history["loss"][1]
    metrics = read_json(run / "metrics.json")
    assert metrics["train"]["loss"] == history["loss"][-1]
    assert metrics["val"]["accuracy"] == history["val_accuracy"][-1]
    assert set(metrics["test"]) == {"loss", "accuracy"}
    assert out["metrics"] == metrics
    info = read_json(run / "run.json")
    assert info["status"] == "completed" and info["seed"] == 5 and info["device"] == "cpu"
    assert info["versions"]["torch"] and info["peak_rss_mb"] > 0
    resolved = (run / "config.resolved.yaml").read_text()
    assert "epsilon: 1.0e-07" in resolved and "batch_size: 16" in resolved


def test_same_seed_gives_identical_weights_and_history(cli: Cli, tmp_path: Path) -> None:
    # dropout and shuffling both draw random numbers: the seed must pin them all
    with_dropout = TINY.replace(
        "    - {type: Dense, units: 3", "    - {type: Dropout, rate: 0.3}\n    - {type: Dense, units: 3"
    )
    cfg = write(tmp_path, with_dropout)
    a = Path(cli.train_json(cfg)["run_dir"])
    b = Path(cli.train_json(cfg)["run_dir"])
    assert a != b  # a run folder is never reused
    wa, wb = run_weights(a), run_weights(b)
    assert wa and wa.keys() == wb.keys()
    for key in wa:
        assert np.array_equal(wa[key], wb[key]), key
    ha, hb = read_json(a / "history.json"), read_json(b / "history.json")
    ha.pop("epoch_time"), hb.pop("epoch_time")
    assert ha == hb
    c = Path(cli.train_json(cfg, "seed=6")["run_dir"])
    wc = run_weights(c)
    assert any(not np.array_equal(wa[k], wc[k]) for k in wa)


def test_plain_output_one_line_per_epoch(cli: Cli, tmp_path: Path) -> None:
    res = cli("train", write(tmp_path, TINY), "fit.epochs=4")
    assert res.exit_code == 0, res.output
    assert "\r" not in res.stdout and "\x1b" not in res.stdout
    epoch_lines = [line for line in res.stdout.splitlines() if line.startswith("Epoch ")]
    assert [line.split(" - ")[0] for line in epoch_lines] == [f"Epoch {i}/4" for i in range(1, 5)]
    assert all("loss: " in line and "val_accuracy: " in line for line in epoch_lines)


def test_verbose_zero_is_silent_and_json_keeps_stdout_clean(cli: Cli, tmp_path: Path) -> None:
    res = cli("train", write(tmp_path, TINY), "fit.verbose=0")
    assert res.exit_code == 0 and res.stdout == ""
    res = cli("train", write(tmp_path, TINY), "--json")
    assert json.loads(res.stdout)["status"] == "completed"  # stdout is exactly one JSON object
    assert "Epoch 1/3" in res.stderr


def test_overrides_are_recorded(cli: Cli, tmp_path: Path) -> None:
    out = cli.train_json(write(tmp_path, TINY), "fit.epochs=2", "compile.optimizer.learning_rate=0.01")
    run = Path(out["run_dir"])
    assert read_json(run / "history.json")["lr"] == [0.01, 0.01]
    given = (run / "config.yaml").read_text()
    assert "fit.epochs=2" in given.splitlines()[0]


def test_summary_command_matches_keras_counts(cli: Cli) -> None:
    res = cli("summary", CONFIGS / "mnist_mlp.yaml")
    assert res.exit_code == 0
    for count in ("200,960", "32,896", "1,290", "Total params: 235,146 (918.54 KB)"):
        assert count in res.stdout
    data = json.loads(cli("summary", CONFIGS / "mnist_mlp.yaml", "--json").stdout)
    assert [layer["params"] for layer in data["layers"]] == [200960, 32896, 1290]
    assert data["total_params"] == 235146
