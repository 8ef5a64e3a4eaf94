"""Our artifacts against REAL Keras 3 (torch backend), in both directions.

Expectations come from Keras itself: ``model_from_json`` + ``load_weights``, ``load_model``,
``predict``, ``count_params`` and Keras's own ``to_json``/``save_weights``/``save`` output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
layers = keras.layers

from trainctl.config import load_config  # noqa: E402
from trainctl.model.sequential import Sequential, build_model  # noqa: E402
from trainctl.serialization import (  # noqa: E402
    load_model_from_dir,
    load_weights_h5,
    model_spec_from_json,
    model_to_json,
    save_keras_artifacts,
)

pytestmark = pytest.mark.keras

HEAD = "data: {source: synthetic, kind: random}\ncompile: {loss: mse}\nmodel:\n  layers:\n"

MODELS = {
    "dense_stack": """
    - {type: InputLayer, shape: [7]}
    - {type: Dense, units: 5, activation: relu}
    - {type: Dense, units: 3, activation: tanh, use_bias: false}
    - {type: Dense, units: 2, activation: softmax}
""",
    "input_shape_dropout_frozen": """
    - {type: Dense, units: 6, activation: sigmoid, input_shape: [5]}
    - {type: Dropout, rate: 0.5}
    - {type: Activation, activation: elu}
    - {type: Dense, units: 4, trainable: false, name: head}
    - {type: Activation, activation: softmax}
""",
    "flatten_reshape": """
    - {type: InputLayer, shape: [4, 3], name: pixels}
    - {type: Flatten}
    - {type: Dense, units: 5, activation: selu, kernel_regularizer: {type: L2, l2: 0.001},
       kernel_initializer: {type: HeNormal, seed: 3}}
    - {type: Reshape, target_shape: [5, 1]}
    - {type: Dense, units: 3, bias_regularizer: {type: L1L2, l1: 0.01, l2: 0.02}}
    - {type: Flatten}
    - {type: Dense, units: 2, name: logits}
""",
    "reshape_minus_one": """
    - {type: InputLayer, shape: [12]}
    - {type: Reshape, target_shape: [3, -1]}
    - {type: Dense, units: 2, activation: swish, bias_initializer: {type: Constant, value: 0.5}}
    - {type: Dropout, rate: 0.25, noise_shape: [null, 1, 2], seed: 7}
    - {type: Flatten}
    - {type: Dense, units: 3, activation: sigmoid,
       kernel_initializer: {type: RandomUniform, minval: -0.1, maxval: 0.2}}
""",
}


def _model(body: str, seed: int = 0) -> Sequential:
    spec = load_config(None, text=HEAD + body).config.model
    torch.manual_seed(seed)
    model = build_model(spec)
    with torch.no_grad():
        for p in model.parameters():  # biases too: zeros would hide a swapped or dropped bias
            p.normal_()
    return model.eval()


def _x(model: Sequential, n: int = 6) -> np.ndarray:
    shape = tuple(int(d) for d in model.input_shape)  # type: ignore[arg-type]
    return np.random.default_rng(1).normal(size=(n, *shape)).astype("float32")


def _ours(model: Sequential, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("key", list(MODELS))
def test_keras_loads_our_artifacts(key: str, tmp_path: Path) -> None:
    model = _model(MODELS[key])
    save_keras_artifacts(model, tmp_path)
    x = _x(model)
    want = _ours(model, x)
    total = sum(r.params for r in model.info)
    trainable = sum(r.trainable_params for r in model.info)

    km = keras.models.model_from_json((tmp_path / "model.json").read_text())
    km.load_weights(tmp_path / "model.weights.h5")
    assert [layer.name for layer in km.layers] == [r.name for r in model.info]
    assert np.abs(km.predict(x, verbose=0) - want).max() <= 1e-5
    assert km.count_params() == total
    assert sum(int(np.prod(w.shape)) for w in km.trainable_weights) == trainable

    loaded = keras.models.load_model(tmp_path / "model.h5")
    assert np.abs(loaded.predict(x, verbose=0) - want).max() <= 1e-5
    assert loaded.count_params() == total
    assert [layer.trainable for layer in loaded.layers] == [model.spec.layers[r.index].trainable for r in model.info]

    fresh = keras.models.model_from_json((tmp_path / "model.json").read_text())
    fresh.load_weights(tmp_path / "model.h5")  # the legacy file also serves load_weights
    assert np.abs(fresh.predict(x, verbose=0) - want).max() <= 1e-5


def _strip(obj: Any) -> Any:
    """Drop initializer options Keras 3.15 adds at None (we write the portable subset)."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not (k in ("input_axes", "output_axes") and v is None)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def test_json_matches_keras_to_json_key_for_key() -> None:
    model = _model(MODELS["flatten_reshape"])
    km = keras.Sequential(
        [
            keras.Input((4, 3), name="pixels"),
            layers.Flatten(name="flatten"),
            layers.Dense(5, activation="selu", name="dense", kernel_regularizer=keras.regularizers.L2(0.001),
                         kernel_initializer=keras.initializers.HeNormal(seed=3)),
            layers.Reshape((5, 1), name="reshape"),
            layers.Dense(3, name="dense_1", bias_regularizer=keras.regularizers.L1L2(0.01, 0.02)),
            layers.Flatten(name="flatten_1"),
            layers.Dense(2, name="logits"),
        ],
        name="sequential",
    )  # fmt: skip
    theirs = _strip(json.loads(km.to_json()))
    theirs.pop("compile_config")
    ours = json.loads(model_to_json(model))
    assert ours == theirs
    for mine, keras_layer in zip(ours["config"]["layers"], theirs["config"]["layers"], strict=True):
        assert list(mine["config"]) == list(keras_layer["config"])  # Keras's key order too


def _keras_models() -> dict[str, Any]:
    rng = np.random.default_rng(2)
    a = keras.Sequential(
        [
            keras.Input((4, 3)),
            layers.Flatten(),
            layers.Dense(6, activation="relu", name="hidden"),
            layers.Dropout(0.2),
            layers.Dense(5, use_bias=False, activation="tanh"),
            layers.Reshape((5, 1)),
            layers.Dense(2, activation="sigmoid", trainable=False),
            layers.Flatten(),
            layers.Activation("softmax"),
        ],
        name="imported",
    )
    b = keras.Sequential([keras.Input((7,)), layers.Dense(3, activation="softplus"), layers.Dense(4, use_bias=False)])
    b.compile(optimizer="adam", loss="mse")  # compile_config and optimizer vars must be ignored
    for m in (a, b):
        m.set_weights([rng.normal(size=w.shape).astype("float32") for w in m.get_weights()])
    return {"a": a, "b": b}


@pytest.fixture(scope="module")
def keras_models() -> dict[str, Any]:
    return _keras_models()


@pytest.mark.parametrize("key", ["a", "b"])
def test_import_keras_saved_model(key: str, keras_models: dict[str, Any], tmp_path: Path) -> None:
    km = keras_models[key]
    shape = tuple(km.inputs[0].shape[1:])
    x = np.random.default_rng(3).normal(size=(5, *shape)).astype("float32")
    want = km.predict(x, verbose=0)

    km.save_weights(tmp_path / "k.weights.h5")
    spec = model_spec_from_json(km.to_json())
    model = build_model(spec).eval()
    load_weights_h5(model, tmp_path / "k.weights.h5")
    assert [r.name for r in model.info] == [layer.name for layer in km.layers]
    assert sum(r.params for r in model.info) == km.count_params()
    assert [model.spec.layers[r.index].trainable for r in model.info] == [la.trainable for la in km.layers]
    assert np.abs(_ours(model, x) - want).max() <= 1e-5

    km.save(tmp_path / "k.h5")
    with h5py.File(tmp_path / "k.h5", "r") as f:
        config = f.attrs["model_config"]
    legacy = build_model(model_spec_from_json(config)).eval()
    load_weights_h5(legacy, tmp_path / "k.h5")
    assert np.abs(_ours(legacy, x) - want).max() <= 1e-5

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.json").write_text(km.to_json())
    km.save_weights(run / "model.weights.h5")
    assert np.abs(_ours(load_model_from_dir(run), x) - want).max() <= 1e-5


def test_training_config_makes_load_model_compile(tmp_path: Path) -> None:
    model = _model(MODELS["dense_stack"])
    config = {
        "loss": "mean_squared_error",
        "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.005}},
    }
    save_keras_artifacts(model, tmp_path, training_config=config)
    loaded = keras.models.load_model(tmp_path / "model.h5")
    assert loaded.compiled
    assert type(loaded.optimizer).__name__ == "Adam"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.005)


def test_tf_keras_loads_model_h5_and_weights(tmp_path: Path) -> None:
    tf_keras = pytest.importorskip("tf_keras")
    model = _model(MODELS["flatten_reshape"])
    save_keras_artifacts(model, tmp_path)
    x = _x(model)
    loaded = tf_keras.models.load_model(tmp_path / "model.h5")
    assert np.abs(loaded.predict(x, verbose=0) - _ours(model, x)).max() <= 1e-5
    loaded.load_weights(tmp_path / "model.weights.h5")
    assert np.abs(loaded.predict(x, verbose=0) - _ours(model, x)).max() <= 1e-5
