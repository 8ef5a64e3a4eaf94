"""Conv family against real Keras 3 (torch backend): parameter counts, output shapes, Keras weight
layout (names, shapes, order) and forward outputs on the same weights, for every layer.

Kernels, strides and inputs are non-square on purpose: a transposed square kernel would load
silently and give wrong answers.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from trainctl.config import load_config  # noqa: E402
from trainctl.model.sequential import Sequential, build_model  # noqa: E402

pytestmark = pytest.mark.keras
L = keras.layers


def build_ours(layers: list[dict[str, Any]], input_shape: tuple[int | None, ...]) -> Sequential:
    cfg = {
        "data": {"source": "synthetic", "kind": "random"},
        "model": {"layers": [{"type": "InputLayer", "shape": list(input_shape)}, *layers]},
        "compile": {"loss": "mse"},
    }
    torch.manual_seed(0)
    model = build_model(load_config(None, text=json.dumps(cfg)).config.model)
    return model.eval()


def our_weights(model: Sequential) -> list[tuple[str, np.ndarray]]:
    return [(n, t.detach().numpy().copy()) for _, ws in model.keras_weights() for n, t in ws]


def predict(model: Sequential, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def keras_predict(model: Any, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


# (our layer, the same Keras layer, per-sample input shape)
CASES: dict[str, tuple[dict[str, Any], Any, tuple[int | None, ...]]] = {
    "conv1d_same_stride": (
        {"type": "Conv1D", "filters": 3, "kernel_size": 4, "strides": 2, "padding": "same", "activation": "tanh"},
        lambda: L.Conv1D(3, 4, strides=2, padding="same", activation="tanh"),
        (11, 2),
    ),
    "conv1d_causal_dilated": (
        {"type": "Conv1D", "filters": 5, "kernel_size": 3, "padding": "causal", "dilation_rate": 2},
        lambda: L.Conv1D(5, 3, padding="causal", dilation_rate=2),
        (10, 3),
    ),
    "conv1d_unknown_length": (  # padding computed per call from the actual length
        {"type": "Conv1D", "filters": 2, "kernel_size": 4, "strides": 3, "padding": "same"},
        lambda: L.Conv1D(2, 4, strides=3, padding="same"),
        (None, 3),
    ),
    "conv1d_groups": (
        {"type": "Conv1D", "filters": 6, "kernel_size": [2], "groups": 2, "use_bias": False},
        lambda: L.Conv1D(6, 2, groups=2, use_bias=False),
        (9, 4),
    ),
    "conv2d_same_stride": (
        {"type": "Conv2D", "filters": 5, "kernel_size": [3, 2], "strides": [2, 3], "padding": "same",
         "activation": "relu"},
        lambda: L.Conv2D(5, (3, 2), strides=(2, 3), padding="same", activation="relu"),
        (7, 8, 3),
    ),
    "conv2d_same_even_kernel": (
        {"type": "Conv2D", "filters": 2, "kernel_size": [4, 2], "padding": "same"},
        lambda: L.Conv2D(2, (4, 2), padding="same"),
        (6, 5, 2),
    ),
    "conv2d_dilated_groups": (
        {"type": "Conv2D", "filters": 4, "kernel_size": [2, 3], "dilation_rate": [2, 1], "groups": 2},
        lambda: L.Conv2D(4, (2, 3), dilation_rate=(2, 1), groups=2),
        (9, 8, 6),
    ),
    "conv3d_same": (
        {"type": "Conv3D", "filters": 4, "kernel_size": [3, 2, 1], "strides": [1, 2, 1], "padding": "same"},
        lambda: L.Conv3D(4, (3, 2, 1), strides=(1, 2, 1), padding="same"),
        (5, 6, 4, 2),
    ),
    "separable": (
        {"type": "SeparableConv2D", "filters": 4, "kernel_size": [3, 2], "depth_multiplier": 2, "strides": 2,
         "padding": "same", "activation": "sigmoid"},
        lambda: L.SeparableConv2D(4, (3, 2), depth_multiplier=2, strides=2, padding="same", activation="sigmoid"),
        (7, 8, 3),
    ),
    "depthwise": (
        {"type": "DepthwiseConv2D", "kernel_size": [2, 3], "depth_multiplier": 3, "padding": "same"},
        lambda: L.DepthwiseConv2D((2, 3), depth_multiplier=3, padding="same"),
        (6, 7, 2),
    ),
    "transpose_same": (
        {"type": "Conv2DTranspose", "filters": 4, "kernel_size": [3, 2], "strides": [2, 3], "padding": "same"},
        lambda: L.Conv2DTranspose(4, (3, 2), strides=(2, 3), padding="same"),
        (4, 5, 3),
    ),
    "transpose_valid_output_padding": (
        {"type": "Conv2DTranspose", "filters": 2, "kernel_size": [3, 4], "strides": 2, "output_padding": [1, 0]},
        lambda: L.Conv2DTranspose(2, (3, 4), strides=2, output_padding=(1, 0)),
        (3, 4, 2),
    ),
    "transpose_same_output_padding": (
        {"type": "Conv2DTranspose", "filters": 3, "kernel_size": [2, 3], "strides": [3, 2], "padding": "same",
         "output_padding": [2, 1], "activation": "relu"},
        lambda: L.Conv2DTranspose(3, (2, 3), strides=(3, 2), padding="same", output_padding=(2, 1),
                                  activation="relu"),
        (3, 4, 2),
    ),
    "transpose_dilated": (
        {"type": "Conv2DTranspose", "filters": 2, "kernel_size": [2, 3], "dilation_rate": [2, 1], "padding": "same"},
        lambda: L.Conv2DTranspose(2, (2, 3), dilation_rate=(2, 1), padding="same"),
        (4, 5, 3),
    ),
    "zero_padding": (
        {"type": "ZeroPadding2D", "padding": [[1, 2], [3, 0]]},
        lambda: L.ZeroPadding2D(((1, 2), (3, 0))),
        (4, 5, 2),
    ),
    "zero_padding_int": ({"type": "ZeroPadding2D", "padding": 2}, lambda: L.ZeroPadding2D(2), (3, 4, 2)),
    "up_sampling_nearest": (
        {"type": "UpSampling2D", "size": [2, 3]},
        lambda: L.UpSampling2D((2, 3)),
        (3, 4, 2),
    ),
    "up_sampling_bilinear": (
        {"type": "UpSampling2D", "size": [3, 2], "interpolation": "bilinear"},
        lambda: L.UpSampling2D((3, 2), interpolation="bilinear"),
        (3, 4, 2),
    ),
    "cropping": (
        {"type": "Cropping2D", "cropping": [[1, 0], [2, 1]]},
        lambda: L.Cropping2D(((1, 0), (2, 1))),
        (5, 6, 2),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_layer_matches_keras(case: str) -> None:
    ours_layer, make_keras, in_shape = CASES[case]
    model = build_ours([ours_layer], in_shape)
    k_layer = make_keras()
    k_model = keras.Sequential([keras.Input(in_shape), k_layer])
    row = model.info[-1]
    # (1) parameter counts
    assert row.trainable_params == sum(int(np.prod(w.shape)) for w in k_layer.trainable_weights)
    assert row.non_trainable_params == sum(int(np.prod(w.shape)) for w in k_layer.non_trainable_weights) == 0
    # (2) output shape
    assert (None, *row.output_shape) == tuple(k_model.output_shape)
    # Keras layout: the same weight names, shapes and order
    weights = our_weights(model)
    assert [(n, w.shape) for n, w in weights] == [(w.name, tuple(w.shape)) for w in k_layer.weights]
    # (3) forward on the same weights
    k_model.set_weights([w for _, w in weights])
    size = tuple(11 if d is None else d for d in in_shape)
    x = np.random.default_rng(1).normal(size=(3, *size)).astype(np.float32)
    ours_out, theirs = predict(model, x), keras_predict(k_model, x)
    assert ours_out.shape == theirs.shape
    np.testing.assert_allclose(ours_out, theirs, atol=1e-5, rtol=1e-5)


def test_weights_are_keras_layout_views_of_channels_last_torch_weights() -> None:
    """Kernels keep Keras's shape, and the torch weight is a copy-free channels_last view."""
    from trainctl.model.conv import torch_weight

    model = build_ours([{"type": "Conv2D", "filters": 5, "kernel_size": [3, 2]}], (6, 7, 4))
    kernel = model.layers[0].kernel
    assert isinstance(kernel, torch.nn.Parameter)
    assert tuple(kernel.shape) == (3, 2, 4, 5)
    view = torch_weight(kernel)
    assert tuple(view.shape) == (5, 4, 3, 2)
    assert view.is_contiguous(memory_format=torch.channels_last)
    assert view.data_ptr() == kernel.data_ptr()
    # the same element: torch (out, in, kh, kw) <-> Keras (kh, kw, in, out)
    assert view[4, 3, 2, 1] == kernel[2, 1, 3, 4]


def test_regularizers_match_keras_losses() -> None:
    layers: list[dict[str, Any]] = [
        {"type": "Conv2D", "filters": 3, "kernel_size": [2, 3], "kernel_regularizer": {"type": "L2", "l2": 0.1},
         "bias_initializer": "ones", "bias_regularizer": {"type": "L1", "l1": 0.2}},
        {"type": "SeparableConv2D", "filters": 2, "kernel_size": [2, 1],
         "pointwise_regularizer": {"type": "L1L2", "l1": 0.01, "l2": 0.03}},
        {"type": "DepthwiseConv2D", "kernel_size": [1, 2], "depthwise_regularizer": {"type": "L1", "l1": 0.05}},
    ]  # fmt: skip
    model = build_ours(layers, (5, 6, 2))
    k_model = keras.Sequential([
        keras.Input((5, 6, 2)),
        L.Conv2D(3, (2, 3), kernel_regularizer=keras.regularizers.L2(0.1),
                 bias_regularizer=keras.regularizers.L1(0.2)),
        L.SeparableConv2D(2, (2, 1), pointwise_regularizer=keras.regularizers.L1L2(0.01, 0.03)),
        L.DepthwiseConv2D((1, 2), depthwise_regularizer=keras.regularizers.L1(0.05)),
    ])  # fmt: skip
    k_model.set_weights([w for _, w in our_weights(model)])
    k_model(np.zeros((1, 5, 6, 2), np.float32))
    expected = sum(float(keras.ops.convert_to_numpy(v)) for v in k_model.losses)
    reg = model.regularization_loss()
    assert reg is not None
    assert float(reg.detach()) == pytest.approx(expected, rel=1e-5)


def test_gradients_match_keras() -> None:
    """One backward pass through uneven "same" padding and a transposed conv: the same kernel grads."""
    layers: list[dict[str, Any]] = [
        {"type": "Conv2D", "filters": 3, "kernel_size": [3, 2], "strides": 2, "padding": "same", "activation": "tanh"},
        {"type": "Conv2DTranspose", "filters": 2, "kernel_size": [2, 3], "strides": [2, 1], "padding": "same"},
    ]  # fmt: skip
    model = build_ours(layers, (5, 6, 2)).train()
    k_model = keras.Sequential([
        keras.Input((5, 6, 2)),
        L.Conv2D(3, (3, 2), strides=2, padding="same", activation="tanh"),
        L.Conv2DTranspose(2, (2, 3), strides=(2, 1), padding="same"),
    ])  # fmt: skip
    k_model.set_weights([w for _, w in our_weights(model)])
    x = np.random.default_rng(2).normal(size=(2, 5, 6, 2)).astype(np.float32)
    model(torch.from_numpy(x)).square().sum().backward()
    ours_grads = [p.grad.numpy() for _, ws in model.keras_weights() for _, p in ws if p.grad is not None]
    xt = torch.from_numpy(x)
    out = k_model(xt, training=True)
    grads = torch.autograd.grad(out.square().sum(), [v.value for v in k_model.trainable_weights])
    for mine, theirs in zip(ours_grads, grads, strict=True):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), atol=1e-4, rtol=1e-4)
