"""LearningRateScheduler: Keras's callback with the schedule given as data.

A YAML file cannot hold ``schedule(epoch, lr)``, so ``schedule`` is one of
- a mapping ``{epoch: lr}``: the rate of the last boundary at or below the epoch (the
  optimizer's own rate until the first boundary),
- a list of per-epoch rates, whose last value repeats,
- a schedule spec (ExponentialDecay...) evaluated at the 0-based epoch instead of the step.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trainctl.training.callbacks.base import Callback, Logs
from trainctl.training.callbacks.monitor import as_float32


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch."""

    def __init__(self, schedule: Mapping[int, float] | Sequence[float] | Any, verbose: int = 0):
        self.schedule = schedule
        self.verbose = verbose
        self.messages: list[str] = []
        self._fn: Callable[[int], float | None] = _as_function(schedule)

    def rate(self, epoch: int) -> float | None:
        """The rate for a 0-based epoch, or None to keep the current one."""
        return self._fn(epoch)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        lr = self.rate(epoch)
        if lr is None:
            return
        self.trainer.learning_rate = float(lr)
        if self.verbose > 0:
            self.messages.append(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr)}.")

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        # Keras adds the rate in use to the epoch's logs (and so to the history).
        logs["learning_rate"] = as_float32(self.trainer.learning_rate)


def _as_function(schedule: Any) -> Callable[[int], float | None]:
    if isinstance(schedule, Mapping):
        boundaries = sorted(int(k) for k in schedule)
        rates = [float(schedule[k]) for k in boundaries]

        def from_mapping(epoch: int) -> float | None:
            i = bisect.bisect_right(boundaries, epoch) - 1
            return rates[i] if i >= 0 else None

        return from_mapping
    if isinstance(schedule, Sequence) and not isinstance(schedule, str):
        values = [float(v) for v in schedule]
        if not values:
            return lambda epoch: None
        return lambda epoch: values[min(epoch, len(values) - 1)]
    return _from_spec(schedule)


def _from_spec(spec: Any) -> Callable[[int], float | None]:
    """Build the schedule on first use: the schedules module imports torch-side code."""
    built: list[Callable[[int], float]] = []

    def from_spec(epoch: int) -> float | None:
        if not built:
            from trainctl.training.schedules import build_schedule

            built.append(build_schedule(spec))
        return float(built[0](epoch))

    return from_spec
