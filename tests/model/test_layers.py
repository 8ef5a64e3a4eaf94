"""Layer numerics: numpy for the arithmetic, real Keras (torch backend) for Keras semantics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from trainctl.config.schema import ModelSpec
from trainctl.model.activations import ACTIVATIONS
from trainctl.model.sequential import Sequential, build_model


def model_of(*layers: dict[str, Any], input_shape: list[int]) -> Sequential:
    torch.manual_seed(0)
    return build_model(ModelSpec.model_validate({"layers": [{"type": "InputLayer", "shape": input_shape}, *layers]}))


def np_of(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float64)


RNG = np.random.default_rng(0)


def test_dense_is_x_at_w_plus_b_then_activation() -> None:
    model = model_of({"type": "Dense", "units": 3, "activation": "relu", "bias_initializer": "ones"}, input_shape=[5])
    dense = model.layers[0]
    x = RNG.normal(size=(8, 5)).astype(np.float32)
    w, b = np_of(dense.kernel), np_of(dense.bias)
    assert w.shape == (5, 3)  # Keras layout (in, out)
    np.testing.assert_array_equal(b, np.ones(3))
    expected = np.maximum(x @ w + b, 0.0)
    np.testing.assert_allclose(np_of(model(torch.from_numpy(x))), expected, atol=1e-6)
    # rank 3: Dense acts on the last axis
    x3 = RNG.normal(size=(2, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(np_of(model(torch.from_numpy(x3))), np.maximum(x3 @ w + b, 0.0), atol=1e-6)


def test_dense_without_bias() -> None:
    model = model_of({"type": "Dense", "units": 2, "use_bias": False}, input_shape=[3])
    assert model.layers[0].bias is None
    assert [n for n, _ in model.named_parameters()] == ["layers.0.kernel"]
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(np_of(model(torch.from_numpy(x))), x @ np_of(model.layers[0].kernel), atol=1e-6)


@pytest.mark.keras
def test_dense_equals_keras_dense_with_the_same_weights() -> None:
    keras = pytest.importorskip("keras")
    model = model_of({"type": "Dense", "units": 3, "activation": "tanh"}, input_shape=[5])
    dense = model.layers[0]
    torch.nn.init.uniform_(dense.bias, -1, 1)
    layer = keras.layers.Dense(3, activation="tanh")
    layer.build((None, 5))
    layer.set_weights([np_of(dense.kernel), np_of(dense.bias)])  # no transpose: same layout
    x = RNG.normal(size=(6, 5)).astype(np.float32)
    np.testing.assert_allclose(np_of(model(torch.from_numpy(x))), keras.ops.convert_to_numpy(layer(x)), atol=1e-6)


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_equals_keras(name: str) -> None:
    keras = pytest.importorskip("keras")
    x = np.concatenate([np.linspace(-8, 8, 161), RNG.normal(scale=4, size=159)]).astype(np.float32).reshape(2, 160)
    theirs = keras.ops.convert_to_numpy(getattr(keras.activations, name)(keras.ops.convert_to_tensor(x)))
    ours = ACTIVATIONS[name](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_keras_activation_semantics_by_hand() -> None:
    """Values Keras 3 documents, where torch's defaults differ."""
    x = torch.tensor([-10.0, -1.0, 0.0, 1.0, 10.0])
    np.testing.assert_allclose(ACTIVATIONS["leaky_relu"](x).numpy(), [-2.0, -0.2, 0.0, 1.0, 10.0])  # slope 0.2
    np.testing.assert_allclose(ACTIVATIONS["hard_sigmoid"](x).numpy(), [0.0, 1 / 3, 0.5, 2 / 3, 1.0], atol=1e-7)
    np.testing.assert_allclose(ACTIVATIONS["relu6"](x).numpy(), [0.0, 0.0, 0.0, 1.0, 6.0])
    np.testing.assert_allclose(ACTIVATIONS["linear"](x).numpy(), x.numpy())
    s = ACTIVATIONS["softmax"](torch.tensor([[1.0, 2.0, 3.0]])).numpy()
    np.testing.assert_allclose(s, np.exp([[1, 2, 3]]) / np.exp([1, 2, 3]).sum(), rtol=1e-6)


def test_dropout_eval_is_identity_and_train_scales_kept_units() -> None:
    rate = 0.25
    model = model_of({"type": "Dropout", "rate": rate}, input_shape=[1000])
    x = torch.rand(20, 1000) + 1.0  # no zeros in the input, so zeros in the output are drops
    model.eval()
    assert torch.equal(model(x), x)
    model.train()
    y = model(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1 - rate))
    assert float(kept.float().mean()) == pytest.approx(1 - rate, abs=0.01)  # 20k draws: sd 0.003


def test_dropout_noise_shape_shares_the_mask() -> None:
    model = model_of({"type": "Dropout", "rate": 0.5, "noise_shape": [None, 1, 4]}, input_shape=[6, 4])
    model.train()
    y = model(torch.ones(50, 6, 4))
    mask = y != 0
    assert torch.equal(mask, mask[:, :1, :].expand_as(mask))  # same along the size-1 axis
    assert set(torch.unique(y).tolist()) <= {0.0, 2.0}


def test_flatten_and_reshape_equal_numpy() -> None:
    x = RNG.normal(size=(5, 4, 3)).astype(np.float32)
    flat = model_of({"type": "Flatten"}, input_shape=[4, 3])
    np.testing.assert_array_equal(flat(torch.from_numpy(x)).numpy(), x.reshape(5, 12))
    reshape = model_of({"type": "Reshape", "target_shape": [-1, 2]}, input_shape=[4, 3])
    np.testing.assert_array_equal(reshape(torch.from_numpy(x)).numpy(), x.reshape(5, 6, 2))


@pytest.mark.keras
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_flatten_element_order_equals_keras(data_format: str) -> None:
    keras = pytest.importorskip("keras")
    x = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    ours = model_of({"type": "Flatten", "data_format": data_format}, input_shape=[3, 4, 5])
    theirs = keras.layers.Flatten(data_format=data_format)(x)
    np.testing.assert_array_equal(ours(torch.from_numpy(x)).numpy(), keras.ops.convert_to_numpy(theirs))


# ---------------------------------------------------------------------------------------------
# forward_pre / activate / final_activation (losses fuse the last activation with their log)


@pytest.mark.parametrize(
    ("last", "final"),
    [
        ({"type": "Dense", "units": 4, "activation": "softmax"}, "softmax"),
        ({"type": "Dense", "units": 1, "activation": "sigmoid"}, "sigmoid"),
        ({"type": "Activation", "activation": "log_softmax"}, "log_softmax"),
        ({"type": "Dense", "units": 4}, "linear"),
        ({"type": "Dropout", "rate": 0.3}, "linear"),
    ],
)
def test_forward_pre_and_activate_compose_to_forward(last: dict[str, Any], final: str) -> None:
    model = model_of({"type": "Dense", "units": 4, "activation": "relu"}, last, input_shape=[3]).eval()
    assert model.final_activation == final
    x = torch.randn(7, 3)
    pre = model.forward_pre(x)
    torch.testing.assert_close(model.activate(pre), model(x))
    hidden = model.layers[0](x)
    if last["type"] == "Dense":  # the pre-activation of a Dense is its affine map
        torch.testing.assert_close(pre, hidden @ model.layers[1].kernel + model.layers[1].bias)
    else:
        torch.testing.assert_close(pre, hidden)


def test_frozen_layers_get_no_gradient() -> None:
    model = model_of({"type": "Dense", "units": 4, "trainable": False}, {"type": "Dense", "units": 2}, input_shape=[3])
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert all(p.requires_grad for p in model.layers[1].parameters())
    model(torch.randn(5, 3)).sum().backward()
    assert model.layers[0].kernel.grad is None
    assert model.layers[1].kernel.grad is not None


@pytest.mark.keras
def test_regularization_equals_keras_regularizers() -> None:
    keras = pytest.importorskip("keras")
    model = model_of(
        {"type": "Dense", "units": 3, "kernel_regularizer": {"type": "L1L2", "l1": 0.01, "l2": 0.02},
         "bias_regularizer": {"type": "L2", "l2": 0.5}, "bias_initializer": "ones"},
        {"type": "Dense", "units": 2, "kernel_regularizer": "l1"},
        input_shape=[4],
    )  # fmt: skip
    first, second = model.layers
    expected = (
        keras.regularizers.L1L2(l1=0.01, l2=0.02)(np_of(first.kernel).astype(np.float32))
        + keras.regularizers.L2(0.5)(np_of(first.bias).astype(np.float32))
        + keras.regularizers.L1()(np_of(second.kernel).astype(np.float32))
    )
    total = model.regularization_loss()
    assert total is not None
    assert float(total.detach()) == pytest.approx(float(keras.ops.convert_to_numpy(expected)), rel=1e-5)
    assert model_of({"type": "Dense", "units": 2}, input_shape=[3]).regularization_loss() is None


def test_keras_weights_are_in_keras_order_and_layout() -> None:
    model = model_of({"type": "Dense", "units": 3}, {"type": "Dropout", "rate": 0.1}, {"type": "Dense", "units": 2},
                     input_shape=[5])  # fmt: skip
    got = [(row.name, [(n, tuple(t.shape)) for n, t in weights]) for row, weights in model.keras_weights()]
    assert got == [
        ("dense", [("kernel", (5, 3)), ("bias", (3,))]),
        ("dropout", []),
        ("dense_1", [("kernel", (3, 2)), ("bias", (2,))]),
    ]
