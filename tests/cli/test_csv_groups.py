"""CSV data for a model with several inputs and outputs: ``data.features`` maps each model input to
its group of columns, ``data.target`` each output to its column. Training on the CSV equals training
on an .npz holding the same arrays (built here with numpy, not trainctl's reader); predict and
evaluate take CSVs with the same columns; a bad mapping fails `config validate` with its dotted key."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.clihelp import Cli, read_json

WIDE = ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium"]
DEEP = ["flavanoids", "hue", "color_intensity", "proline"]
CLASSES = np.array(["barolo", "grignolino", "barbera"])  # sorted: barbera=0, barolo=1, grignolino=2

CSV_CFG: dict[str, Any] = {
    "name": "wine_csv",
    "seed": 5,
    "threads": 1,
    "data": {
        "source": "csv",
        "path": "train.csv",
        "test_path": "test.csv",
        "features": {"deep": DEEP, "wide": WIDE},  # any order: matched by input name
        "target": {"cultivar": "kind", "phenols": "total_phenols"},
    },
    "model": {
        "inputs": [{"name": "wide", "shape": [5]}, {"name": "deep", "shape": [4]}],
        "layers": [
            {"name": "deep1", "type": "Dense", "units": 8, "activation": "relu", "inputs": "deep"},
            {"name": "joined", "type": "Concatenate", "inputs": ["wide", "deep1"]},
            {"name": "cultivar", "type": "Dense", "units": 3, "activation": "softmax"},
            {"name": "phenols", "type": "Dense", "units": 1, "inputs": "joined"},
        ],
        "outputs": ["cultivar", "phenols"],
    },
    "compile": {
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "loss": {"cultivar": "sparse_categorical_crossentropy", "phenols": "mean_squared_error"},
        "metrics": {"cultivar": ["accuracy"], "phenols": ["mae"]},
    },
    "fit": {"epochs": 4, "batch_size": 16, "validation_split": 0.2},
}


def _table() -> tuple[list[str], np.ndarray, np.ndarray]:
    from sklearn.datasets import load_wine

    wine = load_wine()
    cols = [c.replace("/", "_") for c in wine.feature_names]
    x = (wine.data - wine.data.mean(0)) / wine.data.std(0)
    order = np.random.default_rng(0).permutation(len(x))
    return cols, np.round(x[order], 5), CLASSES[wine.target[order]]


def _write_csv(path: Path, cols: list[str], x: np.ndarray, kind: np.ndarray | None) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*cols, *(["kind"] if kind is not None else [])])
        for i, row in enumerate(x):
            w.writerow([*(f"{v:.5f}" for v in row), *([kind[i]] if kind is not None else [])])


def _arrays(cols: list[str], x: np.ndarray, kind: np.ndarray) -> dict[str, np.ndarray]:
    pick = lambda names: x[:, [cols.index(c) for c in names]].astype(np.float32)  # noqa: E731
    return {
        "wide": pick(WIDE),
        "deep": pick(DEEP),
        "cultivar": np.searchsorted(np.sort(CLASSES), kind).astype(np.int64),
        "phenols": x[:, cols.index("total_phenols")].astype(np.float32),
    }


@pytest.fixture
def wine(tmp_path: Path) -> dict[str, Any]:
    cols, x, kind = _table()
    _write_csv(tmp_path / "train.csv", cols, x[:140], kind[:140])
    _write_csv(tmp_path / "test.csv", cols, x[140:], kind[140:])
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(CSV_CFG))
    return {"cols": cols, "x": x, "kind": kind, "tmp": tmp_path}


def test_csv_groups_train_like_the_same_arrays_in_an_npz(cli: Cli, wine: dict[str, Any]) -> None:
    tmp, cols, x, kind = wine["tmp"], wine["cols"], wine["x"], wine["kind"]
    from_csv = cli.train_json(tmp / "cfg.yaml")
    train, test = _arrays(cols, x[:140], kind[:140]), _arrays(cols, x[140:], kind[140:])
    np.savez(
        tmp / "same.npz",
        **{f"x_train_{k}": train[k] for k in ("wide", "deep")},
        **{f"y_train_{k}": train[k] for k in ("cultivar", "phenols")},
        **{f"x_test_{k}": test[k] for k in ("wide", "deep")},
        **{f"y_test_{k}": test[k] for k in ("cultivar", "phenols")},
    )  # type: ignore[arg-type]
    cfg = copy.deepcopy(CSV_CFG)
    cfg["data"] = {"source": "npz", "path": "same.npz"}
    (tmp / "npz.yaml").write_text(yaml.safe_dump(cfg))
    from_npz = cli.train_json(tmp / "npz.yaml")
    assert set(from_csv["metrics"]) == set(from_npz["metrics"]) == {"train", "val", "test"}
    for split, numbers in from_csv["metrics"].items():
        assert numbers == pytest.approx(from_npz["metrics"][split], rel=1e-6), split
    h_csv, h_npz = (read_json(Path(o["run_dir"]) / "history.json") for o in (from_csv, from_npz))
    assert set(h_csv) == set(h_npz)
    for key in set(h_csv) - {"epoch_time"}:
        assert h_csv[key] == pytest.approx(h_npz[key], rel=1e-6), key

    # predict from a CSV with the same columns (no target columns needed) = predict from the arrays
    run = Path(from_csv["run_dir"])
    _write_csv(tmp / "new.csv", cols, x[140:], None)
    res = cli("predict", run, tmp / "new.csv", "--output", tmp / "from_csv.npz")
    assert res.exit_code == 0, res.output
    np.savez(tmp / "in.npz", wide=test["wide"], deep=test["deep"])
    res = cli("predict", Path(from_npz["run_dir"]), tmp / "in.npz", "--output", tmp / "from_npz.npz")
    assert res.exit_code == 0, res.output
    a, b = np.load(tmp / "from_csv.npz"), np.load(tmp / "from_npz.npz")
    assert sorted(a.files) == ["cultivar", "phenols"]
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6)

    # evaluate --data another CSV: its text labels are coded with the run's classes, even when the
    # file holds only some of them (barbera is class 0 of the run, and the only class here)
    only = kind[140:] == "barbera"
    _write_csv(tmp / "barbera.csv", cols, x[140:][only], kind[140:][only])
    res = cli("evaluate", run, "--data", tmp / "barbera.csv", "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)["metrics"]["cultivar_accuracy"]
    assert got == pytest.approx(float(np.mean(a["cultivar"][only].argmax(axis=1) == 0)), abs=1e-6)


BAD = [
    ("unknown input", lambda c: c["data"]["features"].update(dep=c["data"]["features"].pop("deep")),
     "data.features.dep", "did you mean 'deep'"),
    ("missing input", lambda c: c["data"]["features"].pop("wide"), "data.features", "'wide'"),
    ("empty group", lambda c: c["data"]["features"].update(wide=[]), "data.features.wide", "at least one column"),
    ("list for two inputs", lambda c: c["data"].update(features=WIDE), "data.features", "each model input"),
    ("one target, two outputs", lambda c: c["data"].update(target="kind"), "data.target", "each model output"),
    ("unknown output", lambda c: c["data"]["target"].update(phenol=c["data"]["target"].pop("phenols")),
     "data.target.phenol", "did you mean 'phenols'"),
    ("steps", lambda c: c["data"].update(x=["standardize"]), "data.x", "no preprocessing steps"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "edit", "key", "text"), BAD, ids=[b[0] for b in BAD])
def test_bad_groups_fail_config_validate_with_the_key(
    cli: Cli, tmp_path: Path, case: str, edit: Any, key: str, text: str
) -> None:
    cfg = copy.deepcopy(CSV_CFG)
    edit(cfg)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    res = cli("config", "validate", tmp_path / "bad.yaml")
    assert res.exit_code == 2, res.output
    assert f"{key}:" in res.stderr and text in res.stderr
    assert "Traceback" not in res.stderr + res.output


def test_another_source_is_refused_when_training(cli: Cli, tmp_path: Path) -> None:
    """A source that cannot give one array per input fails at train (before any data is read);
    `config validate` lets it through, so a config may describe only a model (for `summary`)."""
    cfg = copy.deepcopy(CSV_CFG)
    cfg["data"] = {"source": "sklearn", "name": "wine"}
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(cfg))
    assert cli("config", "validate", tmp_path / "other.yaml").exit_code == 0
    res = cli("train", tmp_path / "other.yaml")
    assert res.exit_code == 2 and "data.source" in res.stderr and "npz" in res.stderr


def test_a_mapping_for_one_input_and_output_is_refused(cli: Cli, tmp_path: Path) -> None:
    cfg = {
        "data": {"source": "csv", "path": "t.csv", "target": {"y": "y"}},
        "model": {"layers": [{"type": "Dense", "units": 1, "input_shape": [3]}]},
        "compile": {"loss": "mse"},
    }
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(cfg))
    res = cli("config", "validate", tmp_path / "one.yaml")
    assert res.exit_code == 2 and "data.target:" in res.stderr and "one input and one output" in res.stderr


def test_a_missing_column_is_a_data_error_naming_the_key(cli: Cli, wine: dict[str, Any]) -> None:
    cfg = copy.deepcopy(CSV_CFG)
    cfg["data"]["features"]["wide"] = [*WIDE[:-1], "magnesum"]
    (wine["tmp"] / "typo.yaml").write_text(yaml.safe_dump(cfg))
    res = cli("train", wine["tmp"] / "typo.yaml")
    assert res.exit_code == 3
    assert "data.features.wide[4]" in res.stderr and "did you mean 'magnesium'" in res.stderr
