"""``trainctl.api``: Keras fit semantics that the CLI tests do not pin down."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from trainctl import api
from trainctl.config import load_config

BASE = """
name: api
seed: 3
data: {source: sklearn, name: iris, test_split: 0.2, x: [standardize]}
model:
  layers:
    - {type: Dense, units: 5, activation: relu, input_shape: [4]}
    - {type: Dense, units: 3, activation: softmax}
compile: {optimizer: {type: SGD, learning_rate: 0.1}, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit: {epochs: 3, batch_size: 8, verbose: 0}
"""


def _train(tmp_path: Path, *overrides: str, smoke: bool = False) -> api.TrainResult:
    return api.train(load_config(None, overrides, text=BASE), runs_dir=tmp_path, smoke=smoke)


def test_class_weight_is_a_per_sample_weight_on_the_loss() -> None:
    y = np.array([0, 1, 2, 1, 0])
    w = api._class_weights({0: 2.0, 2: 0.5}, y, "cpu")
    assert w.tolist() == [2.0, 1.0, 0.5, 1.0, 2.0]
    onehot = np.eye(3, dtype=np.float32)[y]
    assert api._class_weights({0: 2.0, 2: 0.5}, onehot, "cpu").tolist() == w.tolist()


def test_class_weight_changes_training_the_keras_way(tmp_path: Path) -> None:
    plain = _train(tmp_path)
    weighted = _train(tmp_path, "fit.class_weight={0: 1.0, 1: 1.0, 2: 1.0}")
    assert weighted.history["loss"] == plain.history["loss"]  # all-ones weights change nothing
    heavy = _train(tmp_path, "fit.class_weight={0: 10.0, 1: 1.0, 2: 1.0}")
    assert heavy.history["loss"][0] > plain.history["loss"][0]


def test_initial_epoch_runs_the_remaining_epochs(tmp_path: Path) -> None:
    result = _train(tmp_path, "fit.epochs=5", "fit.initial_epoch=3")
    assert len(result.history["loss"]) == 2 and result.epochs == 5


def test_validation_data_test_uses_the_test_split(tmp_path: Path) -> None:
    result = _train(tmp_path, "fit.validation_data=test")
    assert result.history["val_loss"][-1] == pytest.approx(result.metrics["test"]["loss"], rel=1e-6)


def test_validation_split_takes_the_last_rows_before_shuffling(tmp_path: Path) -> None:
    # iris after the stratified test split has 120 rows; 0.25 -> train 90 rows, validate the last 30
    result = _train(tmp_path, "fit.validation_split=0.25", "fit.epochs=1", "fit.batch_size=200")
    assert len(result.history["val_loss"]) == 1
    from trainctl.data import load_data

    cfg = load_config(None, ["fit.validation_split=0.25"], text=BASE).config
    ds = load_data(cfg.data, base_dir=Path.cwd(), seed=cfg.seed)
    assert len(ds.x_train) == 120


def test_smoke_trains_one_epoch_on_a_slice(tmp_path: Path) -> None:
    result = _train(tmp_path, "fit.epochs=50", smoke=True)
    assert result.epochs == 1 and result.status == "completed"


def test_unset_seed_is_drawn_and_recorded(tmp_path: Path) -> None:
    text = BASE.replace("seed: 3\n", "")
    result = api.train(load_config(None, text=text), runs_dir=tmp_path)
    resolved = load_config(result.run_dir / "config.resolved.yaml").config
    assert isinstance(resolved.seed, int)
    again = api.train(load_config(result.run_dir / "config.resolved.yaml"), runs_dir=tmp_path)
    assert again.history["loss"] == result.history["loss"]


def test_default_threads_leaves_a_core_free() -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    assert api.default_threads() == max(1, min(cores - 1, 8))


def test_training_loss_matches_a_hand_computed_first_step(tmp_path: Path) -> None:
    # one full-batch SGD epoch: the reported loss is the loss at the initial weights
    result = _train(tmp_path, "fit.epochs=1", "fit.batch_size=1000", "fit.shuffle=false")
    from trainctl.data import load_data
    from trainctl.model.sequential import build_model

    cfg = load_config(None, text=BASE).config
    ds = load_data(cfg.data, base_dir=Path.cwd(), seed=cfg.seed)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model)
    probs = model(torch.as_tensor(ds.x_train)).detach().numpy().astype(np.float64)
    expected = -np.mean(np.log(np.clip(probs[np.arange(len(probs)), ds.y_train], 1e-7, 1 - 1e-7)))
    assert result.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_state_and_history_persist_at_most_once_a_second_but_always_first_and_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trainctl.serialization.state as state

    calls: list[int] = []
    real = state.save_state

    def counting(path: Path, payload: dict, **kwargs: object) -> None:
        calls.append(int(payload["epoch"]))
        real(path, payload, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "save_state", counting)
    monkeypatch.setattr(api, "PERSIST_EVERY_S", 1e9)
    result = _train(tmp_path, "fit.epochs=6")
    assert calls == [1, 6]  # the first epoch (so an early kill can resume) and the last
    assert len(result.history["loss"]) == 6
    monkeypatch.setattr(api, "PERSIST_EVERY_S", 0.0)
    calls.clear()
    _train(tmp_path, "fit.epochs=4")
    assert calls == [1, 2, 3, 4]


def test_plots_are_drawn_in_a_child_and_a_crash_there_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _train(tmp_path, "fit.epochs=2")
    png = result.run_dir / "plots" / "history.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import sys

    from trainctl.runs import RunDir

    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    api.draw_plots(RunDir(result.run_dir))  # must not raise: a plot never fails a run
    warnings = json.loads((result.run_dir / "run.json").read_text())["warnings"]
    assert any("plots not drawn" in w and "no-such-python" in w for w in warnings)
