"""A fake trainer implementing TrainerView, and a minimal stand-in for a Keras model."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


class FakeTrainer:
    """TrainerView with a dict of weights, a float learning rate and recorded checkpoints."""

    def __init__(self, root: Path, learning_rate: float = 0.01) -> None:
        self.root = root
        self.stop_training = False
        self.history: dict[str, list[float]] = {}
        self._lr = learning_rate
        self.weights: dict[str, Any] = {"w": 0}
        self.saved: list[tuple[Path, bool]] = []

    @property
    def learning_rate(self) -> float:
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._lr = value

    def get_weights(self) -> dict[str, Any]:
        return dict(self.weights)

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.weights = dict(weights)

    def resolve_path(self, relative: str) -> Path:
        return self.root / relative

    def save_checkpoint(self, path: Path, *, weights_only: bool) -> None:
        self.saved.append((path, weights_only))


class FakeKerasModel:
    """What Keras's callbacks touch on ``self.model``: stop flag, weights, optimizer, save."""

    def __init__(self, optimizer: Any = None) -> None:
        self.stop_training = False
        self.weights: list[Any] = [0]
        self.optimizer = optimizer
        self.saved: list[tuple[str, bool]] = []

    def get_weights(self) -> list[Any]:
        return list(self.weights)

    def set_weights(self, weights: list[Any]) -> None:
        self.weights = list(weights)

    def save(self, filepath: str, overwrite: bool = True) -> None:
        self.saved.append((filepath, False))

    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        self.saved.append((filepath, True))


@pytest.fixture
def make_trainer(tmp_path: Path) -> Any:
    def make(learning_rate: float = 0.01) -> FakeTrainer:
        return FakeTrainer(tmp_path, learning_rate)

    return make


@pytest.fixture
def keras_model(keras: ModuleType) -> Any:
    """Factory for a fake Keras model; ``learning_rate`` gives it a real (float32) Keras SGD."""

    def make(learning_rate: float | None = None) -> FakeKerasModel:
        opt = None if learning_rate is None else keras.optimizers.SGD(learning_rate=learning_rate)
        return FakeKerasModel(opt)

    return make


def drive(cb: Any, host: Any, seq: list[dict[str, float]], start: int = 0) -> list[dict[str, float]]:
    """Run ``cb`` through epochs ``start, start+1, ...`` with the scripted logs, stopping as a
    Keras fit does; ``host`` is a FakeTrainer (ours) or a FakeKerasModel (Keras's callback).
    Returns the logs dicts after the callback saw them."""
    if isinstance(host, FakeTrainer):
        cb.set_trainer(host)
    else:
        cb.set_model(host)
    seen = []
    cb.on_train_begin({})
    for i, logs in enumerate(seq):
        epoch = start + i
        logs = dict(logs)
        cb.on_epoch_begin(epoch, {})
        cb.on_epoch_end(epoch, logs)
        seen.append(logs)
        if host.stop_training:
            break
    cb.on_train_end({})
    return seen


@pytest.fixture
def run() -> Any:
    return drive
