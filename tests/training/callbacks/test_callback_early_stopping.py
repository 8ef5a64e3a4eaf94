"""EarlyStopping: hand-derived Keras 3 traces, real Keras on random traces, exact resume."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from trainctl.errors import ConfigError
from trainctl.training.callbacks import EarlyStopping


def losses(*values: float, key: str = "val_loss") -> list[dict[str, float]]:
    return [{"loss": 1.0, key: v} for v in values]


class WeightsByEpoch:
    """Sets the fake trainer's weights to the epoch index before each epoch end."""

    def __init__(self, cb: Any, trainer: Any) -> None:
        self.cb, self.trainer = cb, trainer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cb, name)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.trainer.weights = {"w": epoch}
        self.cb.on_epoch_end(epoch, logs)


class KerasWeightsByEpoch(WeightsByEpoch):
    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.trainer.weights = [epoch]
        self.cb.on_epoch_end(epoch, logs)


@pytest.mark.parametrize(
    ("kwargs", "values", "stopped", "best", "best_epoch", "epochs_run"),
    [
        # best 0.9 at epoch 1; epochs 2 and 3 do not improve, patience 2 runs out at epoch 3
        ({"patience": 2}, (1.0, 0.9, 0.95, 0.92, 0.91), 3, 0.9, 1, 4),
        # patience 0 stops at the first non-improving epoch, but never at epoch 0
        ({}, (1.0, 2.0, 0.5), 1, 1.0, 0, 2),
        # 0.95 is within min_delta 0.1 of 1.0: no improvement
        ({"patience": 1, "min_delta": 0.1}, (1.0, 0.95, 0.5), 1, 1.0, 0, 2),
        # warm-up epochs 0-1 are ignored, epoch 2 sets best, epoch 3 fails
        ({"start_from_epoch": 2}, (5.0, 4.0, 3.0, 3.5, 1.0), 3, 3.0, 2, 4),
        # never stops while improving
        ({"patience": 1}, (3.0, 2.0, 1.0), 0, 1.0, 2, 3),
    ],
)
def test_hand_derived_traces(
    make_trainer: Any,
    run: Any,
    kwargs: dict[str, Any],
    values: tuple[float, ...],
    stopped: int,
    best: float,
    best_epoch: int,
    epochs_run: int,
) -> None:
    cb, trainer = EarlyStopping(mode="min", **kwargs), make_trainer()
    seen = run(cb, trainer, losses(*values))
    assert (cb.stopped_epoch, cb.best, cb.best_epoch, len(seen)) == (
        stopped,
        best,
        best_epoch,
        epochs_run,
    )
    assert trainer.stop_training == (stopped > 0)


def test_baseline_keeps_wait_running_until_beaten(make_trainer: Any, run: Any) -> None:
    # mode max, baseline 0.8: epoch 0 improves on None but not the baseline, so wait stays 1;
    # epoch 1 does not improve and wait=2 >= patience 2 stops it.
    cb, trainer = EarlyStopping("val_acc", patience=2, baseline=0.8), make_trainer()
    run(cb, trainer, losses(0.5, 0.5, 0.9, key="val_acc"))
    assert (cb.stopped_epoch, cb.best, cb.wait) == (1, 0.5, 2)
    # improving below the baseline returns early each epoch: never stops
    cb, trainer = EarlyStopping("val_acc", patience=2, baseline=0.8), make_trainer()
    run(cb, trainer, losses(0.5, 0.6, 0.7, 0.75, key="val_acc"))
    assert (cb.stopped_epoch, cb.wait) == (0, 4)


@pytest.mark.parametrize("stops", [True, False])
def test_restore_best_weights_even_without_stopping(make_trainer: Any, run: Any, stops: bool) -> None:
    trainer = make_trainer()
    # patience 1 stops at epoch 2 (shown as 3); patience 2 lets all three epochs run
    cb = EarlyStopping("loss", patience=1 if stops else 2, restore_best_weights=True, verbose=1)
    run(WeightsByEpoch(cb, trainer), trainer, losses(3.0, 1.0, 2.0, key="loss"))
    assert trainer.weights == {"w": 1}
    expected = ["Restoring model weights from the end of the best epoch: 2."]
    assert cb.messages == (["Epoch 3: early stopping", *expected] if stops else expected)


def test_auto_mode_directions(make_trainer: Any, run: Any) -> None:
    for monitor, seq, stopped in [
        ("val_acc", (0.5, 0.4), 1),  # accuracy goes up: 0.4 is worse
        ("val_mae", (0.5, 0.4, 0.6), 2),  # mae goes down
        ("val_loss", (0.5, 0.6), 1),
    ]:
        cb, trainer = EarlyStopping(monitor), make_trainer()
        run(cb, trainer, losses(*seq, key=monitor))
        assert cb.stopped_epoch == stopped, monitor
    with pytest.raises(ConfigError) as err:
        run(EarlyStopping("val_score"), make_trainer(), losses(1.0, key="val_score"))
    assert err.value.key == "mode" and "mode: min" in (err.value.hint or "")
    trainer = make_trainer()
    trainer.metric_directions = {"score": "up"}
    cb = EarlyStopping("val_score")
    run(cb, trainer, losses(0.5, 0.4, key="val_score"))
    assert cb.stopped_epoch == 1


def test_missing_monitor_is_a_config_error(make_trainer: Any, run: Any) -> None:
    with pytest.raises(ConfigError) as err:
        run(EarlyStopping("val_los"), make_trainer(), losses(1.0))
    assert "'val_los'" in str(err.value) and "loss, val_loss" in str(err.value)
    assert err.value.key == "monitor" and "'val_loss'" in (err.value.hint or "")


def random_trace(rng: np.random.Generator, n: int) -> list[float]:
    # a noisy decreasing curve rounded to 2 decimals, so ties and near-ties happen
    return list(np.round(1.0 / (1 + np.arange(n) * 0.3) + rng.normal(0, 0.05, n), 2))


COMBOS: list[dict[str, Any]] = [
    {"patience": p, "min_delta": d, "baseline": b, "start_from_epoch": s, "mode": m}
    for p in (0, 1, 3)
    for d in (0.0, 0.01)
    for b in (None, 0.5)
    for s in (0, 2)
    for m in ("min", "max")
]


@pytest.mark.keras
def test_matches_keras_on_random_traces(make_trainer: Any, keras_model: Any, run: Any) -> None:
    import keras

    rng = np.random.default_rng(0)
    for i, kw in enumerate(COMBOS):
        seq = losses(*random_trace(rng, 12))
        ours, trainer = EarlyStopping(restore_best_weights=True, **kw), make_trainer()
        theirs, model = keras.callbacks.EarlyStopping(restore_best_weights=True, **kw), keras_model()
        ours_seen = run(WeightsByEpoch(ours, trainer), trainer, seq)
        theirs_seen = run(KerasWeightsByEpoch(theirs, model), model, seq)
        assert len(ours_seen) == len(theirs_seen), (i, kw)
        assert (ours.stopped_epoch, ours.best, ours.best_epoch, ours.wait) == (
            theirs.stopped_epoch,
            theirs.best,
            theirs.best_epoch,
            theirs.wait,
        ), (i, kw)
        assert trainer.weights["w"] == model.weights[0], (i, kw)


@pytest.mark.parametrize("cut", [1, 3, 5])
@pytest.mark.parametrize("load_first", [True, False])
def test_resume_from_json_state_equals_uninterrupted(make_trainer: Any, run: Any, cut: int, load_first: bool) -> None:
    seq = losses(1.0, 0.8, 0.85, 0.7, 0.75, 0.72, 0.6, 0.65)
    kw: dict[str, Any] = {"patience": 2, "min_delta": 0.02, "mode": "min"}
    whole = EarlyStopping(**kw)
    run(whole, make_trainer(), seq)
    assert whole.stopped_epoch == 5  # 0.72 is not 0.02 below 0.7: second miss in a row
    first = EarlyStopping(**kw)
    run(first, make_trainer(), seq[:cut])
    assert first.stopped_epoch == 0
    state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    second, trainer = EarlyStopping(**kw), make_trainer()
    if load_first:
        second.load_state_dict(state)
        run(second, trainer, seq[cut:], start=cut)
    else:
        second.set_trainer(trainer)
        second.on_train_begin()
        second.load_state_dict(state)
        # the trainer already called on_train_begin before loading the state
        second.on_train_begin = lambda logs=None: None  # type: ignore[method-assign]
        run(second, trainer, seq[cut:], start=cut)
    assert (second.stopped_epoch, second.best, second.best_epoch, second.wait) == (
        whole.stopped_epoch,
        whole.best,
        whole.best_epoch,
        whole.wait,
    )


def test_infinite_best_survives_strict_json(make_trainer: Any, run: Any) -> None:
    cb = EarlyStopping("loss", patience=5)
    run(cb, make_trainer(), losses(math.inf, key="loss"))
    text = json.dumps(cb.state_dict(), allow_nan=False)
    restored = EarlyStopping("loss")
    restored.load_state_dict(json.loads(text))
    assert restored.best == math.inf
