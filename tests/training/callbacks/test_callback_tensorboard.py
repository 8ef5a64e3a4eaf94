"""TensorBoard: Keras's layout and tags, read back with TensorBoard's own event reader.

Expectations are independent of the callback: history.json (written by the trainer), the final
weights in model.weights.h5, Keras's naming rules (``epoch_<name>``, ``batch_<name>``,
``<model>/<layer>/<weight>/histogram``, steps 1-based for batches) and hand-counted batches.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from tests.clihelp import Cli, read_json, write

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trainctl.config import callbacks as specs
from trainctl.errors import ConfigError, Interrupted
from trainctl.training.callbacks import TensorBoard, build_callbacks

# iris: 150 rows, 120 after test_split 0.2, 90 after validation_split 0.25: batches of
# 16, 16, 16, 16, 16, 10 -> 6 steps per epoch
BATCHES = [16, 16, 16, 16, 16, 10]
CONFIG = """
name: tb
seed: 3
data: {source: sklearn, name: iris, test_split: 0.2, x: [standardize]}
model:
  layers:
    - {type: Dense, units: 8, activation: relu, input_shape: [4]}
    - {type: Dense, units: 3, activation: softmax}
compile: {optimizer: {type: Adam, learning_rate: 0.01}, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit:
  epochs: 3
  batch_size: 16
  validation_split: 0.25
  callbacks: [{type: TensorBoard, histogram_freq: 1, update_freq: batch}]
"""


def events(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    found = acc.Scalars(tag)
    return [e.step for e in found], [e.value for e in found]


def check_epochs_match_history(run: Path, epochs: int) -> dict[str, list[float]]:
    history = read_json(run / "history.json")
    train, val = events(run / "logs" / "train"), events(run / "logs" / "validation")
    for acc, tag, key in [
        (train, "epoch_loss", "loss"),
        (train, "epoch_accuracy", "accuracy"),
        (train, "epoch_learning_rate", "lr"),
        (val, "epoch_loss", "val_loss"),
        (val, "epoch_accuracy", "val_accuracy"),
    ]:
        steps, values = scalars(acc, tag)
        assert steps == list(range(epochs)), tag
        np.testing.assert_allclose(values, history[key], rtol=1e-6, err_msg=tag)  # stored as float32
    return history


def check_batch_losses(run: Path, history: dict[str, list[float]], epochs: int) -> None:
    """Every step once (1-based), and each epoch's loss is the sample-weighted mean of its batches."""
    steps, values = scalars(events(run / "logs" / "train"), "batch_loss")
    assert steps == list(range(1, len(BATCHES) * epochs + 1))
    per_epoch = np.asarray(values, dtype=np.float64).reshape(epochs, len(BATCHES))
    np.testing.assert_allclose(per_epoch @ BATCHES / sum(BATCHES), history["loss"], rtol=1e-6)


def test_event_files_match_history_weights_and_graph(cli: Cli, tmp_path: Path) -> None:
    run = Path(cli.train_json(write(tmp_path, CONFIG))["run_dir"])
    assert {p.name for p in (run / "logs").iterdir()} == {"train", "validation"}
    history = check_epochs_match_history(run, 3)
    check_batch_losses(run, history, 3)

    val = events(run / "logs" / "validation")
    steps, values = scalars(val, "evaluation_loss_vs_iterations")
    assert steps == [6, 12, 18] and np.allclose(values, history["val_loss"], rtol=1e-6)

    train = events(run / "logs" / "train")
    tags = {
        f"sequential/{layer}/{w}/histogram" for layer in ("dense", "dense_1") for w in ("kernel", "bias")
    }  # Keras 3's weight.path for this model, plus Keras's "/histogram" suffix
    assert set(train.Tags()["histograms"]) == tags
    with h5py.File(run / "model.weights.h5", "r") as f:
        kernel = f["layers/dense/vars/0"][()]  # final weights = the histogram of the last epoch
    kernel_hists = train.Histograms("sequential/dense/kernel/histogram")
    assert [h.step for h in kernel_hists] == [0, 1, 2]
    last = kernel_hists[-1].histogram_value
    assert last.num == 4 * 8
    assert last.sum == pytest.approx(float(kernel.sum()), rel=1e-5, abs=1e-6)
    assert (last.min, last.max) == pytest.approx((float(kernel.min()), float(kernel.max())), rel=1e-6)
    # the graph: one linear op per Dense layer
    assert train.Tags()["graph"]
    ops = [node.op for node in train.Graph().node]
    assert ops.count("aten::addmm") == 2, ops


def test_resumed_run_logs_every_step_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted in epoch 2 after 3 steps (their events reached the disk), then resumed."""
    from trainctl.api import resume, train
    from trainctl.config import load_config

    original = TensorBoard.on_train_batch_end

    def flushed(self: TensorBoard, batch: int, logs: Any = None) -> None:
        original(self, batch, logs)
        self._flush()  # as if the OS had written the events before the kill

    monkeypatch.setattr(TensorBoard, "on_train_batch_end", flushed)
    stop: list[int] = []

    class StopInEpoch2:
        epoch = 0

        def epoch_begin(self, epoch: int, epochs: int, steps: int) -> None:
            self.epoch = epoch

        def step(self, step: int, peek: Any) -> None:
            if self.epoch == 1 and step == 3:
                stop.append(int(signal.SIGINT))

        def epoch_end(self, *args: Any) -> None: ...

    cfg = write(tmp_path, CONFIG.replace("update_freq: batch", "update_freq: 1"))
    with pytest.raises(Interrupted):
        train(load_config(cfg), runs_dir=tmp_path / "runs", progress=StopInEpoch2(), interrupt=stop)
    run = next((tmp_path / "runs").iterdir())
    steps, _ = scalars(events(run / "logs" / "train"), "batch_loss")
    assert steps == list(range(1, 6 + 3 + 1))  # epoch 1 and 3 steps of epoch 2 were on disk

    resume(run)
    history = check_epochs_match_history(run, 3)
    check_batch_losses(run, history, 3)
    assert len(list((run / "logs" / "train").iterdir())) == 2  # the first run's file, then the resumed one


def test_update_freq_steps_follow_keras(make_trainer: Any) -> None:
    """Keras counts batches from 1 and records when ``step % update_freq == 0``."""
    trainer = make_trainer()
    cb = TensorBoard(log_dir="tb", update_freq=4)
    assert cb.needs_batch_logs
    cb.set_trainer(trainer)
    cb.on_train_begin()
    for step in range(10):
        cb.on_train_batch_end(step % 5, {"loss": float(step + 1)})
    cb.on_train_end()
    steps, values = scalars(events(trainer.root / "tb" / "train"), "batch_loss")
    assert steps == [4, 8] and values == [4.0, 8.0]
    assert not TensorBoard(update_freq="epoch").needs_batch_logs  # no per-step sync by default


def test_epoch_scalars_with_a_fake_trainer(make_trainer: Any) -> None:
    trainer = make_trainer(learning_rate=0.25)
    cb = TensorBoard()  # log_dir "logs", relative to the run directory
    cb.set_trainer(trainer)
    cb.on_train_begin()
    cb.on_epoch_end(0, {"loss": 2.0, "mae": 1.5})
    # ReduceLROnPlateau puts the epoch's rate in the logs before it lowers it: that one is logged
    cb.on_epoch_end(1, {"loss": 1.0, "mae": 0.5, "learning_rate": 0.125})
    cb.on_train_end()
    assert not (trainer.root / "logs" / "validation").exists()  # no val_ logs, no validation writer
    train = events(trainer.root / "logs" / "train")
    assert scalars(train, "epoch_loss") == ([0, 1], [2.0, 1.0])
    assert scalars(train, "epoch_mae") == ([0, 1], [1.5, 0.5])
    assert scalars(train, "epoch_learning_rate") == ([0, 1], [0.25, 0.125])
    assert train.Tags()["histograms"] == [] and not train.Tags()["graph"]


def test_missing_tensorboard_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with pytest.raises(ConfigError) as info:
        build_callbacks([specs.CSVLogger(), specs.TensorBoard()])
    problem = info.value.problems[0]
    assert problem.key == "fit.callbacks[1]"
    assert "tensorboard" in problem.message and "trainctl[tensorboard]" in (problem.hint or "")


@pytest.mark.parametrize("bad", [0, -2, "steps"])
def test_update_freq_is_validated(bad: Any) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        specs.TensorBoard.model_validate({"update_freq": bad})
    with pytest.raises(ConfigError):
        TensorBoard(update_freq=bad)
