"""TerminateOnNaN: stop at the first batch whose loss is NaN or infinite, as Keras does.

It only sets ``trainer.stop_training``; the trainer sees ``terminated_batch`` and turns the run
into :class:`trainctl.errors.TrainingDiverged` (exit code 5).
"""

from __future__ import annotations

import math
from typing import Any

from trainctl.training.callbacks.base import Callback, Logs


class TerminateOnNaN(Callback):
    """Watch the per-batch ``loss``; costs one device sync per batch, hence opt-in."""

    needs_batch_logs = True

    def __init__(self) -> None:
        self.terminated_batch: int | None = None
        self.terminated_epoch: int | None = None
        self.loss: float | None = None
        self.messages: list[str] = []
        self._epoch = 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.terminated_batch = None
        self.terminated_epoch = None
        self.loss = None

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.terminated_batch = batch
        self.terminated_epoch = self._epoch
        self.loss = float(loss)
        # Keras prints this unconditionally; the CLI decides whether to show it.
        self.messages.append(f"Batch {batch}: Invalid loss, terminating training")
        self.trainer.stop_training = True

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None
