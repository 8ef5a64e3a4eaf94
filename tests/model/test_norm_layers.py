"""Norm-family layers (pooling, global pooling, BatchNormalization, LayerNormalization,
SpatialDropout, RepeatVector, Permute) against REAL Keras 3 (torch backend).

Every case builds the same small model twice, in trainctl from YAML and in Keras from Python
calls, then checks param counts, output shapes, outputs on the same weights, and the artifacts
both ways. Shapes are non-square throughout, so a transposed weight or axis cannot pass.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
L = keras.layers

from tests.clihelp import Cli, write  # noqa: E402
from trainctl.config import load_config  # noqa: E402
from trainctl.model.sequential import Sequential, build_model  # noqa: E402
from trainctl.model.shapes import infer  # noqa: E402
from trainctl.reporting.summary import summary_text  # noqa: E402
from trainctl.serialization import (  # noqa: E402
    load_weights_h5,
    model_spec_from_json,
    model_to_json,
    save_keras_artifacts,
)

pytestmark = pytest.mark.keras
# Keras calls gc.collect() when a layer drops a variable (keras/src/layers/layer.py __delattr__);
# with torch and Keras loaded each call walks ~1e6 objects. Freezing them keeps the file fast.
gc.freeze()

HEAD = "data: {source: synthetic, kind: random}\ncompile: {loss: mse}\nmodel:\n  layers:\n"

# name -> (our YAML layers, the same model as Keras layers). Average pooling with "same" padding is
# kept to symmetric padding here: for asymmetric padding Keras's torch backend counts replicated
# edge values (TensorFlow and JAX do not); test_norm_numerics checks that case by hand.
CASES: dict[str, tuple[str, Callable[[], list[Any]]]] = {
    "pool2d": (
        """
    - {type: InputLayer, shape: [7, 5, 3]}
    - {type: MaxPooling2D, pool_size: [2, 3], strides: [1, 2], padding: same}
    - {type: AveragePooling2D, pool_size: [3, 1], padding: same, strides: [2, 1]}
    - {type: AveragePooling2D, pool_size: [2, 1]}
    - {type: GlobalMaxPooling2D, keepdims: true}
    - {type: Flatten}
    - {type: Dense, units: 2}
""",
        lambda: [
            keras.Input((7, 5, 3)),
            L.MaxPooling2D((2, 3), strides=(1, 2), padding="same"),
            L.AveragePooling2D((3, 1), padding="same", strides=(2, 1)),
            L.AveragePooling2D((2, 1)),
            L.GlobalMaxPooling2D(keepdims=True),
            L.Flatten(),
            L.Dense(2),
        ],
    ),
    "pool1d": (
        """
    - {type: InputLayer, shape: [9, 4]}
    - {type: MaxPooling1D, pool_size: 3, strides: 2}
    - {type: AveragePooling1D, pool_size: 3, strides: 1, padding: same}
    - {type: MaxPooling1D, padding: same}
    - {type: GlobalAveragePooling1D}
""",
        lambda: [
            keras.Input((9, 4)),
            L.MaxPooling1D(3, strides=2),
            L.AveragePooling1D(3, strides=1, padding="same"),
            L.MaxPooling1D(padding="same"),
            L.GlobalAveragePooling1D(),
        ],
    ),
    "pool3d_channels_first": (
        """
    - {type: InputLayer, shape: [5, 6, 4, 2]}
    - {type: MaxPooling3D, pool_size: [2, 3, 2], strides: [2, 2, 1], padding: same}
    - {type: AveragePooling3D, pool_size: [1, 2, 2]}
    - {type: Reshape, target_shape: [2, 2, 3]}
    - {type: MaxPooling2D, pool_size: [2, 1], data_format: channels_first}
    - {type: AveragePooling2D, pool_size: [1, 3], strides: 1, padding: same, data_format: channels_first}
    - {type: SpatialDropout2D, rate: 0.3, data_format: channels_first}
    - {type: GlobalAveragePooling2D, data_format: channels_first, keepdims: true}
    - {type: Reshape, target_shape: [2, 1]}
    - {type: GlobalMaxPooling1D, data_format: channels_first}
""",
        lambda: [
            keras.Input((5, 6, 4, 2)),
            L.MaxPooling3D((2, 3, 2), strides=(2, 2, 1), padding="same"),
            L.AveragePooling3D((1, 2, 2)),
            L.Reshape((2, 2, 3)),
            L.MaxPooling2D((2, 1), data_format="channels_first"),
            L.AveragePooling2D((1, 3), strides=1, padding="same", data_format="channels_first"),
            L.SpatialDropout2D(0.3, data_format="channels_first"),
            L.GlobalAveragePooling2D(data_format="channels_first", keepdims=True),
            L.Reshape((2, 1)),
            L.GlobalMaxPooling1D(data_format="channels_first"),
        ],
    ),
    "batchnorm": (
        """
    - {type: InputLayer, shape: [6, 4, 3]}
    - {type: BatchNormalization}
    - {type: BatchNormalization, axis: 1, center: false, momentum: 0.9, epsilon: 0.01}
    - {type: BatchNormalization, axis: -2, scale: false, trainable: false}
    - {type: Flatten}
    - {type: Dense, units: 5}
    - {type: BatchNormalization, gamma_initializer: {type: Constant, value: 0.5}}
""",
        lambda: [
            keras.Input((6, 4, 3)),
            L.BatchNormalization(),
            L.BatchNormalization(axis=1, center=False, momentum=0.9, epsilon=0.01),
            L.BatchNormalization(axis=-2, scale=False, trainable=False),
            L.Flatten(),
            L.Dense(5),
            L.BatchNormalization(gamma_initializer=keras.initializers.Constant(0.5)),
        ],
    ),
    "layernorm_and_sequences": (
        """
    - {type: InputLayer, shape: [6]}
    - {type: RepeatVector, n: 4}
    - {type: SpatialDropout1D, rate: 0.3}
    - {type: Permute, dims: [2, 1]}
    - {type: LayerNormalization}
    - {type: LayerNormalization, axis: -1, scale: false, epsilon: 0.1}
    - {type: Reshape, target_shape: [2, 3, 4]}
    - {type: Permute, dims: [3, 1, 2]}
    - {type: SpatialDropout2D, rate: 0.2}
    - {type: GlobalAveragePooling2D}
""",
        lambda: [
            keras.Input((6,)),
            L.RepeatVector(4),
            L.SpatialDropout1D(0.3),
            L.Permute((2, 1)),
            L.LayerNormalization(),
            L.LayerNormalization(axis=-1, scale=False, epsilon=0.1),
            L.Reshape((2, 3, 4)),
            L.Permute((3, 1, 2)),
            L.SpatialDropout2D(0.2),
            L.GlobalAveragePooling2D(),
        ],
    ),
    # Keras's own legacy .h5 reader drops a multi-axis `axis` list (keras/src/legacy/saving/
    # saving_utils.py), so Keras cannot load_model such a model.h5, not even one it saved itself
    "layernorm_axes": (
        """
    - {type: InputLayer, shape: [5, 4, 3]}
    - {type: LayerNormalization, axis: [1, 3], center: false}
    - {type: LayerNormalization, axis: [-2, -1]}
""",
        lambda: [
            keras.Input((5, 4, 3)),
            L.LayerNormalization(axis=[1, 3], center=False),
            L.LayerNormalization(axis=[-2, -1]),
        ],
    ),
}
NO_LOAD_MODEL = {"layernorm_axes"}


def random_model(layers_yaml: str) -> Sequential:
    """Our model of these YAML layers with every weight and floating statistic random (variances
    positive): defaults would hide swapped weights. Shared with test_preprocess_layers.py."""
    torch.manual_seed(0)
    model = build_model(load_config(None, text=HEAD + layers_yaml).config.model)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
        for name, b in model.named_buffers():
            if name.endswith("variance"):
                b.uniform_(0.5, 2.0)
            elif b.is_floating_point():
                b.normal_()
    return model.eval()


def keras_sequential(make_layers: Callable[[], list[Any]]) -> Any:
    """The same model in Keras, its layers made after the names restart, as in a fresh session
    (no slow gc)."""
    keras.backend.clear_session(free_memory=False)
    return keras.Sequential(make_layers(), name="sequential")


def ours(key: str) -> Sequential:
    return random_model(CASES[key][0])


def theirs(key: str) -> Any:
    return keras_sequential(CASES[key][1])


def x_for(model: Sequential, n: int = 5, seed: int = 1) -> np.ndarray:
    shape = tuple(int(d) for d in model.input_shape)  # type: ignore[arg-type]
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def run(model: Sequential, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def infer_keras(km: Any, x: np.ndarray) -> np.ndarray:
    """Keras's inference-mode output (what ``predict`` returns, without its data pipeline)."""
    return keras.ops.convert_to_numpy(km(x, training=False))


def weights_of(model: Sequential) -> list[list[tuple[str, np.ndarray]]]:
    return [[(n, t.detach().numpy().copy()) for n, t in w] for _, w in model.keras_weights()]


def strip(obj: Any) -> Any:
    """Drop the initializer options Keras 3.15 adds at None (trainctl writes the portable subset)."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if not (k in ("input_axes", "output_axes") and v is None)}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def size(weights: list[Any]) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.parametrize("key", list(CASES))
def test_counts_shapes_and_outputs_equal_keras(key: str) -> None:
    model, km = ours(key), theirs(key)
    assert [r.name for r in model.info] == [layer.name for layer in km.layers]
    for row, layer, mine in zip(model.info, km.layers, weights_of(model), strict=True):
        assert (row.trainable_params, row.non_trainable_params) == (
            size(layer.trainable_weights),
            size(layer.non_trainable_weights),
        ), row.name
        assert (None, *row.output_shape) == tuple(layer.output.shape), row.name
        # Keras's own variable order and names (gamma, beta, moving_mean, moving_variance)
        assert [n for n, _ in mine] == [w.path.rsplit("/", 1)[-1] for w in layer.weights], row.name
        layer.set_weights([w for _, w in mine])
    x = x_for(model)
    np.testing.assert_allclose(run(model, x), infer_keras(km, x), atol=1e-5)


@pytest.mark.parametrize("key", list(CASES))
def test_keras_loads_our_artifacts(key: str, tmp_path: Path) -> None:
    model = ours(key)
    save_keras_artifacts(model, tmp_path)
    x = x_for(model)
    want = run(model, x)
    km = keras.models.model_from_json((tmp_path / "model.json").read_text())
    km.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_allclose(infer_keras(km, x), want, atol=1e-5)
    assert km.count_params() == sum(r.params for r in model.info)
    if key not in NO_LOAD_MODEL:
        loaded = keras.models.load_model(tmp_path / "model.h5")
        np.testing.assert_allclose(infer_keras(loaded, x), want, atol=1e-5)
        assert size(loaded.non_trainable_weights) == sum(r.non_trainable_params for r in model.info)


@pytest.mark.parametrize("key", list(CASES))
def test_keras_model_imports_and_json_round_trips(key: str, tmp_path: Path) -> None:
    km = theirs(key)
    rng = np.random.default_rng(4)
    for w in km.weights:  # variances positive, the rest small so outputs stay near 1
        value = rng.uniform(0.5, 2.0, w.shape) if w.path.endswith("variance") else rng.normal(0, 0.3, w.shape)
        w.assign(value.astype("float32"))
    km.save_weights(tmp_path / "k.weights.h5")
    keras_json = json.loads(km.to_json())
    spec = model_spec_from_json(km.to_json())
    model = build_model(spec).eval()
    load_weights_h5(model, tmp_path / "k.weights.h5")
    x = x_for(model)
    np.testing.assert_allclose(run(model, x), infer_keras(km, x), atol=1e-5)
    # what we write back is what Keras wrote, value for value and in Keras's key order
    keras_json.pop("compile_config")
    keras_json = strip(keras_json)
    mine = json.loads(model_to_json(model))
    assert mine == keras_json
    for a, b in zip(mine["config"]["layers"], keras_json["config"]["layers"], strict=True):
        assert list(a["config"]) == list(b["config"])


def test_batchnorm_training_update_equals_keras() -> None:
    """One and two training batches: batch statistics for the output, Keras's momentum update of
    the moving stats with the biased variance; the frozen BN (trainable: false) stays in
    inference mode and keeps its stats, as in Keras 3."""
    model, km = ours("batchnorm"), theirs("batchnorm")
    for layer, mine in zip(km.layers, weights_of(model), strict=True):
        layer.set_weights([w for _, w in mine])
    model.train()
    for seed in (2, 3):
        x = x_for(model, n=7, seed=seed) * 3.0 + 1.0
        out = model(torch.from_numpy(x)).detach().numpy()
        want = keras.ops.convert_to_numpy(km(x, training=True))
        np.testing.assert_allclose(out, want, atol=2e-5)
        for layer, mine in zip(km.layers, weights_of(model), strict=True):
            for (name, ours_w), their_w in zip(mine, layer.get_weights(), strict=True):
                np.testing.assert_allclose(ours_w, their_w, rtol=1e-6, atol=1e-6, err_msg=f"{layer.name}/{name}")
    frozen = model.layers[2]
    assert not any(p.requires_grad for p in frozen.parameters())


def test_summary_equals_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    spec = load_config(None, text=HEAD + CASES["batchnorm"][0]).config.model
    lines: list[str] = []
    theirs("batchnorm").summary(line_length=76, print_fn=lambda text, **_: lines.append(text))
    _, rows = infer(list(spec.layers))
    text = summary_text(spec.name, rows)
    assert text.rstrip("\n") == "\n".join(lines).rstrip("\n")
    # by hand: moving stats 2*3 + 2*6 + 2*4 + 2*5, plus the frozen BN's beta (4) = 40 non-trainable;
    # trainable 2*3 + 6 (gamma only) + 72*5+5 + 2*5 = 387
    assert " Non-trainable params: 40 (160.00 B)" in text
    assert " Trainable params: 387 (1.51 KB)" in text


def test_wrong_rank_is_a_config_error_naming_the_layer(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "    - {type: Dense, units: 12, input_shape: [5]}\n    - {type: MaxPooling2D}\n")
    res = Cli(tmp_path / "runs")("config", "validate", path)
    assert res.exit_code == 2
    text = res.output + res.stderr
    assert "model.layers[1]" in text
    assert "rank 4 (batch, rows, cols, channels)" in text
    assert "(None, 12)" in text
