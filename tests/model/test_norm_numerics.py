"""Norm-family numerics against hand-computed values and numpy (no Keras needed).

Covers what Keras's torch backend cannot be the reference for: average pooling with asymmetric
"same" padding (TensorFlow/JAX semantics: divide by the valid elements only), LayerNormalization
over a single non-trailing axis, and the exact BatchNormalization bookkeeping.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
import torch

from trainctl.config import load_config
from trainctl.errors import ConfigError
from trainctl.model.norm import same_padding
from trainctl.model.sequential import Sequential, build_model

HEAD = "data: {source: synthetic, kind: random}\ncompile: {loss: mse}\nmodel:\n  layers:\n"
RNG = np.random.default_rng(0)


def model_of(*layers: str, shape: list[int]) -> Sequential:
    body = f"    - {{type: InputLayer, shape: {shape}}}\n" + "".join(f"    - {layer}\n" for layer in layers)
    torch.manual_seed(0)
    return build_model(load_config(None, text=HEAD + body).config.model)


def first(model: Sequential) -> Any:
    """The model's first layer, typed loosely so tests can reach its weights."""
    return model.layers[0]


def run(model: Sequential, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x.astype(np.float32))).numpy().astype(np.float64)


def pool_reference(x: np.ndarray, pool: tuple[int, ...], strides: tuple[int, ...], same: bool, op: Any) -> np.ndarray:
    """Brute-force channels_last pooling: each output is ``op`` over the window's in-bounds inputs."""
    spatial = x.shape[1:-1]
    starts = []
    for n, k, s in zip(spatial, pool, strides, strict=True):
        if same:
            out = -(-n // s)
            before = max((out - 1) * s + k - n, 0) // 2  # TensorFlow's rule, written out independently
        else:
            out, before = (n - k) // s + 1, 0
        starts.append([i * s - before for i in range(out)])
    result = np.zeros((x.shape[0], *(len(st) for st in starts), x.shape[-1]))
    for idx in itertools.product(*(range(len(st)) for st in starts)):
        window: tuple[Any, ...] = tuple(
            slice(max(st[i], 0), min(st[i] + k, n)) for st, i, k, n in zip(starts, idx, pool, spatial, strict=True)
        )
        block = x[(slice(None), *window, slice(None))]
        at: tuple[Any, ...] = (slice(None), *idx, slice(None))
        result[at] = op(block.reshape(x.shape[0], -1, x.shape[-1]), axis=1)
    return result


def test_average_same_padding_counts_only_valid_elements_by_hand() -> None:
    """Length 6, window 3, stride 2: 3 outputs, one padding element at the end (none at the start).
    Windows [0,1,4], [4,9,16], [16,25]: the last averages 2 values, not 3."""
    x = (np.arange(6.0) ** 2).reshape(1, 6, 1)
    model = model_of("{type: AveragePooling1D, pool_size: 3, strides: 2, padding: same}", shape=[6, 1])
    np.testing.assert_allclose(run(model, x).ravel(), [5 / 3, 29 / 3, 41 / 2], rtol=1e-6)
    # window 4, stride 1: padding 1 before and 2 after; the first window is [0, 1, 4]
    model = model_of("{type: AveragePooling1D, pool_size: 4, strides: 1, padding: same}", shape=[6, 1])
    np.testing.assert_allclose(run(model, x).ravel(), [5 / 3, 14 / 4, 30 / 4, 54 / 4, 50 / 3, 41 / 2], rtol=1e-6)


def test_same_padding_puts_the_odd_element_after() -> None:
    assert same_padding(6, 3, 2) == (0, 1)
    assert same_padding(6, 4, 1) == (1, 2)
    assert same_padding(7, 3, 2) == (1, 1)
    assert same_padding(5, 1, 3) == (0, 0)


@pytest.mark.parametrize(
    ("layer", "shape", "pool", "strides"),
    [
        ("AveragePooling2D, pool_size: [3, 2], strides: [2, 1]", [7, 5, 3], (3, 2), (2, 1)),
        ("AveragePooling2D, pool_size: [2, 4], strides: 3", [5, 8, 2], (2, 4), (3, 3)),
        ("MaxPooling2D, pool_size: [2, 3], strides: [2, 2]", [5, 6, 2], (2, 3), (2, 2)),
        ("AveragePooling3D, pool_size: [2, 3, 2], strides: [2, 2, 1]", [3, 4, 5, 2], (2, 3, 2), (2, 2, 1)),
        ("MaxPooling3D, pool_size: [2, 1, 3], strides: [1, 1, 2]", [3, 4, 5, 2], (2, 1, 3), (1, 1, 2)),
        ("AveragePooling1D, pool_size: 4, strides: 3", [10, 3], (4,), (3,)),
    ],
)
def test_asymmetric_same_pooling_equals_brute_force(layer: str, shape: list[int], pool: tuple, strides: tuple) -> None:
    x = RNG.normal(size=(2, *shape)) - 3.0  # all negative: zero padding would leak into max pooling
    model = model_of(f"{{type: {layer}, padding: same}}", shape=shape)
    op = np.max if layer.startswith("Max") else np.mean
    want = pool_reference(x, pool, strides, True, op)
    assert model.info[0].output_shape == want.shape[1:]
    np.testing.assert_allclose(run(model, x), want, rtol=1e-5, atol=1e-6)


def test_same_average_pooling_trains_after_inference_mode() -> None:
    """The cached divisor made under inference_mode (a validation pass) must not break training."""
    model = model_of("{type: AveragePooling2D, pool_size: 3, strides: 2, padding: same}", shape=[6, 4, 2])
    x = torch.randn(2, 6, 4, 2, requires_grad=True)
    with torch.inference_mode():
        model(x.detach())
    model(x).sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())


def test_valid_pooling_equals_brute_force() -> None:
    x = RNG.normal(size=(2, 7, 5, 3))
    model = model_of("{type: AveragePooling2D, pool_size: [3, 2], strides: [2, 3]}", shape=[7, 5, 3])
    np.testing.assert_allclose(run(model, x), pool_reference(x, (3, 2), (2, 3), False, np.mean), atol=1e-6)


def test_batchnorm_one_training_batch_uses_the_biased_variance() -> None:
    model = model_of("{type: BatchNormalization, momentum: 0.9}", shape=[3])
    x = RNG.normal(size=(5, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -2.0]
    model.train()
    out = run(model, x)
    bn = first(model)
    mean, var = x.mean(axis=0), x.var(axis=0)  # ddof=0: Keras's batch variance
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-3), atol=1e-5)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * var, rtol=1e-6)
    unbiased = 0.9 + 0.1 * x.var(axis=0, ddof=1)  # what torch's running_var would hold
    assert np.abs(bn.moving_variance.numpy() - unbiased).min() > 1e-3
    # inference mode: the moving statistics, not the batch's
    model.eval()
    want = (x - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + 1e-3)
    np.testing.assert_allclose(run(model, x), want, atol=1e-5)


def test_batchnorm_over_images_and_a_batch_of_one() -> None:
    model = model_of("{type: BatchNormalization}", shape=[4, 3, 2])
    model.train()
    x = RNG.normal(size=(3, 4, 3, 2)) * 2.0 + 1.0
    run(model, x)
    per_channel = x.reshape(-1, 2)
    np.testing.assert_allclose(first(model).moving_variance.numpy(), 0.99 + 0.01 * per_channel.var(axis=0), rtol=1e-6)
    # a single value per channel is legal in Keras: variance 0, output beta (0), moving var decays
    flat = model_of("{type: BatchNormalization}", shape=[3])
    flat.train()
    np.testing.assert_allclose(run(flat, np.array([[1.0, -2.0, 5.0]])), 0.0, atol=1e-3)
    np.testing.assert_allclose(first(flat).moving_variance.numpy(), 0.99, rtol=1e-6)
    np.testing.assert_allclose(first(flat).moving_mean.numpy(), [0.01, -0.02, 0.05], rtol=1e-5)


def test_batchnorm_state_is_kerass_four_variables() -> None:
    model = model_of("{type: BatchNormalization, center: false}", "{type: BatchNormalization}", shape=[6, 3])
    assert [n for n, _ in model.keras_weights()[0][1]] == ["gamma", "moving_mean", "moving_variance"]
    assert [n for n, _ in model.keras_weights()[1][1]] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert not any("num_batches_tracked" in k for k in model.state_dict())
    assert [r.non_trainable_params for r in model.info] == [6, 6]
    assert [r.trainable_params for r in model.info] == [3, 6]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 9


def test_frozen_batchnorm_runs_in_inference_mode_while_training() -> None:
    model = model_of("{type: BatchNormalization, trainable: false}", shape=[3])
    assert (model.info[0].trainable_params, model.info[0].non_trainable_params) == (0, 12)
    model.train()
    x = RNG.normal(size=(4, 3)) + 5.0
    np.testing.assert_allclose(run(model, x), x / np.sqrt(1.0 + 1e-3), atol=1e-5)
    np.testing.assert_array_equal(first(model).moving_mean.numpy(), 0.0)


def test_batchnorm_gamma_regularizer_joins_the_loss() -> None:
    model = model_of("{type: BatchNormalization, gamma_regularizer: {type: L2, l2: 0.5}}", shape=[3])
    with torch.no_grad():
        first(model).gamma.copy_(torch.tensor([1.0, 2.0, 3.0]))
    reg = model.regularization_loss()
    assert reg is not None
    assert float(reg.detach()) == pytest.approx(0.5 * 14.0)


def test_layer_normalization_by_hand() -> None:
    x = RNG.normal(size=(2, 4, 3)) * 3.0
    last = model_of("{type: LayerNormalization}", shape=[4, 3])
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    np.testing.assert_allclose(run(last, x), (x - mean) / np.sqrt(var + 1e-3), atol=1e-5)
    # one non-trailing axis (Keras's torch backend hands this to F.layer_norm and fails)
    mid = model_of("{type: LayerNormalization, axis: 1, epsilon: 0.1}", shape=[4, 3])
    with torch.no_grad():
        first(mid).gamma.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
        first(mid).beta.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    gamma, beta = np.array([1.0, 2.0, 0.5, -1.0])[:, None], np.array([0.0, 1.0, 2.0, 3.0])[:, None]
    np.testing.assert_allclose(run(mid, x), (x - mean) / np.sqrt(var + 0.1) * gamma + beta, atol=1e-5)
    assert mid.info[0].trainable_params == 8


def test_spatial_dropout_drops_whole_channels() -> None:
    x = RNG.uniform(1.0, 2.0, size=(6, 5, 4, 8))
    model = model_of("{type: SpatialDropout2D, rate: 0.5}", shape=[5, 4, 8])
    np.testing.assert_array_equal(run(model.eval(), x), x.astype(np.float32))  # inference: identity
    model.train()
    torch.manual_seed(3)
    out = run(model, x)
    kept = out != 0.0
    assert (kept == kept[:, :1, :1, :]).all()  # one decision per sample and channel
    np.testing.assert_allclose(out[kept], 2.0 * x[kept], rtol=1e-6)  # survivors scaled by 1/(1-rate)
    assert 0 < kept[:, 0, 0, :].sum() < kept[:, 0, 0, :].size
    seq = model_of("{type: SpatialDropout1D, rate: 0.5}", shape=[7, 8])
    seq.train()
    out = run(seq, x[:, 0])
    assert ((out != 0) == (out[:, :1] != 0)).all()


def test_repeat_vector_and_permute_by_hand() -> None:
    x = RNG.normal(size=(2, 3))
    rep = model_of("{type: RepeatVector, n: 4}", shape=[3])
    np.testing.assert_allclose(run(rep, x), np.repeat(x[:, None, :], 4, axis=1), atol=1e-7)
    y = RNG.normal(size=(2, 3, 4, 5))
    perm = model_of("{type: Permute, dims: [3, 1, 2]}", shape=[3, 4, 5])
    assert perm.info[0].output_shape == (5, 3, 4)
    np.testing.assert_allclose(run(perm, y), y.transpose(0, 3, 1, 2), atol=1e-7)


def test_global_pooling_by_hand() -> None:
    x = RNG.normal(size=(2, 5, 4, 3))
    gap = model_of("{type: GlobalAveragePooling2D, keepdims: true}", shape=[5, 4, 3])
    np.testing.assert_allclose(run(gap, x), x.mean(axis=(1, 2), keepdims=True), atol=1e-6)
    gmp = model_of("{type: GlobalMaxPooling1D, data_format: channels_first}", shape=[5, 4])
    np.testing.assert_allclose(run(gmp, x[..., 0]), x[..., 0].max(axis=2), atol=1e-7)


@pytest.mark.parametrize(
    ("layer", "shape", "words"),
    [
        ("{type: MaxPooling2D, pool_size: [2, 2, 2]}", [4, 4, 1], "pool_size to be an int or 2 ints"),
        ("{type: Permute, dims: [1, 3]}", [2, 3], "permutation of 1..2"),
        ("{type: AveragePooling1D, pool_size: 4}", [3, 2], "at least pool_size [4]"),
        ("{type: BatchNormalization, axis: 3}", [4, 5], "received axis 3 for input shape (None, 4, 5)"),
        ("{type: LayerNormalization, axis: [1, -2]}", [4, 5], "distinct known non-batch axes"),
        ("{type: GlobalAveragePooling1D}", [4, 5, 6], "expected an input of rank 3 (batch, steps, channels)"),
        ("{type: RepeatVector, n: 2}", [4, 5], "expected an input of rank 2 (batch, features)"),
        ("{type: Permute, dims: [2, 1]}", [4, 5, 6], "expected an input of rank 3 for dims [2, 1]"),
        ("{type: SpatialDropout1D, rate: 0.1}", [4], "received shape (None, 4) of rank 2"),
    ],
)
def test_bad_arguments_and_shapes_are_config_errors(layer: str, shape: list[int], words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        model_of(layer, shape=shape)
    assert words in exc.value.render()
    assert "model.layers[1]" in exc.value.render()


def test_tf_keras_batchnorm_axis_list_imports() -> None:
    """tf-keras's to_json writes BatchNormalization ``axis: [3]`` (a list); it names the same axis."""
    from trainctl.serialization import model_spec_from_json

    layers = [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4, 5, 3], "name": "input_1"}},
        {"class_name": "BatchNormalization", "config": {"name": "batch_normalization", "axis": [3]}},
    ]
    spec = model_spec_from_json(json.dumps({"class_name": "Sequential", "config": {"name": "m", "layers": layers}}))
    assert spec.layers[1].axis == 3
    assert build_model(spec).info[0].non_trainable_params == 6
