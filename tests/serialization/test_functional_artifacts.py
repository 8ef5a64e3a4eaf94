"""Functional models as Keras artifacts, both ways: what trainctl writes loads in real Keras 3
(model.json + model.weights.h5, model.h5, json + legacy weights) and predicts the same; what
Keras writes (to_json) reads back into the same trainctl model. Native weights follow Keras's
``model.layers`` order (depth, then DFS), InputLayers included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from tests.model.graphhelp import build_keras, build_ours, copy_weights, inputs_for, predict_keras, predict_ours
from tests.model.test_graph import MODELS, TWO_IN_TWO_OUT
from trainctl.errors import ArtifactError
from trainctl.serialization import load_model_from_dir, load_weights_h5, model_spec_from_json, save_keras_artifacts

pytestmark = pytest.mark.keras


@pytest.mark.parametrize("case", list(MODELS))
def test_keras_loads_what_we_write_and_predicts_the_same(case: str, keras: Any, tmp_path: Path) -> None:
    cfg = MODELS[case]
    ours = build_ours(cfg)
    save_keras_artifacts(ours, tmp_path)
    xs = inputs_for(cfg)
    want = predict_ours(ours, xs)
    from_json = keras.models.model_from_json((tmp_path / "model.json").read_text())
    from_json.load_weights(tmp_path / "model.weights.h5")
    legacy = keras.models.model_from_json((tmp_path / "model.json").read_text())
    legacy.load_weights(tmp_path / "model.h5")
    whole = keras.models.load_model(tmp_path / "model.h5", compile=False)
    for model in (from_json, legacy, whole):
        assert model.count_params() == sum(r.params for r in ours.info)
        for a, b in zip(want, predict_keras(keras, model, xs), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)
    # and back into trainctl
    back = load_model_from_dir(tmp_path)
    for a, b in zip(want, predict_ours(back, xs), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_model_json_is_keras_functional_schema(tmp_path: Path) -> None:
    save_keras_artifacts(build_ours(TWO_IN_TWO_OUT), tmp_path)
    obj = json.loads((tmp_path / "model.json").read_text())
    assert (obj["module"], obj["class_name"], obj["registered_name"]) == (
        "keras.src.models.functional", "Functional", "Functional",
    )  # fmt: skip
    cfg = obj["config"]
    assert list(cfg) == ["name", "trainable", "layers", "input_layers", "output_layers"]
    assert cfg["input_layers"] == [["features", 0, 0], ["tokens", 0, 0]]
    assert cfg["output_layers"] == [["cls", 0, 0], ["reg", 0, 0]]
    # Keras's order: tokens is deeper than features (keras-functional §1.5)
    assert [e["name"] for e in cfg["layers"]] == ["tokens", "emb", "features", "pool", "merge", "trunk", "cls", "reg"]
    tokens = cfg["layers"][0]
    assert tokens["config"]["dtype"] == "int32" and tokens["inbound_nodes"] == []
    merge = cfg["layers"][4]
    (node,) = merge["inbound_nodes"]
    assert [t["config"]["keras_history"] for t in node["args"][0]] == [["features", 0, 0], ["pool", 0, 0]]
    assert merge["build_config"] == {"input_shape": [[None, 6], [None, 4]]}


def test_native_weight_keys_follow_keras_order(tmp_path: Path, keras: Any) -> None:
    ours = build_ours(TWO_IN_TWO_OUT)
    save_keras_artifacts(ours, tmp_path)
    theirs = build_keras(keras, TWO_IN_TWO_OUT)
    theirs.save_weights(tmp_path / "keras.weights.h5")

    def datasets(path: Path) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}
        with h5py.File(path) as f:
            f.visititems(lambda n, o: out.__setitem__(n, o.shape) if isinstance(o, h5py.Dataset) else None)
        return out

    assert datasets(tmp_path / "model.weights.h5") == datasets(tmp_path / "keras.weights.h5")
    with h5py.File(tmp_path / "model.h5") as f:
        names = [n.decode() for n in f["model_weights"].attrs["layer_names"]]
    assert names == [layer.name for layer in theirs.layers]


@pytest.mark.parametrize("case", ["residual", "two_in_two_out", "shared", "dot_pair"])
def test_keras_json_reads_back_to_the_same_model(case: str, keras: Any, tmp_path: Path) -> None:
    cfg = MODELS[case]
    ours = build_ours(cfg)
    theirs = build_keras(keras, cfg)
    copy_weights(ours, theirs)
    theirs.save_weights(tmp_path / "k.weights.h5")
    from trainctl.model.sequential import build_model

    spec = model_spec_from_json(theirs.to_json())
    assert spec.is_graph and spec.name == cfg["name"]
    model = build_model(spec).eval()
    load_weights_h5(model, tmp_path / "k.weights.h5")
    xs = inputs_for(cfg)
    for a, b in zip(predict_keras(keras, theirs, xs), predict_ours(model, xs), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_shuffled_layers_and_keras2_nodes_read_the_same(tmp_path: Path) -> None:
    ours = build_ours(MODELS["shared"])
    save_keras_artifacts(ours, tmp_path)
    obj = json.loads((tmp_path / "model.json").read_text())
    layers = obj["config"]["layers"]
    for entry in layers:  # Keras 2 node form: [[name, node, tensor, kwargs], ...]
        entry["inbound_nodes"] = [
            [
                [*t["config"]["keras_history"], {}]
                for t in (n["args"][0] if isinstance(n["args"][0], list) else n["args"])
            ]
            for n in entry["inbound_nodes"]
        ]
    obj["config"]["layers"] = layers[::-1]
    spec = model_spec_from_json(json.dumps(obj))
    assert [getattr(e, "call", None) for e in spec.layers] == [None, "encode", None]
    xs = inputs_for(MODELS["shared"])
    from trainctl.model.sequential import build_model

    model = build_model(spec).eval()
    load_weights_h5(model, tmp_path / "model.weights.h5")
    np.testing.assert_allclose(predict_ours(model, xs)[0], predict_ours(ours, xs)[0], atol=1e-6)


def test_bad_functional_json_names_the_problem() -> None:
    layers = [
        {
            "class_name": "InputLayer",
            "name": "a",
            "config": {"batch_shape": [None, 3], "name": "a"},
            "inbound_nodes": [],
        },
        {
            "class_name": "Dense",
            "name": "d",
            "config": {"name": "d", "units": 2},
            "inbound_nodes": [[["nope", 0, 0, {}]]],
        },
    ]
    config = {"name": "m", "layers": layers, "input_layers": [["a", 0, 0]], "output_layers": [["d", 0, 0]]}
    obj = {"class_name": "Functional", "config": config}
    with pytest.raises(ArtifactError, match="unknown layers nope"):
        model_spec_from_json(json.dumps(obj))


def test_int32_sequential_input_is_kept_both_ways(keras: Any, tmp_path: Path) -> None:
    layers = [
        {"type": "InputLayer", "shape": [12], "dtype": "int32", "name": "tokens"},
        {"type": "Embedding", "input_dim": 50, "output_dim": 8},
        {"type": "GlobalAveragePooling1D"},
        {"type": "Dense", "units": 2, "activation": "softmax"},
    ]
    cfg = {"layers": layers}
    ours = build_ours(cfg)
    save_keras_artifacts(ours, tmp_path)
    theirs = keras.models.model_from_json((tmp_path / "model.json").read_text())
    theirs.load_weights(tmp_path / "model.weights.h5")
    assert theirs.inputs[0].dtype == "int32"
    x = np.random.default_rng(0).integers(0, 50, size=(4, 12)).astype("int32")
    import torch

    with torch.no_grad():
        want = ours(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(theirs(x)), want, atol=1e-5)
    spec = model_spec_from_json(theirs.to_json())
    assert spec.layers[0].dtype == "int32" and not spec.is_graph


@pytest.mark.parametrize("case", ["residual", "two_in_two_out", "shared"])
@pytest.mark.parametrize("form", ["json+weights", "h5"])
def test_our_artifacts_import_back_and_predict_the_same(case: str, form: str, keras: Any, tmp_path: Path) -> None:
    from trainctl.importer import import_keras

    cfg = MODELS[case]
    ours = build_ours(cfg)
    save_keras_artifacts(ours, tmp_path / "a")
    files = (
        [tmp_path / "a" / "model.json", tmp_path / "a" / "model.weights.h5"]
        if form == "json+weights"
        else [tmp_path / "a" / "model.h5"]
    )
    import_keras(files, tmp_path / "run")
    back = load_model_from_dir(tmp_path / "run")
    theirs = keras.models.load_model(tmp_path / "run" / "model.h5", compile=False)
    xs = inputs_for(cfg)
    want = predict_ours(ours, xs)
    for got in (predict_ours(back, xs), predict_keras(keras, theirs, xs)):
        for a, b in zip(want, got, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)
