"""Shape inference and parameter counts: ``infer`` rows must equal what real Keras builds."""

from __future__ import annotations

from typing import Any

import pytest

from trainctl.config.schema import ModelSpec
from trainctl.errors import ConfigError
from trainctl.model.shapes import format_shape, infer

# (input shape, layer specs); Keras layers are built from the same dicts
STACKS: list[tuple[tuple[int | None, ...], list[dict[str, Any]]]] = [
    ((784,), [{"type": "Dense", "units": 256, "activation": "sigmoid"}, {"type": "Dense", "units": 128},
              {"type": "Dense", "units": 10, "activation": "softmax"}]),
    ((28, 28), [{"type": "Flatten"}, {"type": "Dense", "units": 64}, {"type": "Dropout", "rate": 0.2},
                {"type": "Dense", "units": 10}]),
    ((12,), [{"type": "Reshape", "target_shape": [3, 4]}, {"type": "Dense", "units": 5},
             {"type": "Activation", "activation": "tanh"}, {"type": "Flatten"}, {"type": "Dense", "units": 2}]),
    ((6, 4), [{"type": "Dense", "units": 3, "use_bias": False}, {"type": "Reshape", "target_shape": [-1, 2]},
              {"type": "Flatten", "name": "flat"}, {"type": "Dense", "units": 1}]),
    ((None, 4), [{"type": "Dense", "units": 3}, {"type": "Dropout", "rate": 0.5}, {"type": "Flatten"}]),
    ((None, 4), [{"type": "Reshape", "target_shape": [-1, 2]}, {"type": "Dense", "units": 3}]),
    ((5,), [{"type": "Dense", "units": 7, "trainable": False}, {"type": "Dense", "units": 3},
            {"type": "Dropout", "rate": 0.1}, {"type": "Dropout", "rate": 0.1}, {"type": "Activation",
            "activation": "relu"}, {"type": "Activation", "activation": "softmax"}]),
    ((), [{"type": "Flatten"}, {"type": "Dense", "units": 2}]),
]  # fmt: skip


def spec_of(shape: tuple[int | None, ...], layers: list[dict[str, Any]]) -> ModelSpec:
    return ModelSpec.model_validate({"layers": [{"type": "InputLayer", "shape": list(shape)}, *layers]})


def keras_layer(keras: Any, d: dict[str, Any]) -> Any:
    kwargs = {k: v for k, v in d.items() if k != "type"}
    if "target_shape" in kwargs:
        kwargs["target_shape"] = tuple(kwargs["target_shape"])
    return getattr(keras.layers, d["type"])(**kwargs)


@pytest.mark.keras
@pytest.mark.parametrize(("shape", "layers"), STACKS)
def test_rows_equal_keras(shape: tuple[int | None, ...], layers: list[dict[str, Any]]) -> None:
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()  # restart Keras's per-process name counters
    model = keras.Sequential([keras.Input(shape), *(keras_layer(keras, d) for d in layers)])
    input_shape, rows = infer(list(spec_of(shape, layers).layers))
    assert input_shape == shape
    assert len(rows) == len(model.layers)
    for row, layer in zip(rows, model.layers, strict=True):
        assert row.name == layer.name
        assert row.class_name == type(layer).__name__
        assert (None, *row.output_shape) == tuple(layer.output.shape)
        assert row.params == layer.count_params()
        assert row.trainable_params == sum(int(w.numpy().size) for w in layer.trainable_weights)
        assert row.non_trainable_params == sum(int(w.numpy().size) for w in layer.non_trainable_weights)


@pytest.mark.parametrize(("shape", "layers"), [s for s in STACKS if None not in s[0]])
def test_torch_model_matches_rows(shape: tuple[int | None, ...], layers: list[dict[str, Any]]) -> None:
    """The built torch model has exactly the counted parameters, and outputs the inferred shape."""
    import torch

    from trainctl.model.sequential import build_model

    model = build_model(spec_of(shape, layers))
    _, rows = infer(list(spec_of(shape, layers).layers))
    for row, module in zip(rows, model.layers, strict=True):
        assert sum(p.numel() for p in module.parameters()) == row.params
        assert sum(p.numel() for p in module.parameters() if p.requires_grad) == row.trainable_params
    out = model.eval()(torch.zeros(3, *shape))
    assert tuple(out.shape) == (3, *rows[-1].output_shape)


def test_names_count_per_class_and_skip_taken_names() -> None:
    spec = ModelSpec.model_validate(
        {
            "layers": [
                {"type": "Dense", "units": 3, "input_shape": [4]},
                {"type": "Dense", "units": 3, "name": "dense_1"},
                {"type": "Dense", "units": 3},
                {"type": "Dropout", "rate": 0.1},
                {"type": "Dropout", "rate": 0.1},
            ]
        }
    )
    _, rows = infer(list(spec.layers))
    assert [r.name for r in rows] == ["dense", "dense_1", "dense_2", "dropout", "dropout_1"]
    assert [r.index for r in rows] == [0, 1, 2, 3, 4]


def test_duplicate_explicit_name_is_a_config_error() -> None:
    spec = ModelSpec.model_validate(
        {
            "layers": [
                {"type": "Dense", "units": 3, "input_shape": [4], "name": "a"},
                {"type": "Dense", "units": 3, "name": "a"},
            ]
        }
    )
    with pytest.raises(ConfigError) as exc:
        infer(list(spec.layers))
    assert exc.value.problems[0].key == "model.layers[1].name"


@pytest.mark.parametrize(
    ("shape", "target", "index"),
    [((6,), [5], 1), ((6,), [4, -1], 1), ((2, 3), [7], 1)],
)
def test_reshape_mismatch_names_the_layer(shape: tuple[int, ...], target: list[int], index: int) -> None:
    spec = spec_of(shape, [{"type": "Reshape", "target_shape": target}])
    with pytest.raises(ConfigError) as exc:
        infer(list(spec.layers))
    (problem,) = exc.value.problems
    assert problem.key == f"model.layers[{index}]"
    assert str(6) in problem.message


def test_dense_on_unknown_last_axis_names_the_layer() -> None:
    spec = spec_of((None, 4), [{"type": "Flatten"}, {"type": "Dense", "units": 2}])
    with pytest.raises(ConfigError) as exc:
        infer(list(spec.layers))
    assert exc.value.problems[0].key == "model.layers[2]"


def test_format_shape_is_keras_display() -> None:
    assert format_shape((28, 28, 1)) == "(None, 28, 28, 1)"
    assert format_shape((None, 3)) == "(None, None, 3)"
    assert format_shape(()) == "(None)"
