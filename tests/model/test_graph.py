"""Functional models: wiring checks at validate time, and the same forward as real Keras 3.

Each case builds one config in trainctl and in Keras (tests/model/graphhelp.py), copies our weights
into Keras, and compares parameter counts, output shapes and outputs.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests.model.graphhelp import build_keras, build_ours, copy_weights, inputs_for, predict_keras, predict_ours
from trainctl.config import load_config
from trainctl.errors import ConfigError


def two_in(merge: dict[str, Any], a: list[int], b: list[int], extra: list[dict[str, Any]] | None = None) -> dict:
    return {
        "name": "merge_case",
        "inputs": [{"name": "a", "shape": a}, {"name": "b", "shape": b}],
        "layers": [{"name": "m", **merge, "inputs": ["a", "b"]}, *(extra or [])],
    }


MERGES: dict[str, dict[str, Any]] = {
    "add": two_in({"type": "Add"}, [4], [4]),
    "add_broadcast_rank": two_in({"type": "Add"}, [3, 4], [4]),
    "add_broadcast_one": two_in({"type": "Add"}, [3, 1], [3, 4]),
    "subtract": two_in({"type": "Subtract"}, [4], [4]),
    "multiply": two_in({"type": "Multiply"}, [2, 3], [2, 3]),
    "average": two_in({"type": "Average"}, [4], [4]),
    "maximum": two_in({"type": "Maximum"}, [4], [4]),
    "minimum": two_in({"type": "Minimum"}, [4], [4]),
    "concatenate": two_in({"type": "Concatenate"}, [3, 4], [3, 2]),
    "concatenate_axis1": two_in({"type": "Concatenate", "axis": 1}, [3, 4], [2, 4]),
    "dot_vectors": two_in({"type": "Dot", "axes": 1}, [4], [4]),
    "dot_axis1": two_in({"type": "Dot", "axes": 1}, [3, 4], [3, 5]),
    "dot_pair": two_in({"type": "Dot", "axes": [2, 1]}, [3, 4], [4, 5]),
    "dot_normalize": two_in({"type": "Dot", "axes": -1, "normalize": True}, [4], [4]),
    "dense_after": two_in({"type": "Concatenate"}, [4], [2], [{"name": "out", "type": "Dense", "units": 3}]),
}

RESIDUAL = {
    "name": "residual",
    "inputs": [{"name": "image", "shape": [8, 8, 1]}],
    "layers": [
        {"name": "stem", "type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"name": "c1", "type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"name": "bn", "type": "BatchNormalization"},
        {"name": "c2", "type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"name": "res", "type": "Add", "inputs": ["stem", "c2"]},
        {"name": "relu", "type": "Activation", "activation": "relu"},
        {"name": "gap", "type": "GlobalAveragePooling2D"},
        {"name": "probs", "type": "Dense", "units": 3, "activation": "softmax"},
    ],
}
TWO_IN_TWO_OUT = {
    "name": "two_two",
    "inputs": [{"name": "features", "shape": [6]}, {"name": "tokens", "shape": [5], "dtype": "int32"}],
    "layers": [
        {"name": "emb", "type": "Embedding", "input_dim": 10, "output_dim": 4, "inputs": "tokens"},
        {"name": "pool", "type": "GlobalAveragePooling1D"},
        {"name": "merge", "type": "Concatenate", "inputs": ["features", "pool"]},
        {"name": "trunk", "type": "Dense", "units": 8, "activation": "relu"},
        {"name": "cls", "type": "Dense", "units": 3, "activation": "softmax"},
        {"name": "reg", "type": "Dense", "units": 1, "inputs": "trunk"},
    ],
    "outputs": ["cls", "reg"],
}
SHARED = {
    "name": "siamese",
    "inputs": [{"name": "left", "shape": [6]}, {"name": "right", "shape": [6]}],
    "layers": [
        {"name": "encode", "type": "Dense", "units": 4, "activation": "tanh", "inputs": "left"},
        {"name": "encode_right", "call": "encode", "inputs": "right"},
        {"name": "diff", "type": "Subtract", "inputs": ["encode", "encode_right"]},
    ],
}
MODELS = {**MERGES, "residual": RESIDUAL, "two_in_two_out": TWO_IN_TWO_OUT, "shared": SHARED}


@pytest.mark.keras
@pytest.mark.parametrize("case", list(MODELS))
def test_same_params_shapes_and_outputs_as_keras(case: str, keras: Any) -> None:
    cfg = MODELS[case]
    ours = build_ours(cfg)
    theirs = build_keras(keras, cfg)
    assert sum(r.params for r in ours.info) == theirs.count_params()
    assert [tuple(o.shape[1:]) for o in theirs.outputs] == list(ours.output_shapes)
    copy_weights(ours, theirs)
    xs = inputs_for(cfg)
    for a, b in zip(predict_ours(ours, xs), predict_keras(keras, theirs, xs), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_shared_layer_has_one_set_of_weights_and_two_calls() -> None:
    model = build_ours(SHARED)
    assert [r.name for r in model.info] == ["encode", "diff"]
    assert sum(p.numel() for p in model.parameters()) == 6 * 4 + 4
    left = np.ones((2, 6), np.float32)
    (out,) = predict_ours(model, [left, left])
    np.testing.assert_array_equal(out, 0.0)  # the same weights on the same input


def test_forward_pre_and_activate_compose_per_output() -> None:
    model = build_ours(TWO_IN_TWO_OUT)
    import torch

    xs = tuple(torch.from_numpy(x) for x in inputs_for(TWO_IN_TWO_OUT))
    with torch.no_grad():
        full = model(xs)
        again = model.activate(model.forward_pre(xs))
    assert model.final_activations == ["softmax", "linear"]
    for a, b in zip(full, again, strict=True):
        torch.testing.assert_close(a, b)


def test_keras_layer_order_is_depth_then_dfs() -> None:
    # the notes' example: a -> deep1 -> deep2 -> sum -> out, b -> made_first -> sum
    from trainctl.config.schema import ModelSpec
    from trainctl.model.shapes_graph import build_graph

    spec = ModelSpec.model_validate(
        {
            "inputs": [{"name": "a", "shape": [6]}, {"name": "b", "shape": [6]}],
            "layers": [
                {"name": "made_first", "type": "Dense", "units": 5, "inputs": "b"},
                {"name": "deep1", "type": "Dense", "units": 5, "inputs": "a"},
                {"name": "deep2", "type": "Dense", "units": 5},
                {"name": "sum", "type": "Add", "inputs": ["made_first", "deep2"]},
                {"name": "out", "type": "Dense", "units": 2},
            ],
        }
    )
    g = build_graph(spec)
    names = [g.inputs[i].name if kind == "input" else g.layers[i].name for kind, i in g.keras_order()]
    assert names == ["a", "b", "deep1", "made_first", "deep2", "sum", "out"]


def test_auto_names_follow_keras() -> None:
    cfg = {
        "inputs": [{"name": "a", "shape": [4]}, {"name": "b", "shape": [4]}],
        "layers": [
            {"type": "Dense", "units": 4, "inputs": "a"},
            {"type": "Dense", "units": 4, "inputs": "b"},
            {"type": "Add", "inputs": ["dense", "dense_1"]},
            {"type": "Concatenate", "inputs": ["add", "a"]},
        ],
    }
    model = build_ours(cfg)
    assert [r.name for r in model.info] == ["dense", "dense_1", "add", "concatenate"]


def validate(model_cfg: dict[str, Any]) -> ConfigError:
    cfg = {"data": {"source": "synthetic", "kind": "random"}, "model": model_cfg, "compile": {"loss": "mse"}}
    with pytest.raises(ConfigError) as err:
        load_config(None, text=json.dumps(cfg))
    return err.value


def test_unknown_name_gets_did_you_mean() -> None:
    bad = json.loads(json.dumps(RESIDUAL))
    bad["layers"][4]["inputs"] = ["stme", "c2"]
    (p,) = validate(bad).problems
    assert p.key == "model.layers[4].inputs"
    assert "unknown layer or input 'stme'" in p.message and p.hint == "did you mean 'stem'?"


def test_reference_to_a_later_layer() -> None:
    bad = json.loads(json.dumps(RESIDUAL))
    bad["layers"][4]["inputs"] = ["stem", "gap"]
    (p,) = validate(bad).problems
    assert p.key == "model.layers[4].inputs" and "'gap' is a later layer (model.layers[6])" in p.message


def test_unused_input_and_dangling_layer() -> None:
    bad = json.loads(json.dumps(SHARED))
    bad["layers"] = [{"name": "encode", "type": "Dense", "units": 4, "inputs": "left"}]
    (p,) = validate(bad).problems
    assert p.key == "model.inputs[1]" and "model input 'right' is not used" in p.message
    bad = json.loads(json.dumps(TWO_IN_TWO_OUT))
    bad["outputs"] = ["cls"]
    (p,) = validate(bad).problems
    assert p.key == "model.layers[5]" and "the output of layer 'reg' is not used" in p.message


def test_shapes_that_cannot_merge_name_the_layer() -> None:
    cfg = {
        "inputs": [{"name": "image", "shape": [28, 28, 1]}],
        "layers": [
            {"name": "c1", "type": "Conv2D", "filters": 32, "kernel_size": 3, "padding": "same", "inputs": "image"},
            {"name": "c2", "type": "Conv2D", "filters": 16, "kernel_size": 3, "padding": "same"},
            {"name": "res", "type": "Add", "inputs": ["c1", "c2"]},
        ],
    }
    (p,) = validate(cfg).problems
    assert p.key == "model.layers[2].inputs"
    assert p.message == "Add: expected equal shapes, received (None, 28, 28, 32) and (None, 28, 28, 16)"
    assert p.where == "<config>" or p.where is None or ":" in p.where


def test_call_of_an_unknown_layer_and_wrong_arity() -> None:
    bad = json.loads(json.dumps(SHARED))
    bad["layers"][1]["call"] = "encod"
    (p,) = validate(bad).problems
    assert p.key == "model.layers[1].call" and p.hint == "did you mean 'encode'?"
    bad = json.loads(json.dumps(SHARED))
    bad["layers"][2]["inputs"] = ["encode", "encode_right", "left"]
    (p,) = validate(bad).problems
    assert "Subtract: expected exactly 2 inputs, received 3" in p.message


def test_yaml_errors_carry_the_line() -> None:
    text = """
data: {source: synthetic, kind: random}
compile: {loss: mse}
model:
  inputs:
    - {name: a, shape: [4]}
  layers:
    - {name: d, type: Dense, units: 2, inputs: aa}
"""
    with pytest.raises(ConfigError) as err:
        load_config(None, text=text)
    (p,) = err.value.problems
    assert p.where == "<config>:8" and p.hint == "did you mean 'a'?"


def test_a_config_without_graph_keys_is_a_sequential_chain() -> None:
    model = build_ours({"layers": [{"type": "Dense", "units": 3, "input_shape": [4]}, {"type": "Dense", "units": 2}]})
    assert not model.graph.functional and model.graph.is_chain
    assert [r.name for r in model.info] == ["dense", "dense_1"]


def test_merge_needs_a_graph() -> None:
    (p,) = validate({"layers": [{"type": "Dense", "units": 3, "input_shape": [4]}, {"type": "Add"}]}).problems
    assert p.key == "model.layers[1]" and "Add merges several inputs" in p.message
