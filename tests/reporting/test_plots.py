"""plots/history.png: one panel per quantity, the right lines in each, a real image, never fatal."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainctl.reporting import plots
from trainctl.runs import RunDir

ROOT = Path(__file__).resolve().parents[2]
# a Keras History.history as trainctl writes it: loss, metrics, val_ keys, then lr and epoch_time
HISTORY = {
    "loss": [1.0, 0.6, 0.4],
    "accuracy": [0.5, 0.7, 0.8],
    "mae": [0.9, 0.5, 0.3],
    "val_loss": [1.1, 0.8, 0.7],
    "val_accuracy": [0.4, 0.6, 0.65],
    "val_mae": [1.0, 0.7, 0.6],
    "lr": [0.01, 0.01, 0.001],
    "epoch_time": [0.3, 0.2, 0.2],
}


def test_panels_loss_first_then_metrics_without_lr_or_time() -> None:
    assert plots.panels(HISTORY) == [
        ("loss", ["loss", "val_loss"]),
        ("accuracy", ["accuracy", "val_accuracy"]),
        ("mae", ["mae", "val_mae"]),
    ]
    # no validation, loss not first in the file, a metric seen only on validation
    odd = {"mse": [1.0], "loss": [2.0], "val_auc": [0.5], "learning_rate": [0.1]}
    assert plots.panels(odd) == [("loss", ["loss"]), ("mse", ["mse"]), ("auc", ["val_auc"])]
    assert plots.panels({"lr": [0.1], "epoch_time": [1.0]}) == []


def test_figure_has_one_axes_per_quantity_with_train_and_validation_lines() -> None:
    fig = plots.history_figure(HISTORY, title="demo")
    axes = fig.get_axes()
    assert len(axes) == 1 + 2  # loss, then the two metrics
    for ax, name in zip(axes, ["loss", "accuracy", "mae"], strict=True):
        assert ax.get_title() == name and ax.get_xlabel() == "epoch" and ax.get_ylabel() == name
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"train", "validation"}
        assert list(lines["train"].get_xdata()) == [1, 2, 3]  # epochs counted from 1, as Keras prints them
        assert list(lines["train"].get_ydata()) == HISTORY[name]
        assert list(lines["validation"].get_ydata()) == HISTORY[f"val_{name}"]
    assert fig.get_suptitle() == "demo"


def test_non_finite_values_from_history_json_become_gaps() -> None:
    assert plots.as_floats([1.5, None, "inf", "-inf", "x"])[0] == 1.5
    values = plots.as_floats([None, "inf", "-inf"])
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf
    png = plots.render({"loss": [2.0, None, "inf", 1.0], "val_loss": [None, None, 3.0, 2.5]})
    assert Image.open(io.BytesIO(png)).format == "PNG"


def test_png_is_a_real_picture() -> None:
    image = Image.open(io.BytesIO(plots.render(HISTORY)))
    assert image.format == "PNG"
    width, height = image.size
    assert 600 <= width <= 3000 and 200 <= height <= 2000 and width > height  # three panels in a row
    pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.var() > 0  # not blank
    # the lines use matplotlib's default colours (tab:blue train, tab:orange validation)
    rgb = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    for colour in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(rgb - colour).sum(axis=1) < 30).sum() > 100, colour


def test_other_formats_follow_the_suffix(tmp_path: Path) -> None:
    assert plots.write_plot(HISTORY, tmp_path / "h.svg").read_bytes().lstrip().startswith(b"<?xml")
    assert plots.write_plot(HISTORY, tmp_path / "sub" / "h.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match="png"):
        plots.render(HISTORY, fmt="gif")


def _run_folder(tmp_path: Path, history: dict | None) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.update_run(status="completed")
    if history is not None:
        run.write_json(RunDir.HISTORY_JSON, history)
    return run


def test_draw_run_plots_writes_plots_history_png(tmp_path: Path) -> None:
    run = _run_folder(tmp_path, HISTORY)
    written = plots.draw_run_plots(run)
    assert written == run.path / "plots" / "history.png"
    assert Image.open(written).format == "PNG"
    assert [p.name for p in (run.path / "plots").iterdir()] == ["history.png"]  # no temp files left
    assert "warnings" not in run.read_json(RunDir.RUN)


@pytest.mark.parametrize("history", [None, {"loss": [], "val_loss": []}], ids=["no-file", "no-epochs"])
def test_draw_run_plots_without_epochs_draws_nothing(tmp_path: Path, history: dict | None) -> None:
    run = _run_folder(tmp_path, history)  # a run that failed before its first epoch ended
    assert plots.draw_run_plots(run) is None
    assert not (run.path / "plots").exists()
    assert "warnings" not in run.read_json(RunDir.RUN)


def test_a_failing_plot_is_a_warning_in_run_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("no fonts today")

    monkeypatch.setattr(plots, "render", broken)
    run = _run_folder(tmp_path, HISTORY)
    run.update_run(warnings=["an earlier warning"])
    assert plots.draw_run_plots(run) is None
    info = json.loads((run.path / "run.json").read_text())
    assert info["status"] == "completed"
    assert info["warnings"] == ["an earlier warning", "plots/history.png not drawn: RuntimeError: no fonts today"]
    assert not (run.path / "plots" / "history.png").exists()


def test_matplotlib_is_not_imported_until_a_plot_is_drawn() -> None:
    code = (
        "import sys, trainctl, trainctl.api, trainctl.reporting.plots, trainctl.cli.main;"
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_plot_child_draws_without_torch(tmp_path: Path) -> None:
    """The child the trainer waits for at the end of every run: importing torch there cost ~1.5 s."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.json").write_text(json.dumps(HISTORY))
    (run / "run.json").write_text(json.dumps({"status": "completed"}))
    code = (
        "import sys; from trainctl.reporting.plots import main; main(sys.argv[1]);"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sklearn', 'h5py'}))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(run)], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert Image.open(run / "plots" / "history.png").size[0] > 100
