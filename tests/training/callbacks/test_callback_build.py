"""Building callbacks from config specs, and the metric directions behind mode 'auto'."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from trainctl.config.base import CALLBACKS, METRICS
from trainctl.config.callbacks import Callback as CallbackField
from trainctl.errors import ConfigError
from trainctl.training import callbacks as cbs
from trainctl.training.callbacks.monitor import DIRECTIONS, metric_direction


def spec(data: Any) -> Any:
    return TypeAdapter(CallbackField).validate_python(data)


def test_every_registered_callback_spec_has_one_builder() -> None:
    assert set(CALLBACKS.specs.values()) == set(cbs.BUILDERS)
    for name in CALLBACKS.specs:
        data = {"type": name, **({"schedule": [0.1]} if name == "LearningRateScheduler" else {})}
        built = cbs.build_callback(spec(data))
        assert type(built).__name__ == name


def test_spec_arguments_reach_the_callback() -> None:
    es, rl, ck = cbs.build_callbacks(
        [
            spec({"type": "EarlyStopping", "monitor": "val_acc", "patience": 3, "baseline": 0.9}),
            spec({"type": "ReduceLROnPlateau", "factor": 0.5, "cooldown": 2, "min_lr": 1e-5}),
            spec({"type": "ModelCheckpoint", "save_best_only": True, "save_weights_only": True}),
        ]
    )
    assert isinstance(es, cbs.EarlyStopping) and (es.patience, es.baseline) == (3, 0.9)
    assert es.monitor.monitor == "val_acc"
    assert isinstance(rl, cbs.ReduceLROnPlateau)
    assert (rl.factor, rl.cooldown, rl.min_lr, rl.patience) == (0.5, 2, 1e-5, 10)
    assert isinstance(ck, cbs.ModelCheckpoint)
    assert (ck.filepath, ck.save_weights_only) == ("checkpoints/best", True)


def test_locate_error_prefixes_every_problem() -> None:
    err = cbs.locate_error(ConfigError("bad", key="monitor", hint="h"), 3)
    assert (err.key, err.hint, err.problems[0].key) == ("fit.callbacks[3].monitor", "h", err.key)
    assert cbs.locate_error(ConfigError("bad"), 0).key == "fit.callbacks[0]"


def test_auto_direction_by_logged_name() -> None:
    cases = {
        "loss": "down",
        "val_loss": "down",
        "val_acc": "up",
        "accuracy": "up",
        "val_mae": "down",
        "mse": "down",
        "val_auc": "up",
        "Precision": "up",
        "val_rmse": "down",
        "score": None,
        "learning_rate": None,
    }
    assert {name: metric_direction(name) for name in cases} == cases
    assert metric_direction("val_score", {"score": "up"}) == "up"


# the Keras class behind each registered metric type
KERAS_CLASS = {
    "accuracy": "Accuracy",
    "binary_accuracy": "BinaryAccuracy",
    "categorical_accuracy": "CategoricalAccuracy",
    "sparse_categorical_accuracy": "SparseCategoricalAccuracy",
    "top_k_categorical_accuracy": "TopKCategoricalAccuracy",
    "sparse_top_k_categorical_accuracy": "SparseTopKCategoricalAccuracy",
    "mean_squared_error": "MeanSquaredError",
    "mean_absolute_error": "MeanAbsoluteError",
    "root_mean_squared_error": "RootMeanSquaredError",
    "precision": "Precision",
    "recall": "Recall",
    "auc": "AUC",
}


@pytest.mark.keras
def test_directions_equal_keras_metric_directions(keras: Any) -> None:
    assert set(METRICS.names()) == set(DIRECTIONS) == set(KERAS_CLASS)
    for name, cls in KERAS_CLASS.items():
        assert getattr(keras.metrics, cls)()._direction == DIRECTIONS[name], name
