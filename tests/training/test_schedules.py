"""Learning-rate schedules: hand values from the Keras formulas, and Keras's own schedule objects."""

from __future__ import annotations

import math
from typing import Any

import pytest

import trainctl.config.compile as cc
from trainctl.errors import ConfigError
from trainctl.training.schedules import build_schedule

SPECS: list[Any] = [
    cc.ExponentialDecay(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.5),
    cc.ExponentialDecay(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.5, staircase=True),
    cc.PiecewiseConstantDecay(boundaries=[5, 10, 10, 30], values=[1.0, 0.5, 0.3, 0.1, 0.01]),
    cc.PiecewiseConstantDecay(boundaries=[0], values=[0.2, 0.02]),
    cc.CosineDecay(initial_learning_rate=0.1, decay_steps=40),
    cc.CosineDecay(initial_learning_rate=0.1, decay_steps=20, alpha=0.25),
    cc.CosineDecay(initial_learning_rate=0.0, decay_steps=30, warmup_target=0.2, warmup_steps=10),
    cc.CosineDecay(initial_learning_rate=0.01, decay_steps=25, alpha=0.1, warmup_target=0.1, warmup_steps=5),
    cc.CosineDecay(initial_learning_rate=0.01, decay_steps=25, warmup_target=0.1),
]


def test_exponential_decay_hand_values() -> None:
    smooth = build_schedule(SPECS[0])
    stairs = build_schedule(SPECS[1])
    assert smooth(0) == pytest.approx(0.1)
    assert smooth(7) == pytest.approx(0.05)
    assert smooth(3) == pytest.approx(0.1 * 0.5 ** (3 / 7))
    assert stairs(6) == pytest.approx(0.1)
    assert stairs(13) == pytest.approx(0.05)
    assert stairs(14) == pytest.approx(0.025)


def test_piecewise_constant_boundaries_are_inclusive_on_the_right() -> None:
    f = build_schedule(SPECS[2])
    got = [f(s) for s in (0, 5, 6, 10, 11, 30, 31, 1000)]
    # the duplicated boundary 10 makes values[2] (0.3) unreachable, as in Keras
    assert got == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1, 0.01, 0.01]


def test_cosine_decay_hand_values() -> None:
    plain = build_schedule(SPECS[4])
    assert plain(0) == pytest.approx(0.1)
    assert plain(20) == pytest.approx(0.05)  # half way: 0.5 * (1 + cos(pi / 2))
    assert plain(10) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert plain(40) == pytest.approx(0.0, abs=1e-12)
    assert plain(100) == pytest.approx(0.0, abs=1e-12)  # clamped after decay_steps
    floor = build_schedule(SPECS[5])
    assert floor(1000) == pytest.approx(0.025)  # alpha * initial
    warm = build_schedule(SPECS[6])
    assert warm(0) == 0.0
    assert warm(5) == pytest.approx(0.1)  # linear warmup, half way to 0.2
    assert warm(10) == pytest.approx(0.2)  # decay starts from the warmup target
    assert warm(25) == pytest.approx(0.1)
    assert warm(40) == pytest.approx(0.0, abs=1e-12)
    no_warmup_steps = build_schedule(SPECS[8])
    assert no_warmup_steps(0) == pytest.approx(0.1)  # decays from the target straight away


@pytest.mark.keras
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_matches_keras_schedules(spec: Any) -> None:
    keras = pytest.importorskip("keras")
    theirs = getattr(keras.optimizers.schedules, spec.type)(**spec.kwargs())
    ours = build_schedule(spec)
    for step in range(51):
        expected = float(keras.ops.convert_to_numpy(theirs(step)))
        assert ours(step) == pytest.approx(expected, rel=1e-6, abs=1e-7), step


def test_not_a_schedule_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        build_schedule(cc.Adam())
