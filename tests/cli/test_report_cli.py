"""``trainctl evaluate --report`` and quality gates, end to end on the digits quickstart.

The report's numbers are checked against scikit-learn run in the test on predictions obtained
independently (``trainctl predict --proba`` on the same held-out rows), not against the report's
own code path.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.clihelp import CONFIGS, Cli, read_json

IMAGE_CONFIG = """
name: digit_images
seed: 3
data: {source: npz, path: digits8x8.npz, x: [{scale: 16}]}
model:
  layers:
    - {type: Flatten, input_shape: [8, 8]}
    - {type: Dense, units: 10, activation: softmax}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit: {epochs: 2, batch_size: 64, verbose: 0}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from sklearn.datasets import load_digits

    tmp = tmp_path_factory.mktemp("report")
    cli = Cli(tmp / "runs")
    digits = load_digits()
    images, target = digits.images.astype(np.uint8), digits.target
    np.savez(tmp / "digits8x8.npz", x_train=images[:800], y_train=target[:800], x_test=images[800:900],
             y_test=target[800:900])  # fmt: skip
    (tmp / "images.yaml").write_text(IMAGE_CONFIG)
    digits_run = Path(cli.train_json(CONFIGS / "digits_quickstart.yaml", "fit.epochs=3")["run_dir"])
    image_run = Path(cli.train_json(tmp / "images.yaml")["run_dir"])
    res = cli(
        "evaluate", digits_run, "--report", "--json",
        "--fail-under", "accuracy=0.1", "--fail-under", "auc=0.5", "--fail-over", "loss=100",
    )  # fmt: skip
    assert res.exit_code == 0, res.output + res.stderr
    return {"cli": cli, "tmp": tmp, "digits": digits_run, "images": image_run, "out": json.loads(res.stdout)}


def _test_split() -> tuple[np.ndarray, np.ndarray]:
    """The quickstart's held-out rows, carved as its config says: 20 %, stratified, seed 7."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    _, x_te, _, y_te = train_test_split(d.data, d.target, test_size=0.2, random_state=7, stratify=d.target)
    return x_te, y_te


def test_report_numbers_equal_sklearn_on_independent_predictions(env: dict[str, Any], tmp_path: Path) -> None:
    from sklearn.metrics import (
        average_precision_score,
        classification_report,
        confusion_matrix,
        multilabel_confusion_matrix,
        roc_auc_score,
    )

    cli, run = env["cli"], env["digits"]
    x_te, y_te = _test_split()
    np.save(tmp_path / "x.npy", x_te)
    res = cli("predict", run, tmp_path / "x.npy", "--proba", "--output", tmp_path / "p.npy")
    assert res.exit_code == 0, res.output
    proba = np.load(tmp_path / "p.npy").astype(np.float64)
    rep = read_json(run / "eval" / "report.json")
    assert rep["task"] == "classification" and rep["samples"] == len(y_te) == 360
    names = [str(i) for i in range(10)]
    expected = classification_report(
        y_te, proba.argmax(1), labels=range(10), target_names=names, output_dict=True, zero_division=0
    )
    assert rep["classification_report"].keys() == expected.keys()
    for key, value in expected.items():
        assert rep["classification_report"][key] == pytest.approx(value), key
    m = rep["metrics"]
    assert m["auc"] == pytest.approx(roc_auc_score(y_te, proba, multi_class="ovr"), rel=1e-6)
    assert m["average_precision"] == pytest.approx(average_precision_score(y_te, proba), rel=1e-6)
    assert m["accuracy"] == pytest.approx(rep["evaluation"]["accuracy"], abs=1e-7)  # sklearn == Keras
    assert rep["confusion_matrix"]["counts"] == confusion_matrix(y_te, proba.argmax(1)).tolist()
    mcm = multilabel_confusion_matrix(y_te, proba.argmax(1))  # per class [[tn, fp], [fn, tp]]
    for k, row in enumerate(rep["per_class"]):
        (tn, fp), (fn, tp) = mcm[k]
        assert row["sensitivity"] == pytest.approx(tp / (tp + fn))
        assert row["specificity"] == pytest.approx(tn / (tn + fp))
        assert row["auc"] == pytest.approx(roc_auc_score(y_te == k, proba[:, k]), rel=1e-6)
    out = env["out"]
    assert out["metrics"] == rep["evaluation"] and out["report"]["metrics"] == pytest.approx(m)
    assert [g["passed"] for g in out["gates"]] == [True, True, True]
    assert out["gates"][1]["value"] == pytest.approx(m["auc"])


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.img: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster") and value is not None:
                self.urls.append(value)
                if tag == "img":
                    self.img.append(value)


def test_pngs_are_valid_and_html_embeds_exactly_them(env: dict[str, Any]) -> None:
    from PIL import Image

    folder = env["digits"] / "eval"
    plots = read_json(folder / "report.json")["plots"]
    assert set(plots) == {"confusion_matrix", "confusion_matrix_normalized", "roc_curves", "precision_recall_curves"}
    assert env["out"]["report"]["plots"] == {name: str(folder / f) for name, f in plots.items()}
    for file in plots.values():
        with Image.open(folder / file) as im:
            im.verify()
        with Image.open(folder / file) as im:
            assert im.format == "PNG" and min(im.size) >= 300
    refs = _Refs()
    refs.feed((folder / "report.html").read_text(encoding="utf-8"))
    assert refs.urls == refs.img and all(u.startswith("data:image/png;base64,") for u in refs.urls)
    embedded = [base64.b64decode(u.split(",", 1)[1]) for u in refs.img]
    assert embedded == [(folder / f).read_bytes() for f in plots.values()]
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_gates_pass_fail_and_say_by_how_much(env: dict[str, Any]) -> None:
    cli, run = env["cli"], env["digits"]
    acc = read_json(run / "eval" / "report.json")["evaluation"]["accuracy"]
    loss = read_json(run / "eval" / "report.json")["evaluation"]["loss"]
    low, high = round(acc - 0.05, 2), round(acc + 0.05, 2)
    res = cli("evaluate", run, "--fail-under", f"accuracy={low}")
    assert res.exit_code == 0, res.output
    assert f"gate passed: accuracy {acc:.4f} is at least {low:g}" in res.stderr
    res = cli("evaluate", run, "--fail-under", f"accuracy={high}", "--fail-over", f"loss={loss / 2:.3f}")
    assert res.exit_code == 6
    assert re.fullmatch(r"loss: \d+\.\d{4} - accuracy: \d\.\d{4}\n", res.stdout)  # output first, as usual
    assert f"accuracy {acc:.4f} is below {high:g} by {high - acc:.4f}" in res.stderr
    assert f"loss {loss:.4f} is above {float(f'{loss / 2:.3f}'):g} by {loss - float(f'{loss / 2:.3f}'):.4f}" in (
        res.stderr
    )
    res = cli("evaluate", run, "--json", "--fail-under", f"accuracy={high}")
    assert res.exit_code == 6
    out = json.loads(res.stdout)  # one JSON object: the evaluation, with the failed gate in it
    assert out["gates"] == [
        {
            "metric": "accuracy",
            "option": "--fail-under",
            "threshold": high,
            "value": pytest.approx(acc),
            "passed": False,
            "message": f"accuracy {acc:.4f} is below {high:g} by {high - acc:.4f}",
        }
    ]


def test_gate_and_option_errors_exit_2(env: dict[str, Any]) -> None:
    cli, run = env["cli"], env["digits"]
    res = cli("evaluate", run, "--fail-under", "acuracy=0.5")
    assert res.exit_code == 2 and "did you mean 'accuracy'?" in res.stderr
    res = cli("evaluate", run, "--fail-under", "auc=0.5")  # a report metric, without --report
    assert res.exit_code == 2 and "computed by --report" in res.stderr
    res = cli("evaluate", run, "--fail-under", "accuracy")
    assert res.exit_code == 2 and "METRIC=THRESHOLD" in res.stderr
    res = cli("evaluate", run, "--report", "--task", "clasification")
    assert res.exit_code == 2 and "did you mean 'classification'?" in res.stderr
    res = cli("evaluate", run, "--task", "regression")
    assert res.exit_code == 2 and "--report" in res.stderr
    res = cli("evaluate", run, "--report", "--task", "regression")  # 10 outputs against one label
    assert res.exit_code == 3 and "shaped like the model's outputs" in res.stderr


def test_image_classifier_gets_a_sample_grid_of_raw_images(env: dict[str, Any]) -> None:
    from PIL import Image

    from trainctl.evaluation import evaluate_with_predictions

    cli, run = env["cli"], env["images"]
    res = cli("evaluate", run, "--report")
    assert res.exit_code == 0, res.output
    assert f"report: {run / 'eval' / 'report.html'}" in res.stderr
    plots = read_json(run / "eval" / "report.json")["plots"]
    assert plots["samples"] == "samples.png"
    with Image.open(run / "eval" / "samples.png") as im:
        assert im.format == "PNG" and im.size[0] > im.size[1] > 500
    _, preds = evaluate_with_predictions(run, save=False)
    with np.load(env["tmp"] / "digits8x8.npz") as npz:
        raw = npz["x_test"][:15]
    assert preds.raw_x is not None and np.array_equal(preds.raw_x, raw)  # the images as stored, before {scale: 16}
    assert np.allclose(preds.x, raw / 16)
