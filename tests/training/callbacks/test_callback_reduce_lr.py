"""ReduceLROnPlateau: hand-derived Keras 3 traces, real Keras's rate sequence, exact resume."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from trainctl.training.callbacks import ReduceLROnPlateau


def trace(*values: float) -> list[dict[str, float]]:
    return [{"loss": v} for v in values]


def rates(cb: ReduceLROnPlateau, trainer: Any, seq: list[dict[str, float]]) -> list[float]:
    """The rate after each epoch end, driving the callback by hand."""
    cb.set_trainer(trainer)
    cb.on_train_begin()
    out = []
    for epoch, logs in enumerate(seq):
        cb.on_epoch_end(epoch, dict(logs))
        out.append(trainer.learning_rate)
    return out


def test_cooldown_is_counted_down_before_the_check(make_trainer: Any) -> None:
    # Keras decrements the cooldown at the start of each epoch, so cooldown=1 leaves no gap and
    # cooldown=2 skips one epoch. Values are powers of two so the products are exact.
    seq = trace(1, 1, 1, 1, 1, 0.5, 0.5)
    cb = ReduceLROnPlateau("loss", factor=0.5, patience=1, cooldown=1, min_delta=0)
    assert rates(cb, make_trainer(1.0), seq) == [1, 0.5, 0.25, 0.125, 0.0625, 0.0625, 0.03125]
    cb = ReduceLROnPlateau("loss", factor=0.5, patience=1, cooldown=2, min_delta=0)
    assert rates(cb, make_trainer(1.0), seq) == [1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_patience_and_min_delta(make_trainer: Any) -> None:
    # min_delta 1e-4 by default: 0.99995 is no improvement on 1.0; patience 2 -> reduce at e2
    cb = ReduceLROnPlateau("loss", factor=0.5, patience=2)
    assert rates(cb, make_trainer(1.0), trace(1.0, 0.99995, 0.9999, 0.5)) == [1, 1, 0.5, 0.5]
    assert (cb.best, cb.wait) == (0.5, 0)


def test_min_lr_clamps_and_then_stops_reducing(make_trainer: Any) -> None:
    cb = ReduceLROnPlateau("loss", factor=0.1, patience=1, min_lr=0.001, cooldown=3, verbose=1)
    got = rates(cb, make_trainer(0.01), trace(1, 1, 1, 1, 1, 1, 1))
    assert got[0] == 0.01 and all(r == 0.001 for r in got[1:])
    # after the clamp, 0.001 is not above min_lr in float32: no further "reduction" messages
    assert cb.messages == ["Epoch 2: ReduceLROnPlateau reducing learning rate to 0.001."]
    assert cb.wait == 3  # e4, e5, e6: wait grows once cooldown ends; nothing can be reduced


def test_logs_learning_rate_before_reduction(make_trainer: Any) -> None:
    cb, trainer = ReduceLROnPlateau("loss", factor=0.5, patience=0), make_trainer(0.5)
    cb.set_trainer(trainer)
    cb.on_train_begin()
    logs = {"loss": 1.0}
    cb.on_epoch_end(0, logs)
    later = {"loss": 2.0}
    cb.on_epoch_end(1, later)
    assert logs["learning_rate"] == 0.5 and later["learning_rate"] == 0.5
    assert trainer.learning_rate == 0.25


COMBOS: list[dict[str, Any]] = [
    {"factor": f, "patience": p, "cooldown": c, "min_delta": d, "min_lr": m, "mode": mode}
    for f in (0.1, 0.5)
    for p in (0, 2)
    for c in (0, 2)
    for d in (0.0, 1e-2)
    for m in (0.0, 1e-3)
    for mode in ("min", "max")
]


@pytest.mark.keras
def test_rate_sequence_matches_keras(make_trainer: Any, keras_model: Any) -> None:
    import keras

    rng = np.random.default_rng(1)
    finals = set()
    for kw in COMBOS:
        values = np.round(1.0 / (1 + np.arange(15) * 0.2) + rng.normal(0, 0.05, 15), 2)
        seq = [{"loss": 1.0, "val_loss": float(v)} for v in values]
        ours, trainer = ReduceLROnPlateau(**kw), make_trainer(0.1)
        theirs, model = keras.callbacks.ReduceLROnPlateau(**kw), keras_model(0.1)
        theirs.set_model(model)
        ours.set_trainer(trainer)
        ours.on_train_begin()
        theirs.on_train_begin()
        for epoch, logs in enumerate(seq):
            ours_logs, their_logs = dict(logs), dict(logs)
            ours.on_epoch_end(epoch, ours_logs)
            theirs.on_epoch_end(epoch, their_logs)
            their_lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
            assert float(np.float32(trainer.learning_rate)) == their_lr, (kw, epoch)
            assert ours_logs == their_logs, (kw, epoch)
            assert (ours.wait, ours.cooldown_counter, ours.best) == (
                theirs.wait,
                theirs.cooldown_counter,
                theirs.best,
            ), (kw, epoch)
        finals.add(trainer.learning_rate)
    assert len(finals) > 5  # the traces do drive reductions, clamps and cooldowns apart


@pytest.mark.parametrize("cut", [2, 4, 7])
def test_resume_from_json_state_equals_uninterrupted(make_trainer: Any, cut: int) -> None:
    seq = trace(1.0, 0.9, 0.95, 0.93, 0.94, 0.8, 0.85, 0.86, 0.87, 0.88, 0.7)
    kw: dict[str, Any] = {"monitor": "loss", "factor": 0.5, "patience": 1, "cooldown": 2}
    whole = rates(ReduceLROnPlateau(**kw), make_trainer(1.0), seq)
    first, trainer = ReduceLROnPlateau(**kw), make_trainer(1.0)
    head = rates(first, trainer, seq[:cut])
    state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    second, resumed = ReduceLROnPlateau(**kw), make_trainer(trainer.learning_rate)
    second.load_state_dict(state)
    second.set_trainer(resumed)
    second.on_train_begin()
    tail = []
    for epoch in range(cut, len(seq)):
        second.on_epoch_end(epoch, dict(seq[epoch]))
        tail.append(resumed.learning_rate)
    assert head + tail == whole
    assert len(set(whole)) >= 3  # the trace does reduce, more than once
