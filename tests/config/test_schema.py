"""Schema: Keras's defaults, frozen specs, unknown keys rejected, cross-field rules.

The honest default check reads ``inspect.signature`` of the real Keras classes: for every
argument we declare that Keras also takes, our validated default must equal Keras's.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from pydantic import ValidationError

from tests.config.minimal import EXTRA, REQUIRED
from trainctl.config.base import FAMILIES, ComponentSpec, Family, norm
from trainctl.config.schema import CompileSpec, FitSpec, ModelSpec, RunConfig

# trainctl-only fields, or Keras layer kwargs that live in **kwargs (not in the signature)
OURS_ONLY = {"name", "trainable", "input_shape", "batch_input_shape", "input_dim", "inputs"}  # inputs: graph wiring
# where we differ from Keras on purpose (documented in the spec modules)
DELIBERATE = {
    ("InputLayer", "dtype"),  # Keras None means floatx, float32: we name it
    ("ModelCheckpoint", "filepath"),  # optional, defaults into the run folder
    ("CSVLogger", "filename"),  # same
    ("Normalization", "axis"),
    ("RandomBrightness", "data_format"),  # Keras takes it through **kwargs (default channels_last)
    ("RandomContrast", "data_format"),  # Keras's -1, kept as the tuple (-1,) that Keras itself stores and saves
}

MINIMAL_BASE: dict[str, Any] = {
    "data": {"source": "synthetic", "kind": "linear"},
    "model": {"layers": [{"type": "Dense", "units": 1, "input_shape": [1]}]},
    "compile": {"loss": "mse"},
}


def minimal(cls: type[ComponentSpec]) -> ComponentSpec:
    args = {f: REQUIRED[f] for f, info in cls.model_fields.items() if info.is_required()}
    tag = cls.model_fields.get("type") or cls.model_fields["source"]
    return cls.model_validate({**args, **EXTRA.get(str(tag.default), {})})


def keras_module(family: str) -> Any:
    keras = pytest.importorskip("keras")
    return {
        "optimizers": keras.optimizers,
        "schedules": keras.optimizers.schedules,
        "callbacks": keras.callbacks,
        "layers": keras.layers,
        "initializers": keras.initializers,
        "regularizers": keras.regularizers,
        "losses": keras.losses,
        "metrics": keras.metrics,
    }[family]


def keras_class(family: Family, canonical: str, module: Any) -> Any:
    """The Keras class that our loose name lookup maps to ``canonical`` (classes, not functions)."""
    for attr in dir(module):
        obj = getattr(module, attr)
        if inspect.isclass(obj) and family.canonical(attr) == canonical:
            return obj
    return None


def same_default(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, ComponentSpec):  # `glorot_uniform` in Keras, a GlorotUniform spec here
        if isinstance(theirs, str) and ours.family == "initializer" and norm(ours.type) != norm(theirs):
            # a Keras alias (Embedding's `uniform`): let Keras resolve it, compare class and arguments
            resolved = keras_module("initializers").get(theirs)
            config = resolved.get_config()
            return type(resolved).__name__ == ours.type and all(config[k] == v for k, v in ours.kwargs().items())
        return isinstance(theirs, str) and norm(ours.type) == norm(theirs) and not ours.kwargs().get("seed")
    if isinstance(ours, tuple | list) and isinstance(theirs, tuple | list):
        return list(ours) == list(theirs)
    if isinstance(ours, bool) or isinstance(theirs, bool):  # keep True from equalling 1
        return ours is theirs
    return bool(ours == theirs)


KERAS_FAMILIES = ["optimizers", "schedules", "callbacks", "layers", "initializers", "regularizers", "losses", "metrics"]
CASES = [(fam, name) for fam in KERAS_FAMILIES for name in FAMILIES[fam].names()]


@pytest.mark.keras
@pytest.mark.parametrize(("family", "name"), CASES, ids=[f"{f}-{n}" for f, n in CASES])
def test_defaults_equal_keras_signature(family: str, name: str) -> None:
    fam = FAMILIES[family]
    cls = fam.specs[name]
    kcls = keras_class(fam, name, keras_module(family))
    assert kcls is not None, f"no Keras class for {family} {name}"
    params = inspect.signature(kcls).parameters
    spec = minimal(cls)
    for field, info in cls.model_fields.items():
        if field in (fam.tag, *OURS_ONLY) or (kcls.__name__, field) in DELIBERATE:
            continue
        assert field in params, f"{kcls.__name__} takes no {field!r}"
        keras_default = params[field].default
        if keras_default is inspect.Parameter.empty:
            assert info.is_required(), f"{field} is required in Keras"
            continue
        if field in spec.model_fields_set:  # given by `minimal`, not a default
            continue
        ours = getattr(spec, field)
        if field == "activation" and keras_default is None:
            keras_default = "linear"  # Keras: None means linear
        assert same_default(ours, keras_default), f"{kcls.__name__}.{field}: ours {ours!r}, Keras {keras_default!r}"


@pytest.mark.keras
def test_fit_and_compile_defaults_equal_keras() -> None:
    keras = pytest.importorskip("keras")
    fit = inspect.signature(keras.Model.fit).parameters
    fit_spec = FitSpec()
    for field in ("epochs", "batch_size", "validation_split", "shuffle", "initial_epoch", "class_weight", "verbose"):
        assert getattr(fit_spec, field) == fit[field].default, field
    assert fit_spec.callbacks == [] and fit["callbacks"].default is None
    compile_sig = inspect.signature(keras.Model.compile).parameters
    assert compile_sig["optimizer"].default == "rmsprop"
    spec = CompileSpec.model_validate({"loss": "mse"})
    assert spec.optimizer.type == "RMSprop"
    assert spec.metrics == []


def test_keras_defaults_written_out() -> None:
    """The defaults people trip over, spelled out (keras-format.md §4), independent of Keras."""
    opt = FAMILIES["optimizers"].specs
    assert opt["Adam"]().epsilon == 1e-7
    assert opt["Adam"]().learning_rate == 0.001
    assert opt["RMSprop"]().rho == 0.9
    assert opt["Adadelta"]().learning_rate == 0.001
    assert opt["Adadelta"]().rho == 0.95
    assert opt["AdamW"]().weight_decay == 0.004
    assert opt["Adam"]().weight_decay is None
    assert opt["SGD"]().learning_rate == 0.01
    assert opt["Adagrad"]().initial_accumulator_value == 0.1
    cb = FAMILIES["callbacks"].specs
    assert cb["EarlyStopping"]().monitor == "val_loss"
    assert cb["EarlyStopping"]().patience == 0
    assert cb["ReduceLROnPlateau"]().factor == 0.1
    assert cb["ReduceLROnPlateau"]().patience == 10
    dense = FAMILIES["layers"].specs["Dense"].model_validate({"units": 3})
    assert dense.kernel_initializer.type == "GlorotUniform"
    assert dense.bias_initializer.type == "Zeros"
    assert dense.activation == "linear"
    assert FitSpec().batch_size is None
    assert FitSpec().resolved_batch_size == 32
    assert FitSpec(batch_size=7).resolved_batch_size == 7
    assert FAMILIES["losses"].specs["mean_squared_error"]().reduction == "sum_over_batch_size"


# ---------------------------------------------------------------------------------------------
# frozen, closed, validated


def test_specs_are_frozen() -> None:
    cfg = RunConfig.model_validate(MINIMAL_BASE)
    with pytest.raises(ValidationError):
        cfg.seed = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.compile.optimizer.rho = 0.5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.model.layers[0].units = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "path",
    [(), ("fit",), ("compile",), ("model",), ("model", "layers", 0), ("data",)],
)
def test_unknown_keys_are_rejected_everywhere(path: tuple[Any, ...]) -> None:
    raw = json.loads(json.dumps(MINIMAL_BASE))
    raw.setdefault("fit", {})
    node: Any = raw
    for part in path:
        node = node[part]
    node["bogus_key"] = 1
    with pytest.raises(ValidationError, match="bogus_key"):
        RunConfig.model_validate(raw)


def test_first_layer_needs_an_input_shape() -> None:
    with pytest.raises(ValidationError, match="input shape"):
        ModelSpec.model_validate({"layers": [{"type": "Dense", "units": 3}]})
    for first in (
        {"type": "Dense", "units": 3, "input_shape": [5]},
        {"type": "Dense", "units": 3, "input_dim": 5},
        {"type": "Dense", "units": 3, "batch_input_shape": [None, 5]},
    ):
        spec = ModelSpec.model_validate({"layers": [first]})
        assert spec.layers[0].declared_input_shape() == (5,)
    spec = ModelSpec.model_validate({"layers": [{"type": "InputLayer", "shape": [28, 28]}, {"type": "Flatten"}]})
    assert spec.layers[0].declared_input_shape() == (28, 28)
    with pytest.raises(ValidationError, match="InputLayer"):
        ModelSpec.model_validate(
            {"layers": [{"type": "Dense", "units": 3, "input_dim": 5}, {"type": "InputLayer", "shape": [3]}]}
        )
    with pytest.raises(ValidationError):
        ModelSpec.model_validate({"layers": []})


@pytest.mark.parametrize(
    ("section", "value"),
    [
        ("fit", {"validation_split": 0.1, "validation_data": "test"}),
        ("fit", {"epochs": 3, "initial_epoch": 3}),
        ("fit", {"validation_split": 1.0}),
        ("fit", {"epochs": 0}),
        ("compile", {"loss": "mse", "optimizer": {"type": "sgd", "clipnorm": 1.0, "clipvalue": 0.5}}),
        ("compile", {"loss": "mse", "optimizer": {"type": "adam", "learning_rate": -0.1}}),
        ("compile", {"loss": "mse", "optimizer": {"type": "sgd", "learning_rate": {
            "type": "PiecewiseConstantDecay", "boundaries": [10, 20], "values": [0.1, 0.01]}}}),
        ("model", {"layers": [{"type": "Reshape", "target_shape": [-1, -1], "input_shape": [4]}]}),
        ("model", {"layers": [{"type": "Dropout", "rate": 1.0, "input_shape": [4]}]}),
        ("device", "gpu"),
        ("name", "../escape"),
    ],
)  # fmt: skip
def test_cross_field_rules(section: str, value: Any) -> None:
    raw = {**MINIMAL_BASE, section: value}
    with pytest.raises(ValidationError):
        RunConfig.model_validate(raw)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_devices_accepted(device: str) -> None:
    assert RunConfig.model_validate({**MINIMAL_BASE, "device": device}).device == device


def test_json_schema() -> None:
    schema = RunConfig.model_json_schema()
    assert {"data", "model", "compile", "fit"} <= set(schema["properties"])
    assert set(schema["required"]) == {"data", "model", "compile"}
    text = json.dumps(schema)
    for name in ("Dense", "EarlyStopping", "RMSprop", "sparse_categorical_crossentropy", "synthetic"):
        assert f'"{name}"' in text, name
