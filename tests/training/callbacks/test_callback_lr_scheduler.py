"""LearningRateScheduler with data schedules, and TerminateOnNaN, against Keras."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from trainctl.training.callbacks import LearningRateScheduler, TerminateOnNaN


def rates(cb: Any, trainer: Any, epochs: int) -> list[float]:
    cb.set_trainer(trainer)
    cb.on_train_begin()
    out = []
    for epoch in range(epochs):
        cb.on_epoch_begin(epoch)
        out.append(trainer.learning_rate)
        cb.on_epoch_end(epoch, {"loss": 1.0})
    return out


def test_mapping_uses_the_last_boundary_at_or_below(make_trainer: Any) -> None:
    cb = LearningRateScheduler({5: 0.001, 0: 0.1, 3: 0.01})
    assert rates(cb, make_trainer(), 7) == [0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    # before the first boundary the optimizer keeps its own rate
    assert rates(LearningRateScheduler({2: 0.05}), make_trainer(0.3), 4) == [0.3, 0.3, 0.05, 0.05]


def test_list_repeats_its_last_value(make_trainer: Any) -> None:
    cb = LearningRateScheduler([0.1, 0.05], verbose=1)
    assert rates(cb, make_trainer(), 4) == [0.1, 0.05, 0.05, 0.05]
    assert cb.messages[1] == "Epoch 2: LearningRateScheduler setting learning rate to 0.05."


@pytest.mark.keras
def test_schedule_spec_and_logged_rate_match_keras(keras: Any, make_trainer: Any, keras_model: Any) -> None:
    pytest.importorskip("trainctl.training.schedules")
    from trainctl.config.compile import ExponentialDecay

    spec = ExponentialDecay(initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5)
    sched = keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)
    theirs = keras.callbacks.LearningRateScheduler(lambda epoch: float(sched(epoch)))
    ours, trainer, model = LearningRateScheduler(spec), make_trainer(), keras_model(0.5)
    theirs.set_model(model)
    ours.set_trainer(trainer)
    for epoch in range(6):
        ours.on_epoch_begin(epoch)
        theirs.on_epoch_begin(epoch)
        assert trainer.learning_rate == pytest.approx(0.1 * 0.5 ** (epoch / 2), rel=1e-6)
        ours_logs: dict[str, float] = {"loss": 1.0}
        their_logs: dict[str, float] = {"loss": 1.0}
        ours.on_epoch_end(epoch, ours_logs)
        theirs.on_epoch_end(epoch, their_logs)
        assert ours_logs["learning_rate"] == pytest.approx(their_logs["learning_rate"], rel=1e-6)
    # a rate given as data is logged as Keras's float32 variable reads it back
    listed, theirs_listed = (
        LearningRateScheduler([0.1]),
        keras.callbacks.LearningRateScheduler(lambda epoch: 0.1),
    )
    listed.set_trainer(trainer)
    theirs_listed.set_model(model)
    ours_logs, their_logs = {"loss": 1.0}, {"loss": 1.0}
    for cb, logs in ((listed, ours_logs), (theirs_listed, their_logs)):
        cb.on_epoch_begin(0)
        cb.on_epoch_end(0, logs)
    assert ours_logs == their_logs == {"loss": 1.0, "learning_rate": float(np.float32(0.1))}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_terminate_on_nan_stops_at_the_first_bad_batch(make_trainer: Any, bad: float) -> None:
    cb, trainer = TerminateOnNaN(), make_trainer()
    assert cb.needs_batch_logs
    cb.set_trainer(trainer)
    cb.on_train_begin()
    cb.on_epoch_begin(4)
    for batch, loss in enumerate([1.0, 2.0, bad, 3.0]):
        cb.on_train_batch_end(batch, {"loss": loss})
        if trainer.stop_training:
            break
    assert (trainer.stop_training, cb.terminated_batch, cb.terminated_epoch) == (True, 2, 4)
    assert cb.messages == ["Batch 2: Invalid loss, terminating training"]


@pytest.mark.keras
def test_terminate_on_nan_agrees_with_keras(keras: Any, make_trainer: Any, keras_model: Any) -> None:
    trace = [0.5, 1e30, float("inf"), 0.1]
    ours, trainer = TerminateOnNaN(), make_trainer()
    theirs, model = keras.callbacks.TerminateOnNaN(), keras_model()
    ours.set_trainer(trainer)
    theirs.set_model(model)
    for batch, loss in enumerate(trace):
        ours.on_train_batch_end(batch, {"loss": loss})
        theirs.on_train_batch_end(batch, {"loss": loss})
        assert trainer.stop_training == model.stop_training, batch
    assert ours.terminated_batch == 2
