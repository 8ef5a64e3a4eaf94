"""The callback contract: Keras's hooks, plus a JSON state for exact resume.

Callbacks see the trainer through :class:`TrainerView`, a narrow protocol, so they can be unit
tested with a small fake and never reach into the loop's internals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

Logs = dict[str, float]


class TrainerView(Protocol):
    """What a callback may touch. Implemented by :class:`trainctl.training.loop.Trainer`."""

    stop_training: bool
    history: dict[str, list[float]]

    @property
    def learning_rate(self) -> float: ...

    @learning_rate.setter
    def learning_rate(self, value: float) -> None: ...

    def get_weights(self) -> dict[str, Any]:
        """A detached copy of the model's state (CPU tensors), for restore_best_weights."""
        ...

    def set_weights(self, weights: dict[str, Any]) -> None: ...

    def resolve_path(self, relative: str) -> Path:
        """Where a callback's relative file goes: inside the run directory when there is one."""
        ...

    def save_checkpoint(self, path: Path, *, weights_only: bool) -> None:
        """Write the model (and unless weights_only, its architecture) atomically to ``path``."""
        ...


class Callback:
    """Base class: every hook is a no-op. ``self.trainer`` is set before ``on_train_begin``."""

    trainer: TrainerView

    def set_trainer(self, trainer: TrainerView) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: Logs | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called only for callbacks with ``needs_batch_logs = True``: it costs a device sync."""

    needs_batch_logs: bool = False

    def on_epoch_end(self, epoch: int, logs: Logs) -> None: ...

    def on_train_end(self, logs: Logs | None = None) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state needed to resume exactly (counters, best values)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
