"""Keras learning-rate schedules as plain ``step -> lr`` functions.

Keras evaluates a schedule at ``optimizer.iterations``, the number of updates already applied, so
the first update uses ``schedule(0)``. These are pure Python float maths: the optimizer keeps its
learning rate on the host, so reading it never syncs with the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from trainctl.config import compile as cc
from trainctl.errors import ConfigError

LRSchedule = Callable[[int], float]


@dataclass(frozen=True)
class ExponentialDecay:
    """``initial * decay_rate ** (step / decay_steps)``, the exponent floored if ``staircase``."""

    initial_learning_rate: float
    decay_steps: int
    decay_rate: float
    staircase: bool = False

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate**p


@dataclass(frozen=True)
class PiecewiseConstantDecay:
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` on ``(b[i-1], b[i]]``, then last.

    Boundaries are inclusive on the right, as in Keras.
    """

    boundaries: tuple[int, ...]
    values: tuple[float, ...]

    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values, strict=False):
            if step <= boundary:
                return value
        return self.values[-1]


@dataclass(frozen=True)
class CosineDecay:
    """Optional linear warmup to ``warmup_target``, then cosine decay to ``alpha`` times the peak.

    Without ``warmup_target`` it decays from ``initial_learning_rate``; the step is clamped at the
    end of the decay, so the rate then stays at ``alpha * peak``.
    """

    initial_learning_rate: float
    decay_steps: int
    alpha: float = 0.0
    warmup_target: float | None = None
    warmup_steps: int = 0

    def _decay(self, step: float, peak: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            delta = self.warmup_target - self.initial_learning_rate
            return self.initial_learning_rate + delta * fraction
        return self._decay(step - self.warmup_steps, self.warmup_target)


def build_schedule(spec: object, key: str = "compile.optimizer.learning_rate") -> LRSchedule:
    """The ``step -> lr`` function for a validated schedule spec from ``trainctl.config.compile``."""
    if isinstance(spec, cc.ExponentialDecay):
        return ExponentialDecay(spec.initial_learning_rate, spec.decay_steps, spec.decay_rate, spec.staircase)
    if isinstance(spec, cc.PiecewiseConstantDecay):
        return PiecewiseConstantDecay(tuple(spec.boundaries), tuple(spec.values))
    if isinstance(spec, cc.CosineDecay):
        return CosineDecay(
            spec.initial_learning_rate,
            spec.decay_steps,
            spec.alpha,
            spec.warmup_target,
            spec.warmup_steps,
        )
    raise ConfigError(
        f"expected a learning-rate schedule spec, received {type(spec).__name__}",
        key=key,
        hint="one of ExponentialDecay, PiecewiseConstantDecay, CosineDecay",
    )
