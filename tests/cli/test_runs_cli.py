"""``trainctl runs list|show|compare`` and ``summary --plot`` on real run folders.

Two runs of one tiny config that differ only in the learning rate. Every expected value is read
from the run folders' own files (history.json, metrics.json, run.json) and computed here.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.clihelp import Cli, read_json, write

CONFIG = """
name: runsa
seed: 3
data: {source: sklearn, name: iris, test_split: 0.2, x: [standardize]}
model:
  layers:
    - {type: Dense, units: 8, activation: relu, input_shape: [4]}
    - {type: Dense, units: 3, activation: softmax}
compile:
  optimizer: {type: Adam, learning_rate: 0.001}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
fit: {epochs: 3, batch_size: 32, validation_split: 0.25}
"""
RATES = (0.05, 0.001)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, list[Path]]:
    """Runs in training order: the last one trained is the newest."""
    tmp = tmp_path_factory.mktemp("runs_cli")
    cli = Cli(tmp / "runs")
    config = write(tmp, CONFIG)
    folders = [Path(cli.train_json(config, f"compile.optimizer.learning_rate={lr}")["run_dir"]) for lr in RATES]
    return cli, folders


def ok(res: object) -> dict:
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    return json.loads(res.stdout)  # type: ignore[attr-defined]


def expected_best(folder: Path) -> tuple[float, int]:
    history = read_json(folder / "history.json")
    values = history["val_accuracy"]
    return max(values), values.index(max(values)) + 1  # accuracy: higher is better, first epoch on ties


def seconds(folder: Path) -> float:
    run = read_json(folder / "run.json")
    return (datetime.fromisoformat(run["ended"]) - datetime.fromisoformat(run["started"])).total_seconds()


def test_list_json_matches_the_run_folders(trained: tuple[Cli, list[Path]]) -> None:
    cli, folders = trained
    out = ok(cli("runs", "list", "--runs-dir", cli.runs, "--json"))
    assert [Path(r["run_dir"]).name for r in out["runs"]] == [f.name for f in reversed(folders)]
    for row, folder in zip(out["runs"], reversed(folders), strict=True):
        run = read_json(folder / "run.json")
        epochs = len(read_json(folder / "history.json")["loss"])
        assert (row["name"], row["status"], row["epochs"]) == ("runsa", run["status"], epochs)
        assert row["started"] == run["started"] and row["duration_s"] == seconds(folder)
        value, epoch = expected_best(folder)
        assert row["best_val"] == {"key": "val_accuracy", "value": value, "epoch": epoch, "mode": "max"}
        assert row["test"] == {"key": "accuracy", "value": read_json(folder / "metrics.json")["test"]["accuracy"]}


def test_list_text_is_one_plain_line_per_run(trained: tuple[Cli, list[Path]]) -> None:
    cli, folders = trained
    res = cli("runs", "list", "--runs-dir", cli.runs)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split()[:4] == ["run", "date", "status", "epochs"]
    assert "best val_accuracy" in lines[0] and "test accuracy" in lines[0]
    assert "\x1b" not in res.stdout  # no colours when stdout is not a terminal
    for line, folder in zip(lines[1:], reversed(folders), strict=True):
        cells = line.split()
        test = read_json(folder / "metrics.json")["test"]["accuracy"]
        assert cells[0] == folder.name and cells[3] == "completed" and cells[4] == "3"
        assert cells[5:7] == [f"{expected_best(folder)[0]:.4f}", f"{test:.4f}"]


def test_list_survives_corrupt_and_foreign_folders(trained: tuple[Cli, list[Path]], tmp_path: Path) -> None:
    cli, folders = trained
    runs = tmp_path / "runs"
    shutil.copytree(folders[0], runs / folders[0].name)
    (runs / "broken-20200101-000000").mkdir()
    (runs / "broken-20200101-000000" / "run.json").write_text('{"status": "compl')
    (runs / "datasets").mkdir()
    out = ok(cli("runs", "list", "--runs-dir", runs, "--json"))
    assert [(Path(r["run_dir"]).name, r["status"]) for r in out["runs"]] == [
        (folders[0].name, "completed"),
        ("broken-20200101-000000", "corrupt"),
    ]
    res = cli("runs", "list", "--runs-dir", runs)
    assert res.exit_code == 0 and "corrupt" in res.stdout and "datasets" not in res.stdout
    empty = ok(cli("runs", "list", "--runs-dir", tmp_path / "none", "--json"))
    assert empty["runs"] == []


def test_show_json_has_run_json_final_metrics_and_config(trained: tuple[Cli, list[Path]]) -> None:
    cli, folders = trained
    out = ok(cli("runs", "show", folders[0], "--json"))
    assert out["run"] == read_json(folders[0] / "run.json")
    assert out["metrics"] == read_json(folders[0] / "metrics.json")
    value, epoch = expected_best(folders[0])
    assert (out["best_val"]["value"], out["best_val"]["epoch"]) == (value, epoch)
    config = out["config"]
    assert (config["optimizer"], config["learning_rate"], config["loss"]) == (
        "Adam",
        RATES[0],
        "sparse_categorical_crossentropy",
    )
    assert (config["epochs"], config["batch_size"], config["metrics"]) == (3, 32, ["accuracy"])
    assert config["params"] == (4 * 8 + 8) + (8 * 3 + 3)  # Dense kernels and biases


def test_show_by_name_is_the_newest_run_in_plain_text(trained: tuple[Cli, list[Path]]) -> None:
    cli, folders = trained
    res = cli("runs", "show", "runsa", "--runs-dir", cli.runs)
    assert res.exit_code == 0, res.output
    facts = dict(line.split(None, 1) for line in res.stdout.splitlines() if line and len(line.split(None, 1)) == 2)
    assert facts["run"] == folders[-1].name and facts["status"] == "completed"
    test = read_json(folders[-1] / "metrics.json")["test"]
    assert facts["test"].split() == [f"{test['loss']:.4f}", f"{test['accuracy']:.4f}"]
    assert facts["learning_rate"] == str(RATES[-1])


def test_compare_json_lists_only_the_learning_rate_and_metric_deltas(trained: tuple[Cli, list[Path]]) -> None:
    cli, folders = trained
    out = ok(cli("runs", "compare", *folders, "--json"))
    assert out["config"] == [{"key": "compile.optimizer.learning_rate", "values": list(RATES)}]
    first, second = (read_json(f / "metrics.json") for f in folders)
    rows = {m["key"]: m for m in out["metrics"]}
    assert set(rows) == {f"{s}.{k}" for s in ("train", "val", "test") for k in ("loss", "accuracy")}
    for split in ("train", "val", "test"):
        for metric in ("loss", "accuracy"):
            row = rows[f"{split}.{metric}"]
            a, b = first[split][metric], second[split][metric]
            assert row["values"] == [a, b]
            assert row["deltas"] == pytest.approx([0.0, b - a], abs=1e-12)
    assert [r["run_dir"] for r in out["runs"]] == [str(f) for f in folders]


def test_compare_text_shows_the_difference_side_by_side(trained: tuple[Cli, list[Path]]) -> None:
    cli, folders = trained
    names = [f.name for f in folders]
    res = cli("runs", "compare", *names, "--runs-dir", cli.runs)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert "config: 1 key differs" in lines
    assert ["compile.optimizer.learning_rate", str(RATES[0]), str(RATES[1])] in [line.split() for line in lines]
    a, b = (read_json(f / "metrics.json")["val"]["loss"] for f in folders)
    assert ["val.loss", f"{a:.4f}", f"{b:.4f}", f"({b - a:+.4f})"] in [line.split() for line in lines]


def test_unknown_runs_exit_4_with_a_suggestion(trained: tuple[Cli, list[Path]]) -> None:
    cli, folders = trained
    res = cli("runs", "show", "runz", "--runs-dir", cli.runs)
    assert res.exit_code == 4 and "did you mean 'runsa'" in res.stderr
    res = cli("runs", "compare", folders[0], "rnsa", "--runs-dir", cli.runs, "--json")
    assert res.exit_code == 4
    assert json.loads(res.stdout)["exit_code"] == 4
    res = cli("runs", "compare", folders[0])
    assert res.exit_code == 2 and "at least two runs" in res.stderr


def test_summary_of_a_run_draws_its_layer_stack(trained: tuple[Cli, list[Path]], tmp_path: Path) -> None:
    cli, _ = trained
    svg = tmp_path / "model.svg"
    res = cli("summary", "runsa", "--runs-dir", cli.runs, "--plot", svg)
    assert res.exit_code == 0, res.output
    assert "dense_1 (Dense)" in res.stdout and "Total params: 67" in res.stdout  # the table is still printed
    texts = ["".join(t.itertext()) for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")]
    for name, shape_in, shape_out in (("dense", "(None, 4)", "(None, 8)"), ("dense_1", "(None, 8)", "(None, 3)")):
        assert f"{name} (Dense)" in texts
        assert f"Input shape: {shape_in}" in texts and f"Output shape: {shape_out}" in texts


def test_summary_of_a_config_plots_png_and_refuses_other_suffixes(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "runs")
    config = write(tmp_path, CONFIG)
    png = tmp_path / "model.png"
    out = ok(cli("summary", config, "--plot", png, "--json"))
    assert out["plot"] == str(png) and [layer["name"] for layer in out["layers"]] == ["dense", "dense_1"]
    grey = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    assert grey.var() > 0
    res = cli("summary", config, "--plot", tmp_path / "model.gif")
    assert res.exit_code == 2 and "--plot" in res.stderr and not (tmp_path / "model.gif").exists()
