"""``trainctl.evaluation.evaluate`` from a run folder alone, and ``RunDir.find``.

The independent expectation for evaluate on a run's own test split is the ``metrics.json`` that
``train`` wrote: the rows are re-read, re-split and re-preprocessed from scratch here, so any
drift in the split, the smoke slice or the saved preprocessing shows up as different numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.clihelp import CONFIGS, Cli, read_json, write
from trainctl.errors import ArtifactError, DataError
from trainctl.evaluation import evaluate
from trainctl.runs import RunDir

IRIS = """
name: iris_csv
seed: 3
data:
  source: csv
  path: data/iris.csv
  target: species
  features: [petal_width, sepal_length, petal_length, sepal_width]
  test_split: 0.3
  x: [standardize]
model:
  layers:
    - {type: Dense, units: 8, activation: tanh, input_shape: [4]}
    - {type: Dense, units: 3, activation: softmax}
compile: {optimizer: {type: Adam, learning_rate: 0.02}, loss: sparse_categorical_crossentropy,
          metrics: [accuracy, {type: sparse_top_k_categorical_accuracy, k: 2}]}
fit: {epochs: 4, batch_size: 16}
"""


def close(a: dict[str, float], b: dict[str, float]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-12), k


def files(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Trained once per module: digits (full and --smoke) and iris from a CSV with text labels."""
    from sklearn.datasets import load_iris

    tmp = tmp_path_factory.mktemp("ev")
    cli = Cli(tmp / "runs")
    iris = load_iris()
    (tmp / "cfg" / "data").mkdir(parents=True)
    header = "sepal_length,sepal_width,petal_length,petal_width,species"
    rows = [",".join(map(str, r)) + f",{iris.target_names[t]}" for r, t in zip(iris.data, iris.target, strict=True)]
    (tmp / "cfg" / "data" / "iris.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return {
        "digits": Path(cli.train_json(CONFIGS / "digits_quickstart.yaml", "fit.epochs=2")["run_dir"]),
        "smoke": Path(cli.train_json(CONFIGS / "digits_quickstart.yaml", "--smoke", "--name", "dsmoke")["run_dir"]),
        "iris": Path(cli.train_json(write(tmp / "cfg", IRIS))["run_dir"]),
        "xor": Path(cli.train_json(CONFIGS / "xor.yaml", "fit.epochs=2")["run_dir"]),
    }


def test_digits_test_split_equals_train_metrics_and_writes_only_eval(runs: dict[str, Path]) -> None:
    run = runs["digits"]
    before = files(run)
    result = evaluate(run)
    assert result.samples == 360  # 20 % of 1797, as train_test_split rounds it
    close(result.metrics, read_json(run / "metrics.json")["test"])
    after = files(run)
    assert {k: v for k, v in after.items() if not k.startswith("eval")} == before
    saved = read_json(run / "eval" / "metrics.json")
    assert saved["metrics"] == result.metrics and saved["samples"] == 360
    assert not list((run / "eval").glob(".*tmp"))  # the atomic writer left no temp file


def test_smoke_run_evaluates_the_same_first_rows(runs: dict[str, Path]) -> None:
    run = runs["smoke"]
    assert read_json(run / "run.json")["smoke"] is True
    result = evaluate(run, batch_size=7)  # the batch size changes only the summation order
    assert result.samples == 128
    close(result.metrics, read_json(run / "metrics.json")["test"])


def test_copied_csv_run_without_its_config(runs: dict[str, Path], tmp_path: Path) -> None:
    run = runs["iris"]
    info = read_json(run / "run.json")
    config_dir = Path(info["base_dir"])
    copy = tmp_path / "elsewhere" / run.name
    shutil.copytree(run, copy)
    (config_dir / "cfg.yaml").rename(config_dir / "gone.yaml")  # the original config is no more
    try:
        result = evaluate(copy)
    finally:
        (config_dir / "gone.yaml").rename(config_dir / "cfg.yaml")
    assert result.samples == 45 and result.run_dir == copy
    expected = read_json(run / "metrics.json")["test"]
    assert set(expected) == {"loss", "accuracy", "sparse_top_k_categorical_accuracy"}
    close(result.metrics, expected)
    assert not (run / "eval").exists()  # evaluating the copy wrote into the copy only


def test_data_without_test_split_is_a_clear_data_error(runs: dict[str, Path]) -> None:
    with pytest.raises(DataError, match="expected data with a test split") as e:
        evaluate(runs["xor"])
    assert "--data" in (e.value.hint or "")


def test_data_npz_with_text_labels_through_the_saved_vocabulary(runs: dict[str, Path], tmp_path: Path) -> None:
    # an iris CSV holding only two of the three species: the labels must map through the run's
    # saved class names (setosa=0, versicolor=1, virginica=2), not this file's own sorted values
    from sklearn.datasets import load_iris

    iris = load_iris()
    keep = iris.target > 0
    lines = ["petal_width,sepal_length,petal_length,sepal_width,species"]
    for (sl, sw, pl, pw), t in zip(iris.data[keep], iris.target[keep], strict=True):
        lines.append(f"{pw},{sl},{pl},{sw},{iris.target_names[t]}")
    (tmp_path / "two.csv").write_text("\n".join(lines) + "\n")
    result = evaluate(runs["iris"], data=tmp_path / "two.csv", save=False)
    np.savez(tmp_path / "two.npz", x=iris.data[keep][:, [3, 0, 2, 1]], y=iris.target[keep])
    close(result.metrics, evaluate(runs["iris"], data=tmp_path / "two.npz", save=False).metrics)
    assert result.samples == 100


def test_corrupt_run_folders_name_the_file(runs: dict[str, Path], tmp_path: Path) -> None:
    cases = [
        ("model.json", None),
        ("model.weights.h5", b"not hdf5"),
        ("preprocess.json", b"{"),
        ("preprocess.json", json.dumps({"format": 99}).encode()),
        ("preprocess.json", None),
        ("config.resolved.yaml", b"compile: [unclosed"),
        ("config.resolved.yaml", None),
    ]
    for i, (name, content) in enumerate(cases):
        copy = tmp_path / f"run{i}"
        shutil.copytree(runs["digits"], copy)
        if content is None:
            (copy / name).unlink()
        else:
            (copy / name).write_bytes(content)
        with pytest.raises(ArtifactError) as e:
            evaluate(copy, save=False)
        assert name in e.value.render(), (name, e.value.render())


def _fake_run(runs_dir: Path, name: str, with_model: bool = True) -> Path:
    folder = runs_dir / name
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"format_version": 1}))
    if with_model:
        (folder / "model.json").write_text("{}")
        (folder / "model.weights.h5").write_bytes(b"")
    return folder


def test_rundir_find_newest_by_name(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _fake_run(runs, "digits-20260101-120000")
    _fake_run(runs, "digits-20260101-120000-2")
    newest = _fake_run(runs, "digits-20260102-090000")
    _fake_run(runs, "digits-20260103-090000", with_model=False)  # still training
    _fake_run(runs, "digits-big-20260109-000000")  # another run name that starts the same
    assert RunDir.find("digits", runs).path == newest
    assert RunDir.find("digits-big", runs).path.name == "digits-big-20260109-000000"
    assert RunDir.find(newest, runs).path == newest  # a path is taken as it is
    with pytest.raises(ArtifactError) as e:
        RunDir.find("digitz", runs)
    assert "did you mean 'digits'" in (e.value.hint or "") and "digits-big" in (e.value.hint or "")
    with pytest.raises(ArtifactError, match="run folder not found"):
        RunDir.find(str(runs / "digits-20300101-000000"), runs)
