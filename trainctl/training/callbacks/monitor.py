"""Which way is better, and by how much: the logic EarlyStopping, ModelCheckpoint and
ReduceLROnPlateau share (Keras's ``MonitorCallback``).

Keras resolves ``mode="auto"`` from the monitored *metric object* (its ``_direction``), not from
the name alone. The callbacks here only see logged names, so a name is mapped back to its metric
type through the config registry (``val_acc`` -> ``acc`` -> accuracy -> up). A trainer that knows
custom metric names may expose ``metric_directions: dict[str, "up" | "down"]`` to extend this.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

import trainctl.config.compile  # noqa: F401  (fills the METRICS registry)
from trainctl.config.base import METRICS, did_you_mean
from trainctl.errors import ConfigError

# The ``_direction`` of the Keras metric class behind each registered metric type.
DIRECTIONS: dict[str, str] = {
    "accuracy": "up",
    "binary_accuracy": "up",
    "categorical_accuracy": "up",
    "sparse_categorical_accuracy": "up",
    "top_k_categorical_accuracy": "up",
    "sparse_top_k_categorical_accuracy": "up",
    "precision": "up",
    "recall": "up",
    "auc": "up",
    "mean_squared_error": "down",
    "mean_absolute_error": "down",
    "root_mean_squared_error": "down",
}


def metric_direction(monitor: str, known: Mapping[str, str] | None = None) -> str | None:
    """``"up"``/``"down"`` for a logged name, as Keras's auto mode would infer it, else None."""
    base = monitor.removeprefix("val_")
    if base == "loss" or base.endswith("_loss"):  # `<output>_loss` of a model with several outputs
        return "down"
    if known and base in known:
        return known[base]
    canonical = METRICS.canonical(base)
    for i, ch in enumerate(base):  # `<output>_<metric>`: the longest metric name at the end
        if canonical is not None:
            break
        if ch == "_":
            canonical = METRICS.canonical(base[i + 1 :])
    return DIRECTIONS.get(canonical) if canonical else None


class Monitor:
    """A monitored quantity with Keras's comparison rule.

    Keras compares with backend ops on Python floats, which become ``float32`` tensors; comparing
    in ``np.float32`` here keeps ties and near-ties decided exactly as Keras decides them.
    """

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        self.owner = owner
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self.lower_is_better: bool | None = None

    def resolve(self, trainer: Any = None) -> None:
        """Fix the direction (once); an undecidable auto mode is a config error, as in Keras."""
        if self.lower_is_better is not None:
            return
        if self.mode in ("min", "max"):
            self.lower_is_better = self.mode == "min"
            return
        known = getattr(trainer, "metric_directions", None)
        direction = metric_direction(self.monitor, known if isinstance(known, Mapping) else None)
        if direction is None:
            raise ConfigError(
                f"{self.owner} cannot tell whether {self.monitor!r} should be minimised or maximised with mode 'auto'",
                key="mode",
                hint="set mode: min or mode: max",
            )
        self.lower_is_better = direction == "down"

    def improved(self, current: float, reference: float | None) -> bool:
        """Keras's ``_is_improvement``: beyond ``min_delta`` in the good direction."""
        if reference is None:
            return True
        self.resolve()
        if self.lower_is_better:
            return bool(np.float32(current + self.min_delta) < np.float32(reference))
        return bool(np.float32(current - self.min_delta) > np.float32(reference))

    def value(self, logs: Mapping[str, float] | None, trainer: Any = None) -> float:
        """The monitored value, checked before the direction so a typo gets a "did you mean".

        A missing key is a config error (Keras only warns and skips the epoch).
        """
        logs = logs or {}
        if self.monitor not in logs:
            available = ", ".join(logs) or "(none)"
            guess = did_you_mean(self.monitor, logs)
            raise ConfigError(
                f"{self.owner} monitors {self.monitor!r}, which is not in the logs; available: {available}",
                key="monitor",
                hint=f"did you mean {guess!r}?" if guess else None,
            )
        self.resolve(trainer)
        return float(logs[self.monitor])


def encode_float(value: float | None) -> float | str | None:
    """JSON-safe float: inf and nan become strings (strict JSON has no literal for them)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else str(value)


def decode_float(value: float | str | None) -> float | None:
    """Inverse of :func:`encode_float`."""
    return None if value is None else float(value)


def as_float32(value: float) -> float:
    """A rate as Keras reads it back from its float32 variable, so logged rates match Keras's."""
    return float(np.float32(value))
