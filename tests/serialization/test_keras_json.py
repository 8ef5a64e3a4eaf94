"""Keras JSON <-> ModelSpec without Keras: round trips, Keras 2 forms, and unsupported options.

Expected specs are written by hand from the Keras JSON schema in shared/notes/keras-format.md §1.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from trainctl.config import load_config
from trainctl.config.schema import ModelSpec
from trainctl.errors import ArtifactError
from trainctl.model.sequential import build_model
from trainctl.serialization import model_spec_from_json, model_to_json

HEAD = "data: {source: synthetic, kind: random}\ncompile: {loss: mse}\nmodel:\n"

SPECS = {
    "input_layer": """
  layers:
    - {type: InputLayer, shape: [7]}
    - {type: Dense, units: 5, activation: relu,
       kernel_initializer: {type: VarianceScaling, scale: 2.0, mode: fan_out}}
    - {type: Dense, units: 3, use_bias: false, name: out}
""",
    "input_shape_first": """
  name: my_model
  layers:
    - {type: Dense, units: 6, activation: sigmoid, input_shape: [5], kernel_regularizer: {type: L1, l1: 0.1}}
    - {type: Dropout, rate: 0.5, seed: 3}
    - {type: Activation, activation: elu}
    - {type: Dense, units: 4, trainable: false, name: head, bias_initializer: {type: Ones}}
""",
    "named_input_flatten": """
  layers:
    - {type: InputLayer, shape: [4, 3], name: pixels}
    - {type: Flatten, name: flat}
    - {type: Dense, units: 5, kernel_initializer: {type: TruncatedNormal, stddev: 0.2, seed: 1}}
    - {type: Reshape, target_shape: [5, -1]}
    - {type: Dropout, rate: 0.1, noise_shape: [null, 1, 1]}
    - {type: Flatten}
    - {type: Dense, units: 2, activation: softmax, activity_regularizer: {type: L2, l2: 0.3}}
""",
    "fixed_batch": """
  layers:
    - {type: InputLayer, batch_shape: [8, 3]}
    - {type: Dense, units: 2, name: dense_1}
    - {type: Dense, units: 2}
""",
}


def _spec(body: str) -> ModelSpec:
    return load_config(None, text=HEAD + body).config.model


@pytest.mark.parametrize("key", list(SPECS))
@pytest.mark.parametrize("universal", [False, True])
def test_spec_json_spec_round_trip(key: str, universal: bool) -> None:
    spec = _spec(SPECS[key])
    text = model_to_json(build_model(spec), universal=universal)
    assert model_spec_from_json(text) == spec


def test_keras3_schema_essentials() -> None:
    obj = json.loads(model_to_json(build_model(_spec(SPECS["input_shape_first"]))))
    assert (obj["module"], obj["class_name"]) == ("keras", "Sequential")
    assert obj["build_config"] == {"input_shape": [None, 5]}
    first, dense = obj["config"]["layers"][:2]
    assert first["class_name"] == "InputLayer"
    assert first["config"]["batch_shape"] == [None, 5]
    assert dense["module"] == "keras.layers"
    assert dense["config"]["dtype"]["class_name"] == "DTypePolicy"
    assert dense["config"]["kernel_initializer"] == {
        "module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None},
        "registered_name": None,
    }  # fmt: skip
    assert dense["config"]["kernel_regularizer"]["config"] == {"l1": 0.1}
    assert dense["build_config"] == {"input_shape": [None, 5]}
    assert "compile_config" not in obj


def test_universal_form_has_no_keras3_only_parts() -> None:
    obj = json.loads(model_to_json(build_model(_spec(SPECS["input_layer"])), universal=True))
    first, dense = obj["config"]["layers"][:2]
    want = {"batch_input_shape": [None, 7], "dtype": "float32", "name": "input_layer"}
    assert first == {"class_name": "InputLayer", "config": want}
    assert set(dense) == {"class_name", "config"}
    assert dense["config"]["dtype"] == "float32"
    assert "quantization_config" not in dense["config"]
    assert "module" not in dense["config"]["kernel_initializer"]


def _keras2_json() -> dict[str, Any]:
    """What tf-keras 2.x ``to_json`` writes for Dense(16, relu, input_shape=(784,)) -> Dropout -> Dense."""
    glorot = {"class_name": "GlorotUniform", "config": {"seed": None}}
    zeros = {"class_name": "Zeros", "config": {}}
    common = {"trainable": True, "dtype": "float32"}
    dense = {**common, "use_bias": True, "kernel_initializer": glorot, "bias_initializer": zeros,
             "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
             "kernel_constraint": None, "bias_constraint": None}  # fmt: skip
    inp = {"batch_input_shape": [None, 784], "dtype": "float32", "sparse": False, "ragged": False,
           "name": "dense_input"}  # fmt: skip
    layers = [
        {"class_name": "InputLayer", "config": inp},
        {"class_name": "Dense", "config": {"name": "dense", "units": 16, "activation": "relu", **dense}},
        {"class_name": "Dropout",
         "config": {"name": "dropout", **common, "rate": 0.2, "noise_shape": None, "seed": None}},
        {"class_name": "Dense", "config": {"name": "dense_9", "units": 10, "activation": "softmax", **dense}},
    ]  # fmt: skip
    return {"class_name": "Sequential", "config": {"name": "sequential_4", "layers": layers},
            "keras_version": "2.15.0", "backend": "tensorflow"}  # fmt: skip


def test_reads_tf_keras_json() -> None:
    spec = model_spec_from_json(json.dumps(_keras2_json()))
    want = _spec("""
  name: sequential_4
  layers:
    - {type: Dense, units: 16, activation: relu, input_shape: [784]}
    - {type: Dropout, rate: 0.2}
    - {type: Dense, units: 10, activation: softmax, name: dense_9}
""")
    assert spec == want


def test_reads_old_keras2_batch_input_shape_on_first_layer() -> None:
    # Keras <= 2.2: no InputLayer; the first layer carries batch_input_shape; config is the list.
    obj = {"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {"name": "dense_1", "units": 3, "activation": "tanh",
                                           "batch_input_shape": [None, 5], "dtype": "float32"}},
        {"class_name": "Dense", "config": {"name": "dense_2", "units": 1}},
    ]}  # fmt: skip
    model = build_model(model_spec_from_json(json.dumps(obj)))
    assert model.input_shape == (5,)
    assert [(r.name, r.output_shape) for r in model.info] == [("dense_1", (3,)), ("dense_2", (1,))]


def test_build_input_shape_gives_the_input_when_there_is_no_input_layer() -> None:
    obj = {"module": "keras", "class_name": "Sequential",
           "config": {"name": "m", "layers": [{"class_name": "Dense", "config": {"units": 2}}],
                      "build_input_shape": [None, 9]}}  # fmt: skip
    model = build_model(model_spec_from_json(json.dumps(obj)))
    assert model.input_shape == (9,)
    assert model.info[0].params == 9 * 2 + 2


def _with_layer(entry: dict[str, Any]) -> str:
    return json.dumps({"module": "keras", "class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}}, entry]}})  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"class_name": "Conv3DTranspose", "config": {"filters": 3, "kernel_size": [3, 3, 3]}}, "'Conv3DTranspose'"),
        ({"class_name": "Dense", "config": {"units": 2, "kernel_constraint": {"class_name": "MaxNorm"}}},
         "kernel_constraint"),
        ({"class_name": "Dense", "config": {"units": 2, "dtype": {
            "module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}}},
         "mixed_float16"),
        ({"class_name": "Dense", "config": {"units": 2, "kernel_initializer": {"class_name": "MyInit",
                                                                               "config": {}}}}, "MyInit"),
        ({"class_name": "Dense", "config": {"units": 2, "kernel_initializer": {
            "class_name": "GlorotUniform", "config": {"seed": None, "input_axes": [0]}}}}, "input_axes"),
        ({"class_name": "Dense", "config": {"units": 2, "lora_rank": 4}}, "lora_rank"),
        ({"class_name": "Dense", "config": {"units": 2, "frobnicate": True}}, "frobnicate"),
        ({"class_name": "Dense", "config": {"units": -3}}, "units"),
        ({"class_name": "Dense", "config": {"units": 2, "activation": "wobble"}}, "wobble"),
    ],
)  # fmt: skip
def test_unsupported_layers_and_options_are_named(entry: dict[str, Any], named: str) -> None:
    with pytest.raises(ArtifactError) as err:
        model_spec_from_json(_with_layer(entry))
    assert named in str(err.value)
    assert err.value.exit_code == 4


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"module": "keras", "class_name": "Functional", "config": {"layers": []}}), "Functional"),
        (
            json.dumps({"class_name": "Sequential", "config": {"name": "m", "layers": []}}),
            "at least one layer",
        ),
        (json.dumps([1, 2]), "class_name"),
    ],
)
def test_malformed_json_is_an_artifact_error(text: str, named: str) -> None:
    with pytest.raises(ArtifactError, match=named):
        model_spec_from_json(text)
