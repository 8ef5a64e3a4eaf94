"""``evaluate --report``: the numbers behind a run, computed with scikit-learn on its predictions.

Keras's ``evaluate`` gives a loss and an accuracy; a person deciding whether a model is good needs
to see *where* it fails: which classes it confuses, how its scores rank, how far off a regression
is. Every number here is scikit-learn's own function (or, for segmentation, the usual formulas on
the pixel confusion matrix), so a report can be checked against a notebook. Never prints.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from trainctl.errors import ArtifactError, ConfigError, DataError

Task = Literal["classification", "regression", "segmentation"]
TASKS: tuple[Task, ...] = ("classification", "regression", "segmentation")
CLASSIFICATION_LOSSES = frozenset(
    {
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "kl_divergence",
    }
)
REGRESSION_LOSSES = frozenset(
    {
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "huber",
        "log_cosh",
        "poisson",
        "cosine_similarity",
    }
)
CLASSIFICATION_METRICS = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "auc",
    "average_precision",
)
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2")
SEGMENTATION_METRICS = ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou")
REPORT_METRICS = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS, *SEGMENTATION_METRICS)
SAMPLE_GRID = 15  # images in the sample grid (5 rows of 3, as in the Keras tutorial)
REPORT_DIR = "eval"
REPORT_JSON = "eval/report.json"
REPORT_HTML = "eval/report.html"


@dataclass
class Curve:
    """One ROC or precision-recall curve, ready to draw: ``x``/``y`` and the area it summarises."""

    label: str
    x: np.ndarray
    y: np.ndarray
    area: float


@dataclass
class Report:
    """``data`` is report.json; ``metrics`` the flat numbers gates can use; the rest feeds the plots.

    A model with several outputs gets one report per output in ``outputs`` (task ``"outputs"``),
    its metrics flat as ``<output>_<metric>`` (Keras's key style: ``cultivar_accuracy``).
    """

    task: Task | Literal["outputs"]
    data: dict[str, Any]
    metrics: dict[str, float]
    classes: list[str] = field(default_factory=list)
    confusion: np.ndarray | None = None
    roc: list[Curve] = field(default_factory=list)
    pr: list[Curve] = field(default_factory=list)
    y_true: np.ndarray | None = None  # regression: flattened targets and predictions, for the scatter
    y_pred: np.ndarray | None = None
    samples: dict[str, Any] | None = None  # image classification: images, scores, true and predicted labels
    outputs: dict[str, Report] = field(default_factory=dict)  # several outputs: one report each, by name


# ------------------------------------------------------------------------------------------ task


def infer_task(loss: str, y_shape: tuple[int, ...], out_shape: tuple[int, ...], y_dtype: Any = None) -> Task:
    """The loss says classification or regression; per-position outputs make classification
    segmentation (``(N, H, W, C)`` outputs scored against ``(N, H, W)`` labels)."""
    if loss in REGRESSION_LOSSES:
        return "regression"
    if loss in CLASSIFICATION_LOSSES:
        return "segmentation" if len(out_shape) >= 3 else "classification"
    integer = y_dtype is not None and (np.issubdtype(y_dtype, np.integer) or np.dtype(y_dtype) == np.bool_)
    if not integer:
        return "regression"
    return "segmentation" if len(y_shape) >= 3 else "classification"


# ---------------------------------------------------------------------------------- confusion math


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted (sklearn's layout), in one ``bincount``.

    True labels outside ``0..n_classes-1`` (an "ignore" label such as 255) are left out.
    """
    t = np.asarray(y_true).ravel().astype(np.int64, copy=False)
    p = np.asarray(y_pred).ravel().astype(np.int64, copy=False)
    keep = (t >= 0) & (t < n_classes) & (p >= 0) & (p < n_classes)
    if not keep.all():
        t, p = t[keep], p[keep]
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where the denominator is 0 (undefined, not zero)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def row_normalized(cm: np.ndarray) -> np.ndarray:
    """Each true class's row as fractions (sklearn's ``normalize="true"``); empty rows stay 0."""
    return np.nan_to_num(_ratio(cm, cm.sum(axis=1, keepdims=True)))


def sensitivity_specificity(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class, one-vs-rest: sensitivity TP/(TP+FN) and specificity TN/(TN+FP)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    tn = cm.sum() - tp - fn - fp
    return _ratio(tp, tp + fn), _ratio(tn, tn + fp)


def segmentation_metrics(cm: np.ndarray) -> dict[str, Any]:
    """Pixel accuracy, mean class accuracy, mean IoU and frequency-weighted IoU (Long et al., FCN).

    Classes absent from both the targets and the predictions have no IoU and are left out of
    the means; frequency weighting uses each class's share of the true pixels.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp, true, pred = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    total = cm.sum()
    acc = _ratio(tp, true)
    iou = _ratio(tp, true + pred - tp)
    freq = true / total if total else np.zeros_like(true)
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_accuracy": _nanmean(acc),
        "mean_iou": _nanmean(iou),
        "frequency_weighted_iou": float(np.sum(freq * np.nan_to_num(iou))) if total else float("nan"),
        "accuracy_per_class": acc.tolist(),
        "iou_per_class": iou.tolist(),
    }


def _nanmean(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.mean(a[~np.isnan(a)])) if np.any(~np.isnan(a)) else float("nan")


# -------------------------------------------------------------------------------- classification


def _names(names: list[str] | None, n: int) -> list[str]:
    if names is not None and len(names) == n and len(set(names)) == n:
        return [str(v) for v in names]
    return [str(i) for i in range(n)]


def class_targets(y: np.ndarray, width: int) -> np.ndarray:
    """Integer labels ``(N,)`` from sparse labels, ``(N, 1)`` columns, one-hot rows, or 0/1 (or -1/1) targets."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == width and width > 1:
        if not np.allclose(y.sum(axis=1), 1.0, atol=1e-3):
            raise DataError(
                "expected one class per sample (integer or one-hot labels), received multi-label targets",
                hint="the report covers single-label classification; try --task regression",
            )
        return y.argmax(axis=1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"expected one label per sample, received targets of shape {y.shape}")
    if width == 1:
        return (y > 0.5).astype(np.int64)
    labels = y.astype(np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= width):
        raise DataError(
            f"expected labels in 0..{width - 1} (the model has {width} outputs), "
            f"received labels from {labels.min()} to {labels.max()}"
        )
    return labels


def classification_metrics(
    y_true: np.ndarray, scores: np.ndarray, class_names: list[str] | None = None, *, threshold: float = 0.5
) -> Report:
    """Everything the classification report shows, from integer labels and scores.

    ``scores`` is ``(N, C)`` (probabilities for one-vs-rest ROC) or ``(N,)`` for a binary model
    with one unit: the positive class's probability (``threshold`` 0.5) or a raw score (e.g. 0.0
    for hinge).
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        classification_report,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    y_true = np.asarray(y_true).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    binary = scores.ndim == 1
    n = 2 if binary else scores.shape[1]
    if binary:
        y_pred = (scores > threshold).astype(np.int64)
        columns = {1: scores}
    else:
        y_pred = scores.argmax(axis=1)
        columns = {k: scores[:, k] for k in range(n)}
    names = _names(class_names, n)
    labels = list(range(n))
    cm = confusion_counts(y_true, y_pred, n)
    sens, spec = sensitivity_specificity(cm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cr = classification_report(y_true, y_pred, labels=labels, target_names=names, output_dict=True, zero_division=0)
        roc, pr, auc_k, ap_k = [], [], {}, {}
        for k, col in columns.items():
            pos = y_true == k
            if not pos.any() or pos.all():
                continue  # one-vs-rest is undefined without both positives and negatives
            fpr, tpr, _ = roc_curve(pos, col)
            prec, rec, _ = precision_recall_curve(pos, col)
            auc_k[k] = float(roc_auc_score(pos, col))
            ap_k[k] = float(average_precision_score(pos, col))
            roc.append(Curve(names[k], fpr, tpr, auc_k[k]))
            pr.append(Curve(names[k], rec, prec, ap_k[k]))
        auc, ap = _overall(y_true, scores, binary, labels, auc_k, ap_k)
    macro, weighted = cr.get("macro avg", {}), cr.get("weighted avg", {})
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else float("nan"),
        "precision_macro": macro.get("precision", float("nan")),
        "recall_macro": macro.get("recall", float("nan")),
        "f1_macro": macro.get("f1-score", float("nan")),
        "precision_weighted": weighted.get("precision", float("nan")),
        "recall_weighted": weighted.get("recall", float("nan")),
        "f1_weighted": weighted.get("f1-score", float("nan")),
        "auc": auc,
        "average_precision": ap,
    }
    per_class = [
        {
            "class": names[k],
            **{m: cr[names[k]][m] for m in ("precision", "recall", "f1-score")},
            "support": int(cr[names[k]]["support"]),
            "sensitivity": float(sens[k]),
            "specificity": float(spec[k]),
            "auc": auc_k.get(k),
            "average_precision": ap_k.get(k),
        }
        for k in labels
    ]
    data = {
        "metrics": metrics,
        "classes": names,
        "binary": binary,
        "per_class": per_class,
        "classification_report": cr,
        "confusion_matrix": {"labels": names, "counts": cm.tolist(), "normalized": row_normalized(cm).tolist()},
    }
    return Report("classification", data, metrics, names, cm, roc, pr)


def _overall(
    y: np.ndarray, scores: np.ndarray, binary: bool, labels: list[int], auc_k: dict[int, float], ap_k: dict[int, float]
) -> tuple[float, float]:
    """ROC AUC (one-vs-rest, macro) and average precision (macro) over all classes, as sklearn
    computes them; when some class has no positives sklearn refuses, so average the classes that have."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if binary:
        return auc_k.get(1, float("nan")), ap_k.get(1, float("nan"))
    if len(auc_k) == len(labels):
        try:
            return (
                float(roc_auc_score(y, scores, multi_class="ovr", labels=labels)),
                float(average_precision_score(y, scores)),
            )
        except ValueError:  # scores that are not probabilities: same macro mean, by hand
            pass
    mean = lambda d: float(np.mean(list(d.values()))) if d else float("nan")  # noqa: E731
    return mean(auc_k), mean(ap_k)


# ------------------------------------------------------------------------------ regression


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> Report:
    """MAE, MSE, RMSE and R² (scikit-learn, averaged uniformly over outputs)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    t = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    if t.shape != p.shape:
        raise DataError(
            f"expected targets shaped like the model's outputs {p.shape[1:]}, received {t.shape[1:]}",
            hint="a classifier's outputs need --task classification",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mse = float(mean_squared_error(t, p))
        metrics = {
            "mae": float(mean_absolute_error(t, p)),
            "mse": mse,
            "rmse": float(np.sqrt(mse)),
            "r2": float(r2_score(t, p)) if len(t) >= 2 else float("nan"),
        }
    return Report("regression", {"metrics": metrics}, metrics, y_true=t.ravel(), y_pred=p.ravel())


# ---------------------------------------------------------------------------- segmentation


def segmentation_labels(
    y: np.ndarray, outputs: np.ndarray, *, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-position true and predicted labels from ``(N, ..., C)`` outputs, and the class count.

    One output channel is a binary mask: foreground where the output exceeds ``threshold``.
    """
    out = np.asarray(outputs)
    width = out.shape[-1]
    pred = out.argmax(axis=-1) if width > 1 else (out[..., 0] > threshold).astype(np.int64)
    y = np.asarray(y)
    if y.shape == out.shape and width > 1:
        y = y.argmax(axis=-1)  # one-hot masks
    elif y.ndim == out.ndim and y.shape[-1] == 1:
        y = y[..., 0]
    if y.shape != pred.shape:
        raise DataError(f"expected per-position labels of shape {pred.shape[1:]}, received {y.shape[1:]}")
    y = (y > 0.5).astype(np.int64) if width == 1 else y.astype(np.int64)
    return y, pred, max(width, 2)


def segmentation_report(
    y: np.ndarray, outputs: np.ndarray, class_names: list[str] | None = None, *, threshold: float = 0.5
) -> Report:
    """Pixel confusion matrix and its metrics for per-position class outputs."""
    t, p, n = segmentation_labels(y, outputs, threshold=threshold)
    cm = confusion_counts(t, p, n)
    seg = segmentation_metrics(cm)
    names = _names(class_names, n)
    metrics = {k: seg[k] for k in SEGMENTATION_METRICS}
    per_class = [
        {"class": names[k], "accuracy": seg["accuracy_per_class"][k], "iou": seg["iou_per_class"][k]} for k in range(n)
    ]
    data = {
        "metrics": metrics,
        "classes": names,
        "per_class": per_class,
        "confusion_matrix": {"labels": names, "counts": cm.tolist(), "normalized": row_normalized(cm).tolist()},
    }
    return Report("segmentation", data, metrics, names, cm)


# ----------------------------------------------------------------------------- from a run


def _images(raw: np.ndarray | None, x: np.ndarray) -> np.ndarray | None:
    """Inputs that are pictures: (H, W), (H, W, 1) or (H, W, 3|4) per sample; raw ones first."""
    for cand in (raw, x):
        if cand is None or len(cand) == 0:
            continue
        img = np.asarray(cand)
        if img.ndim == 4 and img.shape[-1] == 1:
            img = img[..., 0]
        if img.ndim == 3 or (img.ndim == 4 and img.shape[-1] in (3, 4)):
            return img
    return None


def build_report(preds: Any, *, task: Task | None = None, evaluation: Any = None) -> Report:
    """The report for an :class:`~trainctl.evaluation.EvalPredictions`; ``task`` overrides the inferred one."""
    out = np.asarray(preds.outputs)
    y = np.asarray(preds.y)
    threshold = 0.5 if preds.proba is not None else 0.0  # probabilities, or raw scores (hinge)
    chosen = task or infer_task(preds.loss, tuple(y.shape), tuple(out.shape), y.dtype)
    if chosen == "classification" and out.ndim != 2:
        raise ConfigError(
            f"expected one output row per sample for classification, received outputs of shape {out.shape[1:]}",
            key="--task",
            hint="per-position outputs need --task segmentation",
        )
    if chosen == "regression":
        report = regression_metrics(y, out)
    elif chosen == "segmentation":
        if out.ndim < 3:
            raise ConfigError(
                f"expected per-position outputs (N, H, W, C) for segmentation, received {out.shape}",
                key="--task",
            )
        scores = preds.proba if preds.proba is not None else out
        report = segmentation_report(y, scores, preds.class_names, threshold=threshold)
    else:
        width = out.shape[1]
        scores = preds.proba if preds.proba is not None else out
        labels = class_targets(y, width)
        flat = scores[:, 0] if width == 1 else scores
        report = classification_metrics(labels, flat, preds.class_names, threshold=threshold)
        images = _images(preds.raw_x, preds.x)
        if images is not None:
            images = images[:SAMPLE_GRID]
            k = len(images)
            head = np.asarray(flat[:k], dtype=np.float64)
            report.samples = {
                "images": images,
                "scores": head,  # (k, C), or (k,) for one unit
                "true": labels[:k],
                "pred": (head > threshold).astype(np.int64) if width == 1 else head.argmax(axis=1),
                "proba": preds.proba is not None,
            }
    report.data = {
        "format_version": 1,
        "task": chosen,
        "data": preds.data,
        "samples": len(y),
        "loss": preds.loss,
        "evaluation": dict(evaluation.metrics) if evaluation is not None else {},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **report.data,
    }
    if evaluation is not None:
        report.data["run_dir"] = str(evaluation.run_dir)
    return report


SHARED_KEYS = ("format_version", "data", "evaluation", "created", "run_dir")  # said once, at the top


def build_outputs_report(preds: dict[str, Any], *, task: Task | None = None, evaluation: Any = None) -> Report:
    """One report per output of a model with several outputs, each of the kind its loss implies
    (classification, regression or segmentation), keyed by output name in model order."""
    if task is not None:
        raise ConfigError(
            f"expected no --task for a model with several outputs, received --task {task}",
            key="--task",
            hint="each output's report kind comes from its own loss (compile.loss by output name)",
        )
    parts = {name: build_report(p) for name, p in preds.items()}
    first = next(iter(preds.values()))
    metrics = {f"{name}_{key}": value for name, part in parts.items() for key, value in part.metrics.items()}
    data: dict[str, Any] = {
        "format_version": 1,
        "task": "outputs",
        "data": first.data,
        "samples": len(first.y),
        "loss": {name: p.loss for name, p in preds.items()},
        "evaluation": dict(evaluation.metrics) if evaluation is not None else {},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": metrics,
        "outputs": {name: {k: v for k, v in part.data.items() if k not in SHARED_KEYS} for name, part in parts.items()},
    }
    if evaluation is not None:
        data["run_dir"] = str(evaluation.run_dir)
    return Report("outputs", data, metrics, outputs=parts)


def write_report(run: Any, report: Report, *, title: str | None = None) -> dict[str, Path]:
    """report.json, one PNG per plot and a self-contained report.html under ``<run>/eval/``.

    Each file is written atomically; the PNG bytes are rendered once and embedded in the HTML.
    """
    from trainctl.atomic import atomic_write_bytes
    from trainctl.reporting.report_html import render_html
    from trainctl.reporting.report_plots import plot_names, render_plots

    folder = Path(run.path) / REPORT_DIR
    pngs = render_plots(report)
    try:
        folder.mkdir(exist_ok=True)
        written = {}
        for name, png in pngs.items():
            target = folder / f"{name}.png"
            atomic_write_bytes(target, png)
            written[name] = target
        report.data["plots"] = {name: f"{name}.png" for name in pngs}
        for output, part in report.outputs.items():  # each output's plots beside its numbers
            plots = {plot: f"{output}_{plot}.png" for plot in plot_names(part)}
            report.data["outputs"][output]["plots"] = plots
            part.data["plots"] = plots
        written["json"] = run.write_json(REPORT_JSON, report.data)
        html = render_html(report, pngs, title=title or Path(run.path).name)
        written["html"] = run.write_text(REPORT_HTML, html)
    except OSError as exc:
        raise ArtifactError(f"expected a writable run folder for the report, received {folder} ({exc})") from None
    return written


__all__ = [
    "REPORT_METRICS",
    "TASKS",
    "Curve",
    "Report",
    "Task",
    "build_outputs_report",
    "build_report",
    "class_targets",
    "classification_metrics",
    "confusion_counts",
    "infer_task",
    "regression_metrics",
    "row_normalized",
    "segmentation_labels",
    "segmentation_metrics",
    "segmentation_report",
    "sensitivity_specificity",
    "write_report",
]
