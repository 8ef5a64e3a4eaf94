"""EarlyStopping with Keras 3 semantics (``keras/src/callbacks/early_stopping.py``).

Worth knowing, because Keras does it this way:
- ``wait`` counts every monitored epoch and resets only on an improvement that also beats
  ``baseline``; training stops once ``wait >= patience`` (never at epoch 0).
- with ``restore_best_weights``, the best weights are restored at the end of training whether
  or not training was stopped early; the first monitored epoch counts as best even if it does
  not beat ``baseline``.
"""

from __future__ import annotations

from typing import Any

from trainctl.training.callbacks.base import Callback, Logs
from trainctl.training.callbacks.monitor import Monitor, decode_float, encode_float


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        self.monitor = Monitor("EarlyStopping", monitor, mode, min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.messages: list[str] = []
        self._resumed = False
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_epoch = 0
        # A detached copy of the model's state (CPU tensors). Not part of the JSON state: a
        # trainer that wants an exact resume with restore_best_weights saves it beside it.
        self.best_weights: dict[str, Any] | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        # Keras resets here so one instance can serve several fits; a resumed run keeps its state.
        if not self._resumed:
            self._reset()
        self._resumed = False

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        current = self.monitor.value(logs, self.trainer)
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.trainer.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self.monitor.improved(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.trainer.get_weights()
            if self.baseline is None or self.monitor.improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            self.messages.append(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                self.messages.append(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.trainer.set_weights(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": encode_float(self.best),
            "best_epoch": self.best_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = decode_float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self._resumed = True
