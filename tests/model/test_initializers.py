"""Keras initializers on torch: bounds and spread from theory, then the same distribution as Keras."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from trainctl.config.layers import Initializer
from trainctl.model.initializers import fans, initialize

SPEC: TypeAdapter[Any] = TypeAdapter(Initializer)
SHAPE = (400, 300)  # Dense kernel (in, out): fan_in 400, fan_out 300
TRUNC_STD = 0.87962566103423978  # stddev of a unit normal truncated to [-2, 2]


def sample(spec: Any, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    t = torch.empty(shape)
    initialize(t, SPEC.validate_python(spec))
    return t.numpy().astype(np.float64)


# (spec, theoretical std, hard bound or None)
THEORY = {
    "GlorotUniform": (math.sqrt(2 / 700), math.sqrt(6 / 700)),
    "HeUniform": (math.sqrt(2 / 400), math.sqrt(6 / 400)),
    "LecunUniform": (math.sqrt(1 / 400), math.sqrt(3 / 400)),
    # truncated normals keep the target variance and cut at 2 of the pre-truncation stddevs
    "GlorotNormal": (math.sqrt(2 / 700), 2 * math.sqrt(2 / 700) / TRUNC_STD),
    "HeNormal": (math.sqrt(2 / 400), 2 * math.sqrt(2 / 400) / TRUNC_STD),
    "LecunNormal": (math.sqrt(1 / 400), 2 * math.sqrt(1 / 400) / TRUNC_STD),
    "RandomUniform": (0.1 / math.sqrt(12), 0.05),
    "TruncatedNormal": (0.05 * TRUNC_STD, 0.1),
    "RandomNormal": (0.05, None),
}


@pytest.mark.parametrize("name", list(THEORY))
def test_spread_and_bounds_match_theory(name: str) -> None:
    std, bound = THEORY[name]
    x = sample({"type": name, "seed": 3})
    assert abs(x.mean()) < 0.02 * std  # 120k samples: the mean is ~std/350 from 0
    assert x.std() == pytest.approx(std, rel=0.01)
    if bound is not None:
        assert np.abs(x).max() <= bound * (1 + 1e-6)
        assert np.abs(x).max() >= bound * 0.98  # the bound is reached, not a smaller one


def test_uniform_is_flat_between_its_limits() -> None:
    limit = math.sqrt(6 / 700)
    x = sample({"type": "GlorotUniform", "seed": 0})
    counts, _ = np.histogram(x, bins=10, range=(-limit, limit))
    assert counts.min() > 0.9 * x.size / 10


def test_variance_scaling_modes() -> None:
    for mode, denom in (("fan_in", 400), ("fan_out", 300), ("fan_avg", 350)):
        x = sample(
            {"type": "VarianceScaling", "scale": 2.0, "mode": mode, "distribution": "untruncated_normal", "seed": 1}
        )
        assert x.std() == pytest.approx(math.sqrt(2.0 / denom), rel=0.01), mode
    x = sample({"type": "VarianceScaling", "mode": "fan_out", "distribution": "uniform", "seed": 1})
    assert np.abs(x).max() <= math.sqrt(3 / 300) * (1 + 1e-6)


def test_fans_follow_keras_rules() -> None:
    assert fans((400, 300)) == (400, 300)
    assert fans((3, 3, 8, 16)) == (72, 144)  # conv: receptive field 9 times in/out channels
    assert fans((5,)) == (5, 5)
    assert fans(()) == (1, 1)


@pytest.mark.parametrize(("shape", "gain"), [((300, 400), 1.0), ((400, 300), 1.0), ((64, 64), 2.5)])
def test_orthogonal(shape: tuple[int, int], gain: float) -> None:
    q = sample({"type": "Orthogonal", "gain": gain, "seed": 2}, shape) / gain
    rows, cols = shape
    small = q @ q.T if rows <= cols else q.T @ q  # the shorter side is orthonormal
    np.testing.assert_allclose(small, np.eye(min(rows, cols)), atol=1e-5)


def test_constants_and_identity() -> None:
    assert (sample("zeros", (3, 4)) == 0).all()
    assert (sample("ones", (3, 4)) == 1).all()
    assert (sample({"type": "Constant", "value": 0.25}, (3, 4)) == 0.25).all()
    np.testing.assert_array_equal(sample({"type": "Identity", "gain": 2.0}, (3, 4)), 2.0 * np.eye(3, 4))


@pytest.mark.parametrize("name", ["GlorotUniform", "HeNormal", "Orthogonal", "RandomNormal", "TruncatedNormal"])
def test_seeds_are_reproducible(name: str) -> None:
    a = sample({"type": name, "seed": 11}, (20, 30))
    b = sample({"type": name, "seed": 11}, (20, 30))
    c = sample({"type": name, "seed": 12}, (20, 30))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dense_defaults_glorot_kernel_and_zero_bias() -> None:
    from trainctl.config.schema import ModelSpec
    from trainctl.model.sequential import build_model

    torch.manual_seed(0)
    model = build_model(ModelSpec.model_validate({"layers": [{"type": "Dense", "units": 300, "input_shape": [400]}]}))
    dense = model.layers[0]
    assert tuple(dense.kernel.shape) == (400, 300)  # Keras layout
    assert torch.count_nonzero(dense.bias) == 0
    assert dense.kernel.abs().max() <= math.sqrt(6 / 700)
    assert dense.kernel.std().item() == pytest.approx(math.sqrt(2 / 700), rel=0.02)


# ---------------------------------------------------------------------------------------------
# against Keras: same family of distribution, compared by quantiles (different seeds on purpose)

KERAS_CASES = [
    "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal",
    "RandomNormal", "RandomUniform", "TruncatedNormal", "Orthogonal",
]  # fmt: skip


@pytest.mark.keras
@pytest.mark.parametrize("name", KERAS_CASES)
def test_same_distribution_as_keras(name: str) -> None:
    keras = pytest.importorskip("keras")
    theirs = keras.ops.convert_to_numpy(getattr(keras.initializers, name)(seed=101)(SHAPE)).astype(np.float64)
    ours = sample({"type": name, "seed": 7})
    probs = np.linspace(0.01, 0.99, 33)
    spread = theirs.std()
    assert ours.std() == pytest.approx(spread, rel=0.01)
    np.testing.assert_allclose(np.quantile(ours, probs), np.quantile(theirs, probs), atol=0.03 * spread)
    if name in THEORY and THEORY[name][1] is not None:
        bound = THEORY[name][1] * (1 + 1e-6)
        # Keras-on-torch truncates by picking the first of 4 draws inside [-2, 2], so about 4e-6
        # of its values escape; ours resamples until inside (as Keras on TensorFlow does)
        assert np.mean(np.abs(theirs) > bound) < 1e-4
        assert np.quantile(np.abs(theirs), 0.9999) == pytest.approx(np.quantile(np.abs(ours), 0.9999), rel=0.03)


@pytest.mark.keras
def test_keras_glorot_uniform_limit() -> None:
    keras = pytest.importorskip("keras")
    theirs = keras.ops.convert_to_numpy(keras.initializers.GlorotUniform(seed=5)(SHAPE))
    assert np.abs(theirs).max() == pytest.approx(math.sqrt(6 / (400 + 300)), rel=0.002)
