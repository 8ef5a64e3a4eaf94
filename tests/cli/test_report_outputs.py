"""``evaluate --report`` for models with several outputs: one report per output, of the kind its
loss implies, keyed by output name. The numbers are checked against scikit-learn run in the test
on what ``trainctl predict`` writes for the same test rows (not the report's own code path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.clihelp import CONFIGS, Cli, read_json, write

TOL = 1e-6

# wine_two_heads with a logits head: the report must softmax it itself (its loss says from_logits)
LOGITS_HEADS = f"""
name: logits_heads
seed: 11
data: {{source: npz, path: {CONFIGS / "data" / "wine_two_heads.npz"}}}
model:
  inputs: [{{name: chem, shape: [12]}}]
  layers:
    - {{name: trunk, type: Dense, units: 16, activation: relu}}
    - {{name: cultivar, type: Dense, units: 3}}
    - {{name: alcohol, type: Dense, units: 1, inputs: trunk}}
  outputs: [cultivar, alcohol]
compile:
  optimizer: {{type: adam, learning_rate: 0.01}}
  loss:
    cultivar: {{type: sparse_categorical_crossentropy, from_logits: true}}
    alcohol: mean_absolute_error
  metrics: {{cultivar: [accuracy], alcohol: [mse]}}
fit: {{epochs: 3, batch_size: 16}}
"""


def _predict(cli: Cli, run: Path, rows: dict[str, np.ndarray], tmp: Path) -> dict[str, np.ndarray]:
    np.savez(tmp / "in.npz", **rows)  # type: ignore[arg-type]
    res = cli("predict", run, tmp / "in.npz", "--output", tmp / "out.npz")
    assert res.exit_code == 0, res.output
    with np.load(tmp / "out.npz") as out:
        return {k: out[k] for k in out.files}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _check_classification(part: dict[str, Any], y: np.ndarray, proba: np.ndarray) -> None:
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        classification_report,
        confusion_matrix,
        f1_score,
        roc_auc_score,
    )

    pred = proba.argmax(axis=1)
    labels = list(range(proba.shape[1]))
    assert part["task"] == "classification"
    m = part["metrics"]
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=TOL)
    assert m["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0), abs=TOL)
    assert m["f1_weighted"] == pytest.approx(f1_score(y, pred, average="weighted", zero_division=0), abs=TOL)
    assert m["auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", labels=labels), abs=1e-5)
    onehot = np.eye(len(labels))[y]
    assert m["average_precision"] == pytest.approx(average_precision_score(onehot, proba), abs=1e-5)
    assert part["confusion_matrix"]["counts"] == confusion_matrix(y, pred, labels=labels).tolist()
    want = classification_report(y, pred, labels=labels, output_dict=True, zero_division=0)
    for k, row in enumerate(part["per_class"]):
        assert row["precision"] == pytest.approx(want[str(k)]["precision"], abs=TOL)
        assert row["recall"] == pytest.approx(want[str(k)]["recall"], abs=TOL)
        assert row["support"] == want[str(k)]["support"]


def _check_regression(part: dict[str, Any], y: np.ndarray, out: np.ndarray) -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    assert part["task"] == "regression"
    m = part["metrics"]
    assert m["mae"] == pytest.approx(mean_absolute_error(y, out), abs=1e-5)
    assert m["mse"] == pytest.approx(mean_squared_error(y, out), abs=1e-5)
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, out)), abs=1e-5)
    assert m["r2"] == pytest.approx(r2_score(y, out), abs=1e-5)
    assert "confusion_matrix" not in part


@pytest.mark.parametrize("which", ["shipped", "logits"])
def test_report_covers_each_output_with_its_own_kind(cli: Cli, tmp_path: Path, which: str) -> None:
    cfg = CONFIGS / "wine_two_heads.yaml" if which == "shipped" else write(tmp_path, LOGITS_HEADS)
    run = Path(cli.train_json(cfg, "fit.epochs=3", "fit.callbacks=[]")["run_dir"])
    res = cli("evaluate", run, "--report", "--json", "--fail-under", "cultivar_f1_macro=0.1",
              "--fail-over", "alcohol_rmse=100")  # fmt: skip
    assert res.exit_code == 0, res.output + res.stderr
    out = json.loads(res.stdout)
    assert [g["passed"] for g in out["gates"]] == [True, True]

    data = np.load(CONFIGS / "data" / "wine_two_heads.npz")
    want = _predict(cli, run, {"chem": data["x_test"]}, tmp_path)
    proba = want["cultivar"] if which == "shipped" else _softmax(want["cultivar"].astype(np.float64))

    report = read_json(run / "eval" / "report.json")
    assert report["task"] == "outputs" and report["samples"] == len(data["x_test"])
    assert list(report["outputs"]) == ["cultivar", "alcohol"]  # model order, by output name
    assert report["loss"]["cultivar"] == "sparse_categorical_crossentropy"
    _check_classification(report["outputs"]["cultivar"], data["y_test_cultivar"], proba)
    _check_regression(report["outputs"]["alcohol"], data["y_test_alcohol"], want["alcohol"])

    # the flat numbers (gates, --json) are each output's, prefixed like Keras's keys
    flat = out["report"]["metrics"]
    for name in ("cultivar", "alcohol"):
        for key, value in report["outputs"][name]["metrics"].items():
            assert flat[f"{name}_{key}"] == pytest.approx(value, abs=1e-12)
    assert report["evaluation"] == pytest.approx(out["metrics"], abs=1e-12)  # Keras evaluate, unchanged

    # each output's plots are listed beside its numbers and written; the HTML has a section each
    for name, plots in (("cultivar", {"confusion_matrix", "roc_curves"}), ("alcohol", {"predicted_vs_true"})):
        listed = report["outputs"][name]["plots"]
        assert plots <= set(listed)
        assert all((run / "eval" / f).is_file() for f in listed.values())
    html = (run / "eval" / "report.html").read_text()
    assert 'id="output-cultivar"' in html and 'id="output-alcohol"' in html
    assert 'id="cultivar_confusion_matrix"' in html and 'id="alcohol_residuals"' in html


def test_two_inputs_one_output_gets_the_plain_report(cli: Cli, tmp_path: Path) -> None:
    """One output, even with two inputs: the same report as a single-output model, not keyed."""
    run = Path(cli.train_json(CONFIGS / "wine_wide_deep.yaml", "fit.epochs=3")["run_dir"])
    res = cli("evaluate", run, "--report")
    assert res.exit_code == 0, res.output + res.stderr
    data = np.load(CONFIGS / "data" / "wine_wide_deep.npz")
    want = _predict(cli, run, {"wide": data["x_test_wide"], "deep": data["x_test_deep"]}, tmp_path)
    report = read_json(run / "eval" / "report.json")
    assert "outputs" not in report
    _check_classification(report, data["y_test"], want["cultivar"])


def test_task_is_refused_for_several_outputs(cli: Cli) -> None:
    run = cli.train_json(CONFIGS / "wine_two_heads.yaml", "fit.epochs=1", "fit.callbacks=[]")["run_dir"]
    res = cli("evaluate", run, "--report", "--task", "classification")
    assert res.exit_code == 2
    assert "--task" in res.stderr and "Traceback" not in res.stderr + res.output
