"""``trainctl import`` of Keras-made Functional models (and int32 token inputs), from the three
file forms Keras writes: ``.keras``, legacy ``.h5`` and ``to_json`` + ``save_weights``. The
expectation is always Keras's own prediction on the same input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from trainctl.importer import import_keras
from trainctl.serialization import load_model_from_dir

pytestmark = pytest.mark.keras


def residual(keras: Any) -> Any:
    L = keras.layers  # noqa: N806
    image = keras.Input((10, 10, 1), name="image")
    stem = L.Conv2D(4, 3, padding="same", activation="relu", name="stem")(image)
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="block_conv1")(stem)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Conv2D(4, 3, padding="same", name="block_conv2")(x)
    x = L.Activation("relu", name="block_relu")(L.Add(name="block_add")([stem, x]))
    out = L.Dense(3, activation="softmax", name="probs")(L.GlobalAveragePooling2D(name="gap")(x))
    model = keras.Model(image, out, name="func_residual")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def two_in_two_out(keras: Any) -> Any:
    L = keras.layers  # noqa: N806
    features = keras.Input((8,), name="features")
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    pooled = L.GlobalAveragePooling1D(name="tok_pool")(L.Embedding(30, 4, name="tok_embed")(tokens))
    x = L.Dense(16, activation="relu", name="trunk1")(L.Concatenate(name="merge")([features, pooled]))
    x = L.Dense(8, activation="relu", name="trunk2")(x)
    cls = L.Dense(3, activation="softmax", name="cls")(x)
    reg = L.Dense(1, name="reg")(x)
    model = keras.Model([features, tokens], [cls, reg], name="func_two_in_two_out")
    model.compile(
        optimizer="adam",
        loss={"cls": "sparse_categorical_crossentropy", "reg": "mean_squared_error"},
        loss_weights={"cls": 1.0, "reg": 0.5},
        metrics={"cls": ["accuracy"], "reg": ["mae"]},
    )
    return model


def shared(keras: Any) -> Any:
    L = keras.layers  # noqa: N806
    left, right = keras.Input((6,), name="left"), keras.Input((6,), name="right")
    enc = L.Dense(4, activation="tanh", name="shared")
    model = keras.Model([left, right], L.Subtract(name="diff")([enc(left), enc(right)]), name="func_shared")
    model.compile(optimizer="adam", loss="mean_squared_error", metrics=["mae"])
    return model


def seq_int_embed(keras: Any) -> Any:
    L = keras.layers  # noqa: N806
    return keras.Sequential(
        [keras.Input((12,), dtype="int32", name="tokens"), L.Embedding(50, 8), L.LSTM(6),
         L.Dense(2, activation="softmax", name="probs")],
        name="seq_int_embed",
    )  # fmt: skip


MAKERS = {"residual": residual, "two_in_two_out": two_in_two_out, "shared": shared, "seq_int_embed": seq_int_embed}


def _inputs(model: Any) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    out = []
    for t in model.inputs:
        shape = (4, *t.shape[1:])
        out.append(
            rng.integers(0, 30, shape).astype("int32")
            if "int" in str(t.dtype)
            else rng.normal(size=shape).astype("float32")
        )
    return out


@pytest.mark.parametrize("form", ["keras", "h5", "json+weights"])
@pytest.mark.parametrize("case", list(MAKERS))
def test_functional_import_predicts_like_keras(case: str, form: str, keras: Any, tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    model = MAKERS[case](keras)
    rng = np.random.default_rng(1234)  # move every weight, so biases and BN statistics are not trivial
    for v in model.weights:
        value = keras.ops.convert_to_numpy(v)
        noise = 0.2 * rng.normal(size=value.shape)
        v.assign((np.abs(value + noise) if "variance" in v.path else value + noise).astype(value.dtype))
    xs = _inputs(model)
    want = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    want = want if isinstance(want, list) else [want]
    if form == "keras":
        model.save(tmp_path / "m.keras")
        files = [tmp_path / "m.keras"]
    elif form == "h5":
        model.save(tmp_path / "m.h5")
        files = [tmp_path / "m.h5"]
    else:
        (tmp_path / "m.json").write_text(model.to_json())
        model.save_weights(tmp_path / "m.weights.h5")
        files = [tmp_path / "m.json", tmp_path / "m.weights.h5"]
    result = import_keras(files, tmp_path / "run")  # no --loss: predict needs none
    assert (result.config.compile.loss is None) == (not model.compiled)
    if case == "two_in_two_out" and form != "json+weights":  # the compile settings came along
        comp = result.config.compile
        assert {k: v.type for k, v in comp.loss.items()} == {
            "cls": "sparse_categorical_crossentropy", "reg": "mean_squared_error",
        }  # fmt: skip
        assert comp.loss_weights == {"cls": 1.0, "reg": 0.5}
    ours = load_model_from_dir(tmp_path / "run")
    assert sum(r.params for r in ours.info) == model.count_params()
    with torch.no_grad():
        ts = tuple(torch.from_numpy(x) for x in xs)
        got = ours(ts if len(ts) > 1 else ts[0])
    got = list(got) if isinstance(got, tuple) else [got]
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(b.numpy(), a, atol=1e-5)
