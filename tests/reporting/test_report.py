"""Report metrics: hand-computed examples and scikit-learn's own functions on the same arrays."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest

from trainctl.errors import ConfigError, DataError
from trainctl.reporting.report import (
    build_report,
    class_targets,
    classification_metrics,
    confusion_counts,
    infer_task,
    regression_metrics,
    row_normalized,
    segmentation_metrics,
    segmentation_report,
    sensitivity_specificity,
)

# y = [[0,0,0],[1,2,2]], predicted [[0,1,1],[1,2,0]]: the confusion matrix below, counted by hand
SEG_Y = np.array([[[0, 0, 0], [1, 2, 2]]])
SEG_PRED = np.array([[[0, 1, 1], [1, 2, 0]]])
SEG_CM = np.array([[1, 2, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])


def test_confusion_counts_equal_sklearn_and_skip_ignore_labels() -> None:
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 5, 500), rng.integers(0, 5, 500)
    assert np.array_equal(confusion_counts(t, p, 5), confusion_matrix(t, p, labels=range(5)))
    assert np.array_equal(confusion_counts(SEG_Y, SEG_PRED, 4), SEG_CM)
    ignored = np.array([[[0, 0, 0, 255], [1, 2, 2, 255]]])  # 255: "ignore" pixels, as in VOC masks
    assert np.array_equal(confusion_counts(ignored, np.pad(SEG_PRED, ((0, 0), (0, 0), (0, 1))), 4), SEG_CM)


def test_sensitivity_specificity_by_hand() -> None:
    sens, spec = sensitivity_specificity(SEG_CM[:3, :3])
    # class 0: TP 1, FN 2, FP 1, TN 2; class 1: TP 1, FN 0, FP 2, TN 3; class 2: TP 1, FN 1, FP 0, TN 4
    assert sens == pytest.approx([1 / 3, 1, 1 / 2])
    assert spec == pytest.approx([2 / 3, 3 / 5, 1])
    sens, spec = sensitivity_specificity(SEG_CM)  # class 3 never occurs: sensitivity undefined
    assert np.isnan(sens[3]) and spec[3] == 1.0


def test_row_normalized_equals_sklearn_normalize_true() -> None:
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    assert row_normalized(confusion_counts(t, p, 4)) == pytest.approx(
        confusion_matrix(t, p, labels=range(4), normalize="true")
    )


def test_segmentation_metrics_by_hand() -> None:
    m = segmentation_metrics(SEG_CM)
    assert m["pixel_accuracy"] == pytest.approx(3 / 6)
    assert m["mean_accuracy"] == pytest.approx((1 / 3 + 1 + 1 / 2) / 3)  # class 3 has no pixels: left out
    assert m["iou_per_class"][:3] == pytest.approx([1 / 4, 1 / 3, 1 / 2]) and np.isnan(m["iou_per_class"][3])
    assert m["mean_iou"] == pytest.approx((1 / 4 + 1 / 3 + 1 / 2) / 3)
    assert m["frequency_weighted_iou"] == pytest.approx(3 / 6 * 1 / 4 + 1 / 6 * 1 / 3 + 2 / 6 * 1 / 2)


def test_segmentation_report_from_model_outputs() -> None:
    outputs = np.eye(4, dtype=np.float32)[SEG_PRED] * 0.7 + 0.075  # (1, 2, 3, 4) probabilities
    for y in (SEG_Y, SEG_Y[..., None], np.eye(4)[SEG_Y]):  # sparse, (..., 1) and one-hot masks
        rep = segmentation_report(y, outputs, ["bg", "a", "b", "c"])
        assert rep.confusion is not None and np.array_equal(rep.confusion, SEG_CM)
        assert rep.metrics["mean_iou"] == pytest.approx(13 / 36)
        assert rep.data["per_class"][0] == {"class": "bg", "accuracy": pytest.approx(1 / 3), "iou": 0.25}
    binary = segmentation_report(SEG_Y > 0, (SEG_PRED > 0)[..., None].astype(np.float32) * 0.8)
    assert binary.confusion is not None and np.array_equal(binary.confusion, [[1, 2], [1, 2]])


def test_classification_metrics_equal_sklearn() -> None:
    from sklearn.metrics import average_precision_score, classification_report, roc_auc_score

    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    names = ["cat", "dog", "fox", "owl"]
    rep = classification_metrics(y, proba, names)
    expected = classification_report(
        y, proba.argmax(1), labels=range(4), target_names=names, output_dict=True, zero_division=0
    )
    got = rep.data["classification_report"]
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert rep.metrics["auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"), rel=1e-12)
    assert rep.metrics["average_precision"] == pytest.approx(average_precision_score(y, proba), rel=1e-12)
    assert rep.metrics["f1_macro"] == pytest.approx(expected["macro avg"]["f1-score"])
    for k, row in enumerate(rep.data["per_class"]):
        assert row["auc"] == pytest.approx(roc_auc_score(y == k, proba[:, k]))
        assert row["average_precision"] == pytest.approx(average_precision_score(y == k, proba[:, k]))
        assert row["sensitivity"] == pytest.approx(expected[names[k]]["recall"])
    assert [c.label for c in rep.roc] == names and len(rep.pr) == 4


def test_binary_one_unit_and_absent_class() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    rep = classification_metrics(y, p)
    assert rep.data["binary"] and rep.confusion is not None and rep.confusion.shape == (2, 2)
    assert rep.metrics["auc"] == pytest.approx(roc_auc_score(y, p))
    assert rep.metrics["average_precision"] == pytest.approx(average_precision_score(y, p))
    assert rep.metrics["accuracy"] == pytest.approx(np.mean((p > 0.5) == y))
    hinge = classification_metrics(y, p - 0.5, threshold=0.0)  # raw scores: the threshold moves, AUC does not
    assert hinge.metrics["accuracy"] == rep.metrics["accuracy"] and hinge.metrics["auc"] == rep.metrics["auc"]
    # class 2 never occurs: its AUC is undefined, the macro AUC averages the classes that do
    y3 = rng.integers(0, 2, 100)
    s = rng.dirichlet(np.ones(3), 100)
    rep3 = classification_metrics(y3, s)
    assert rep3.data["per_class"][2]["auc"] is None
    assert rep3.metrics["auc"] == pytest.approx(np.mean([roc_auc_score(y3 == k, s[:, k]) for k in (0, 1)]))


def test_class_targets_forms() -> None:
    assert class_targets(np.array([2, 0, 1]), 3).tolist() == [2, 0, 1]
    assert class_targets(np.eye(3)[[2, 0, 1]], 3).tolist() == [2, 0, 1]
    assert class_targets(np.array([[1.0], [0.0]]), 1).tolist() == [1, 0]
    assert class_targets(np.array([-1.0, 1.0, 1.0]), 1).tolist() == [0, 1, 1]  # hinge's -1/1
    with pytest.raises(DataError, match=r"labels in 0\.\.2"):
        class_targets(np.array([0, 3]), 3)
    with pytest.raises(DataError, match="multi-label"):
        class_targets(np.array([[1, 1, 0], [0, 1, 1]]), 3)


def test_regression_metrics_equal_sklearn_and_formulas() -> None:
    from sklearn.metrics import r2_score

    t = np.array([[3.0], [-0.5], [2.0], [7.0]])
    p = np.array([[2.5], [0.0], [2.0], [8.0]])
    rep = regression_metrics(t, p)
    assert rep.metrics["mae"] == pytest.approx(np.mean(np.abs(t - p)))  # 0.5
    assert rep.metrics["mse"] == pytest.approx(0.375)
    assert rep.metrics["rmse"] == pytest.approx(np.sqrt(0.375))
    assert rep.metrics["r2"] == pytest.approx(1 - 1.5 / np.sum((t - t.mean()) ** 2))
    assert rep.metrics["r2"] == pytest.approx(r2_score(t, p))
    with pytest.raises(DataError, match="shaped like the model's outputs"):
        regression_metrics(np.zeros(4), np.zeros((4, 10)))


@pytest.mark.parametrize(
    ("loss", "y_shape", "out_shape", "dtype", "task"),
    [
        ("sparse_categorical_crossentropy", (10,), (10, 3), np.int64, "classification"),
        ("binary_crossentropy", (10, 1), (10, 1), np.float32, "classification"),
        ("hinge", (10, 1), (10, 1), np.float32, "classification"),
        ("mean_squared_error", (10, 1), (10, 1), np.float32, "regression"),
        ("huber", (10, 2), (10, 2), np.float32, "regression"),
        ("sparse_categorical_crossentropy", (4, 8, 8), (4, 8, 8, 5), np.int64, "segmentation"),
        ("categorical_crossentropy", (4, 8, 8, 5), (4, 8, 8, 5), np.float32, "segmentation"),
        ("custom", (10,), (10, 3), np.int64, "classification"),
        ("custom", (10, 1), (10, 1), np.float32, "regression"),
    ],
)
def test_infer_task(loss: str, y_shape: tuple, out_shape: tuple, dtype: type, task: str) -> None:
    assert infer_task(loss, y_shape, out_shape, np.dtype(dtype)) == task


def _preds(y: np.ndarray, outputs: np.ndarray, loss: str, x: np.ndarray, proba: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        data="arrays",
        y=y,
        outputs=outputs,
        proba=outputs if proba else None,
        raw_x=None,
        x=x,
        loss=loss,
        class_names=None,
    )


def test_build_report_picks_the_task_and_honours_override() -> None:
    out = np.eye(4, dtype=np.float32)[SEG_PRED]
    seg = build_report(_preds(SEG_Y, out, "sparse_categorical_crossentropy", np.zeros((1, 2, 3, 1))))
    assert seg.task == "segmentation" and seg.data["task"] == "segmentation"
    assert seg.metrics["pixel_accuracy"] == pytest.approx(0.5)
    with pytest.raises(ConfigError) as info:
        build_report(_preds(SEG_Y, out, "sparse_categorical_crossentropy", SEG_Y), task="classification")
    assert info.value.exit_code == 2 and "need --task segmentation" in info.value.render()
    y = np.array([0, 1, 2, 1])
    proba = np.eye(3, dtype=np.float32)[[0, 1, 1, 1]]
    images = np.arange(4 * 5 * 5, dtype=np.float32).reshape(4, 5, 5, 1)  # (H, W, 1) inputs: a sample grid
    rep = build_report(_preds(y, proba, "sparse_categorical_crossentropy", images))
    assert rep.task == "classification" and rep.metrics["accuracy"] == 0.75
    assert rep.samples is not None and rep.samples["images"].shape == (4, 5, 5)
    assert rep.samples["pred"].tolist() == [0, 1, 1, 1] and rep.samples["true"].tolist() == [0, 1, 2, 1]
    flat = build_report(_preds(y, proba, "sparse_categorical_crossentropy", images.reshape(4, 25)))
    assert flat.samples is None  # one feature vector per sample: nothing to draw
    reg = build_report(_preds(np.array([[1.0], [2.0]]), np.array([[1.5], [2.0]]), "mse", images[:2]), task="regression")
    assert reg.task == "regression" and reg.metrics["mae"] == pytest.approx(0.25)


def test_plots_are_valid_pngs() -> None:
    from PIL import Image

    from trainctl.reporting.report_plots import render_plots

    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 60)
    proba = rng.dirichlet(np.ones(3), 60)
    images = rng.uniform(size=(60, 6, 6))
    rep = build_report(_preds(y, proba, "sparse_categorical_crossentropy", images))
    pngs = render_plots(rep)
    assert set(pngs) == {
        "confusion_matrix",
        "confusion_matrix_normalized",
        "roc_curves",
        "precision_recall_curves",
        "samples",
    }
    reg = render_plots(regression_metrics(rng.normal(size=(50, 1)), rng.normal(size=(50, 1))))
    assert set(reg) == {"predicted_vs_true", "residuals"}
    for png in [*pngs.values(), *reg.values()]:
        with Image.open(io.BytesIO(png)) as im:
            im.verify()
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and im.width > 200 and im.height > 200
