"""PNG plots for ``evaluate --report``, drawn with matplotlib's object API on the Agg canvas.

No ``pyplot``: it keeps global figure state and may pick an interactive backend; a ``Figure``
drawn straight to PNG bytes needs no display and leaks nothing between calls. Each plot is
rendered once; the bytes go both into a file and, base64-encoded, into report.html.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from trainctl.reporting.report import Curve, Report, row_normalized

MAX_ANNOTATED = 20  # classes up to which heatmap cells carry their numbers and curves get a legend
MAX_POINTS = 20_000  # scatter points drawn for regression (a random subset beyond this)
RIGHT, WRONG, OTHER = "#2ca02c", "#d62728", "#999999"


CHAR_IN = 0.07  # width of one tick-label character at 8 pt, in inches


def _figure(width: float, height: float, *, left: float = 0.8, bottom: float = 0.6, top: float = 0.45) -> Any:
    """A figure with fixed margins in inches: a layout solver (constrained, tight) measures every
    text two or three times over and would double the drawing time of a text-heavy heatmap."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(left=left / width, right=1 - 0.25 / width, bottom=bottom / height, top=1 - top / height)
    return fig


def _label_room(names: list[str]) -> float:
    return CHAR_IN * max((len(n) for n in names), default=1)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def confusion_png(cm: np.ndarray, names: list[str], *, normalized: bool) -> bytes:
    """A heatmap, rows = true class, columns = predicted; numbers in the cells for few classes."""
    n = len(names)
    side = min(4 + 0.45 * n, 16)
    room = _label_room(names) if n <= 60 else 0.0
    fig = _figure(side + 1.2 + room, side + 0.72 * room, left=0.55 + room, bottom=0.65 + 0.72 * room)
    ax = fig.subplots()
    values = cm.astype(np.float64)
    vmax = 1.0 if normalized else max(float(values.max(initial=0)), 1.0)
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ticks = np.arange(n)
    ax.set_xticks(ticks, names if n <= 60 else [""] * n, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, names if n <= 60 else [""] * n, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix" + (" (each row sums to 1)" if normalized else " (counts)"))
    if n <= MAX_ANNOTATED:
        for (i, j), v in np.ndenumerate(values):
            text = f"{v:.2f}" if normalized else f"{int(v)}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if v > vmax / 2 else "black")
    return _png(fig)


def curves_png(curves: list[Curve], *, kind: str, overall: float) -> bytes:
    """All classes' ROC (or precision-recall) curves on one axes, the area of each in the legend."""
    fig = _figure(7, 6)
    ax = fig.subplots()
    roc = kind == "roc"
    for c in curves:
        ax.plot(c.x, c.y, linewidth=1.2, label=f"{c.label} ({'AUC' if roc else 'AP'} {c.area:.3f})")
    if roc:
        ax.plot([0, 1], [0, 1], linestyle="--", color=OTHER, linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positive rate" if roc else "recall")
    ax.set_ylabel("true positive rate" if roc else "precision")
    label = "ROC, one-vs-rest; macro AUC" if roc else "Precision-recall; macro average precision"
    ax.set_title(f"{label} {overall:.4f}")
    if 0 < len(curves) <= MAX_ANNOTATED:
        ax.legend(fontsize=7, loc="lower right" if roc else "lower left")
    return _png(fig)


def _subset(n: int) -> np.ndarray:
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_POINTS, replace=False))


def scatter_png(y_true: np.ndarray, y_pred: np.ndarray) -> bytes:
    """Predicted against true values, with the y = x line a perfect model would sit on."""
    idx = _subset(len(y_true))
    t, p = y_true[idx], y_pred[idx]
    fig = _figure(6, 6)
    ax = fig.subplots()
    ax.scatter(t, p, s=8, alpha=0.5)
    both = np.concatenate([t, p]) if len(t) else np.array([0.0, 1.0])
    lo, hi = float(both.min()), float(both.max())
    ax.plot([lo, hi], [lo, hi], linestyle="--", color=WRONG, linewidth=1)
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title("Predicted vs true")
    return _png(fig)


def residuals_png(y_true: np.ndarray, y_pred: np.ndarray) -> bytes:
    """Residuals (true - predicted) against the prediction, and their histogram."""
    idx = _subset(len(y_true))
    t, p = y_true[idx], y_pred[idx]
    res = t - p
    fig = _figure(11, 4.5)
    left, right = fig.subplots(1, 2)
    fig.subplots_adjust(wspace=0.25)
    left.scatter(p, res, s=8, alpha=0.5)
    left.axhline(0, linestyle="--", color=WRONG, linewidth=1)
    left.set_xlabel("predicted value")
    left.set_ylabel("residual (true - predicted)")
    left.set_title("Residuals")
    right.hist(res, bins=40, color="#1f77b4")
    right.set_xlabel("residual")
    right.set_ylabel("count")
    right.set_title("Residual distribution")
    return _png(fig)


def iou_png(names: list[str], iou: list[float | None]) -> bytes:
    """Intersection over union per class, as bars (missing classes show no bar)."""
    vals = np.array([np.nan if v is None else v for v in iou], dtype=np.float64)
    room = _label_room(names)
    fig = _figure(min(4 + 0.4 * len(names), 16), 4.5 + 0.72 * room, bottom=0.4 + 0.72 * room)
    ax = fig.subplots()
    ax.bar(np.arange(len(names)), np.nan_to_num(vals), color="#1f77b4")
    ax.set_xticks(np.arange(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.set_title("Intersection over union per class")
    return _png(fig)


def samples_png(samples: dict[str, Any], names: list[str]) -> bytes:
    """Test images with their predicted and true class (green title when right, red when wrong)
    and the class probabilities beside each: the Keras Fashion-MNIST tutorial's grid."""
    images, scores = samples["images"], samples["scores"]
    true, pred = samples["true"], samples["pred"]
    if scores.ndim == 1:  # one unit: show both classes
        scores = np.stack([1 - scores, scores], axis=1) if samples["proba"] else np.stack([-scores, scores], axis=1)
    k, n = len(images), scores.shape[1]
    cols = 3
    rows = -(-k // cols)
    fig = _figure(4 * cols, 2.2 * rows, left=0.1, bottom=0.1, top=0.45)
    axes = fig.subplots(rows, 2 * cols, squeeze=False)
    fig.subplots_adjust(wspace=0.15, hspace=0.5)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i in range(k):
        img_ax, bar_ax = axes[i // cols, 2 * (i % cols)], axes[i // cols, 2 * (i % cols) + 1]
        _image(img_ax, images[i])
        ok = pred[i] == true[i]
        share = f" {100 * scores[i, pred[i]]:.0f}%" if samples["proba"] else ""
        img_ax.set_title(f"{names[pred[i]]}{share}\n(true: {names[true[i]]})", color=RIGHT if ok else WRONG, fontsize=8)
        bar_ax.set_axis_on()
        bars = bar_ax.bar(np.arange(n), scores[i], color=OTHER)
        bars[pred[i]].set_color(WRONG)
        bars[true[i]].set_color(RIGHT)
        bar_ax.set_xticks([])
        bar_ax.set_yticks([])
        if samples["proba"]:
            bar_ax.set_ylim(0, 1)
    return _png(fig)


def _image(ax: Any, img: np.ndarray) -> None:
    """Grayscale as stored (imshow stretches the range); colour scaled into [0, 1] for display."""
    if img.ndim == 3:
        lo, hi = float(img.min()), float(img.max())
        ax.imshow((img.astype(np.float64) - lo) / ((hi - lo) or 1.0), interpolation="nearest")
    else:
        ax.imshow(img, cmap="binary", interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def render_plots(report: Report) -> dict[str, bytes]:
    """Every plot the report's task has, as ``name -> PNG bytes`` (names become file names).

    With several outputs, each output's plots are named ``<output>_<plot>``."""
    if report.outputs:
        return {
            f"{name}_{plot}": png for name, part in report.outputs.items() for plot, png in render_plots(part).items()
        }
    return {name: job() for name, job in _jobs(report).items()}


def plot_names(report: Report) -> list[str]:
    """The names :func:`render_plots` gives the report's plots, without drawing them."""
    return list(_jobs(report))


def _jobs(report: Report) -> dict[str, Callable[[], bytes]]:
    jobs: dict[str, Callable[[], bytes]] = {}
    if report.confusion is not None:
        cm = report.confusion
        jobs["confusion_matrix"] = lambda: confusion_png(cm, report.classes, normalized=False)
        jobs["confusion_matrix_normalized"] = lambda: confusion_png(row_normalized(cm), report.classes, normalized=True)
    if report.roc:
        jobs["roc_curves"] = lambda: curves_png(report.roc, kind="roc", overall=report.metrics["auc"])
    if report.pr:
        jobs["precision_recall_curves"] = lambda: curves_png(
            report.pr, kind="pr", overall=report.metrics["average_precision"]
        )
    if report.task == "segmentation":
        jobs["iou_per_class"] = lambda: iou_png(report.classes, [c["iou"] for c in report.data["per_class"]])
    if report.y_true is not None and report.y_pred is not None:
        t, p = report.y_true, report.y_pred
        jobs["predicted_vs_true"] = lambda: scatter_png(t, p)
        jobs["residuals"] = lambda: residuals_png(t, p)
    if report.samples is not None:
        samples = report.samples
        jobs["samples"] = lambda: samples_png(samples, report.classes)
    return jobs


__all__ = [
    "confusion_png",
    "curves_png",
    "iou_png",
    "plot_names",
    "render_plots",
    "residuals_png",
    "samples_png",
    "scatter_png",
]
