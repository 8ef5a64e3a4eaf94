"""``plots/history.png``: the learning curves of a run, drawn from its ``history.json``.

matplotlib is imported only when a plot is drawn, and always through its Agg canvas on a bare
``Figure`` (never pyplot), so drawing needs no display, and it does not touch the global
backend of a program that imports trainctl.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# history keys that are not learning curves
NOT_CURVES = ("lr", "learning_rate", "epoch_time")
PLOT_FILE = "history.png"
FORMATS = ("png", "svg", "pdf")
# fixed, so a matplotlibrc cannot make train and validation look alike
COLOURS = {"train": "tab:blue", "validation": "tab:orange"}


def panels(history: Mapping[str, Sequence[Any]]) -> list[tuple[str, list[str]]]:
    """One panel per quantity: loss first, then each metric, with its train and ``val_`` keys.

    ``[("loss", ["loss", "val_loss"]), ("accuracy", ["accuracy", "val_accuracy"])]``; a quantity
    seen only as ``val_x`` gets a panel of its own.
    """
    names: list[str] = []
    for key in history:
        base = key[4:] if key.startswith("val_") else key
        if base not in NOT_CURVES and base not in names:
            names.append(base)
    if "loss" in names:
        names.remove("loss")
        names.insert(0, "loss")
    return [(name, [k for k in (name, f"val_{name}") if k in history]) for name in names]


def as_floats(values: Sequence[Any]) -> list[float]:
    """history.json values back to floats: ``null`` is NaN (a gap), ``"inf"`` is infinite."""
    out = []
    for v in values:
        try:
            out.append(math.nan if v is None else float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def history_figure(history: Mapping[str, Sequence[Any]], title: str | None = None) -> Any:
    """A matplotlib ``Figure`` with one subplot per :func:`panels` entry, epochs numbered from 1."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    layout = panels(history)
    if not layout:
        raise ValueError("the history has no loss or metric values to plot")
    cols = min(len(layout), 3)
    rows = math.ceil(len(layout) / cols)
    top = 0.45 if title else 0.0  # inches for the figure title
    width, height = 4.2 * cols, 3.2 * rows + top
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    # fixed margins in inches: a layout engine would draw the figure twice
    left, right, bottom, head, gap_x, gap_y = 0.8, 0.2, 0.55, 0.35 + top, 1.0, 0.9
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - head / height,
        wspace=_space(width - left - right, cols, gap_x),
        hspace=_space(height - bottom - head, rows, gap_y),
    )
    if title:
        fig.suptitle(title, y=1 - 0.12 / height, va="top")
    epochs = max(len(v) for v in history.values())
    marker = "o" if epochs <= 60 else None  # dots help a few epochs, clutter many
    for i, (name, keys) in enumerate(layout):
        ax = fig.add_subplot(rows, cols, i + 1)
        for key in keys:
            ys = as_floats(history[key])
            label = "validation" if key.startswith("val_") else "train"
            ax.plot(range(1, len(ys) + 1), ys, marker=marker, markersize=3, label=label, color=COLOURS[label])
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best" if epochs <= 500 else "upper right")  # "best" is slow on long curves
    return fig


def _space(total: float, n: int, gap: float) -> float:
    """matplotlib's wspace/hspace (a fraction of one axes' size) for ``gap`` inches between axes."""
    return gap / ((total - gap * (n - 1)) / n) if n > 1 else 0.0


def render(history: Mapping[str, Sequence[Any]], title: str | None = None, fmt: str = "png") -> bytes:
    """The figure as ``png``, ``svg`` or ``pdf`` bytes (rendered in memory, for atomic writes)."""
    if fmt not in FORMATS:
        raise ValueError(f"expected one of {', '.join(FORMATS)}, received {fmt!r}")
    buf = io.BytesIO()
    history_figure(history, title).savefig(buf, format=fmt)
    return buf.getvalue()


def write_plot(history: Mapping[str, Sequence[Any]], target: Path, title: str | None = None) -> Path:
    """Render and write atomically; the format follows the file's suffix (``.png`` when none)."""
    from trainctl.atomic import atomic_write_bytes

    target = Path(target)
    fmt = target.suffix[1:].lower() or "png"
    data = render(history, title, fmt)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, data)
    return target


def draw_run_plots(run: Any) -> Path | None:
    """``plots/history.png`` for a run folder (a :class:`~trainctl.runs.RunDir`), never raising.

    A plot must not fail a training run: any problem is recorded in run.json's ``warnings``.
    Returns the file written, or None (no epochs yet, or a warning recorded).
    """
    try:
        path = run.file(run.HISTORY_JSON)
        if not path.is_file():
            return None
        history = run.read_json(run.HISTORY_JSON)
        if not any(history.get(k) for k in history):
            return None
        return write_plot(history, run.file(f"{run.PLOTS}/{PLOT_FILE}"), title=run.path.name)
    except Exception as exc:
        try:
            warnings = list(run.read_json(run.RUN).get("warnings", []))
            warnings.append(f"{run.PLOTS}/{PLOT_FILE} not drawn: {type(exc).__name__}: {exc}")
            run.update_run(warnings=warnings)
        except Exception:  # run.json itself is unwritable: the run's own error says more
            pass
        return None


def main(run_dir: str) -> None:
    """Entry point for the child process the trainer starts (see ``trainctl.api.draw_plots``)."""
    from trainctl.runs import RunDir

    draw_run_plots(RunDir(Path(run_dir)))
