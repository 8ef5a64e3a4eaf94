"""ReduceLROnPlateau with Keras 3 semantics (``keras/src/callbacks/reduce_lr_on_plateau.py``).

Worth knowing, because Keras does it this way: the cooldown counter is decremented (and ``wait``
cleared) at the start of each monitored epoch; an improvement always resets ``wait``; a reduction
happens only while the rate is above ``min_lr`` compared in float32 (the optimizer's dtype), which
stops repeated "reductions" of a rate already clamped to ``min_lr``; the rate is read as float32
too, so the sequence of rates equals Keras's. Like Keras, it adds the
epoch's ``learning_rate`` (before any reduction) to the logs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainctl.training.callbacks.base import Callback, Logs
from trainctl.training.callbacks.monitor import Monitor, as_float32, decode_float, encode_float


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        self.monitor = Monitor("ReduceLROnPlateau", monitor, mode, min_delta)
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.messages: list[str] = []
        self._resumed = False
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if not self._resumed:
            self._reset()
        self._resumed = False

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        logs["learning_rate"] = as_float32(self.trainer.learning_rate)
        current = self.monitor.value(logs, self.trainer)
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor.improved(current, self.best):
            self.best = current
            self.wait = 0
            return
        if self.in_cooldown():
            return
        self.wait += 1
        if self.wait >= self.patience and self._reduce(epoch):
            self.cooldown_counter = self.cooldown
            self.wait = 0

    def _reduce(self, epoch: int) -> bool:
        old_lr = as_float32(self.trainer.learning_rate)
        if not np.float32(old_lr) > np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        self.trainer.learning_rate = new_lr
        if self.verbose > 0:
            self.messages.append(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
        return True

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": encode_float(self.best),
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = decode_float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self._resumed = True
