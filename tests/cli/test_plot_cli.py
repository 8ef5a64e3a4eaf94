"""``trainctl train`` draws plots/history.png; ``trainctl plot RUN`` redraws it from history.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.clihelp import Cli, read_json, write
from trainctl import api

CONFIG = """
name: curves
seed: 2
data: {source: sklearn, name: iris, test_split: 0.2, x: [standardize]}
model:
  layers:
    - {type: Dense, units: 8, activation: relu, input_shape: [4]}
    - {type: Dense, units: 3, activation: softmax}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
  metrics: [accuracy, sparse_top_k_categorical_accuracy]
fit: {epochs: 3, batch_size: 32, validation_split: 0.25}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, Path]:
    tmp = tmp_path_factory.mktemp("plot")
    cli = Cli(tmp / "runs")
    return cli, Path(cli.train_json(write(tmp, CONFIG))["run_dir"])


def check_png(path: Path) -> Image.Image:
    image = Image.open(path)
    assert image.format == "PNG"
    width, height = image.size
    assert 400 <= width <= 3000 and 200 <= height <= 2000
    assert np.asarray(image.convert("L"), dtype=np.float64).var() > 0  # not blank
    return image


def test_every_run_writes_plots_history_png(trained: tuple[Cli, Path]) -> None:
    _, run = trained
    check_png(run / "plots" / "history.png")
    assert "warnings" not in read_json(run / "run.json")


def test_plot_redraws_from_history_json(trained: tuple[Cli, Path], tmp_path: Path) -> None:
    cli, run = trained
    out = tmp_path / "redrawn.png"
    res = cli("plot", "curves", "--runs-dir", cli.runs, "--output", out)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out)
    check_png(out)
    # same history, same title: the same picture as the one train drew
    assert out.read_bytes() == (run / "plots" / "history.png").read_bytes()


def test_plot_panels_are_loss_then_each_metric(trained: tuple[Cli, Path]) -> None:
    from trainctl.reporting.plots import history_figure

    cli, run = trained
    res = cli("plot", run, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["output"] == str(run / "plots" / "history.png")
    # the config names two metrics: loss, then one panel each
    assert out["panels"] == ["loss", "accuracy", "sparse_top_k_categorical_accuracy"]
    assert len(history_figure(read_json(run / "history.json")).get_axes()) == 1 + 2


def test_plot_svg_output(trained: tuple[Cli, Path], tmp_path: Path) -> None:
    cli, run = trained
    res = cli("plot", run, "-o", tmp_path / "curves.svg")
    assert res.exit_code == 0, res.output
    assert b"<svg" in (tmp_path / "curves.svg").read_bytes()[:2000]


def test_plot_errors(trained: tuple[Cli, Path], tmp_path: Path) -> None:
    cli, run = trained
    missing = cli("plot", "nope", "--runs-dir", cli.runs)
    assert missing.exit_code == 4 and "curves" in missing.stderr  # did-you-mean lists the runs there
    as_json = cli("plot", tmp_path / "no-such-run", "--json")
    assert as_json.exit_code == 4 and json.loads(as_json.stdout)["exit_code"] == 4
    bad_suffix = cli("plot", run, "--output", tmp_path / "curves.gif")
    assert bad_suffix.exit_code == 2 and not (tmp_path / "curves.gif").exists()
    # a run folder whose history is gone is an artifact error too
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text((run / "run.json").read_text())
    assert cli("plot", broken).exit_code == 4


def test_a_plot_that_fails_does_not_fail_the_run(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainctl.reporting import plots

    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("matplotlib is broken")

    monkeypatch.setattr(plots, "render", broken)
    monkeypatch.setattr(api, "PLOT_IN_CHILD", False)  # the patch lives in this process
    out = cli.train_json(write(tmp_path, CONFIG.replace("epochs: 3", "epochs: 1")))
    run = Path(out["run_dir"])
    info = read_json(run / "run.json")
    assert out["status"] == "completed" and info["status"] == "completed"
    assert info["warnings"] == ["plots/history.png not drawn: RuntimeError: matplotlib is broken"]
    assert not (run / "plots" / "history.png").exists()
