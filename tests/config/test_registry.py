"""Registry conformance: every registered spec builds, round-trips, resolves by every spelling,
and every layer has exactly one torch builder and one shape rule."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

import trainctl.config.schema  # noqa: F401  (registers every family)
from tests.config.minimal import minimal_args
from trainctl.config.base import FAMILIES, ComponentSpec, Family, norm
from trainctl.config.layers import ACTIVATIONS as ACTIVATION_NAMES

CASES = [(fam, name) for fam, family in FAMILIES.items() for name in family.names()]
IDS = [f"{f}-{n}" for f, n in CASES]


def test_every_family_has_members() -> None:
    assert set(FAMILIES) == {
        "layers", "optimizers", "schedules", "losses", "metrics", "callbacks", "initializers",
        "regularizers", "sources",
    }  # fmt: skip
    for family in FAMILIES.values():
        assert family.specs, family.name


@pytest.mark.parametrize(("fam", "name"), CASES, ids=IDS)
def test_minimal_form_builds_and_round_trips(fam: str, name: str) -> None:
    family = FAMILIES[fam]
    adapter: TypeAdapter[Any] = TypeAdapter(family.field())
    spec = adapter.validate_python(minimal_args(family, name))
    assert type(spec) is family.specs[name]
    assert getattr(spec, family.tag) == name
    assert type(spec).family == family.name
    # python and JSON dumps both validate back to an equal spec
    assert adapter.validate_python(spec.model_dump()) == spec
    assert adapter.validate_json(adapter.dump_json(spec)) == spec
    # kwargs are the Keras arguments: every field but the tag
    assert set(spec.kwargs()) == set(type(spec).model_fields) - {family.tag}
    with pytest.raises(ValidationError):
        spec.model_validate({**spec.model_dump(), "not_a_keras_argument": 1})


@pytest.mark.parametrize(("fam", "name"), CASES, ids=IDS)
def test_every_spelling_resolves(fam: str, name: str) -> None:
    family = FAMILIES[fam]
    adapter: TypeAdapter[Any] = TypeAdapter(family.field())
    args = minimal_args(family, name)
    spellings = [s for s, canonical in family._lookup.items() if canonical == name]
    assert norm(name) in spellings
    for variant in (name, name.lower(), name.upper(), *spellings):
        spec = adapter.validate_python({**args, family.tag: variant})
        assert getattr(spec, family.tag) == name, variant
    if len(args) == 1:  # nothing required: the bare string works too
        assert getattr(adapter.validate_python(name.lower()), family.tag) == name


def test_unknown_name_gets_a_guess_from_its_own_family() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(FAMILIES["optimizers"].field())
    with pytest.raises(ValidationError) as exc:
        adapter.validate_python("adamm")
    (err,) = exc.value.errors()
    assert err["type"] == "unknown_component"
    assert "did you mean 'Adam'?" in err["msg"]
    assert "RMSprop" in err["msg"]  # lists the choices


def test_register_rejects_duplicates_and_ambiguous_aliases() -> None:
    from typing import Literal

    fam = Family("thing", "things")

    @fam.register("t")
    class Thing(ComponentSpec):
        type: Literal["Thing"] = "Thing"

    with pytest.raises(RuntimeError):

        @fam.register()
        class Thing2(ComponentSpec):
            type: Literal["Thing"] = "Thing"

    with pytest.raises(RuntimeError):

        @fam.register("t")
        class Other(ComponentSpec):
            type: Literal["Other"] = "Other"


# ---------------------------------------------------------------------------------------------
# config names <-> model implementations


def test_every_layer_has_one_builder_and_one_shape_rule() -> None:
    from trainctl.model import (
        augment,
        conv,
        layers,
        merge,
        norm,
        preprocess,
        recurrent,
        shapes,
        shapes_conv,
        shapes_merge,
        shapes_norm,
        shapes_preprocess,
        shapes_seq,
    )
    from trainctl.model.builders import BUILDERS

    names = set(FAMILIES["layers"].specs) - {"InputLayer"}
    assert set(BUILDERS) == names
    assert set(shapes.rules()) == names
    assert set(shapes.AUTO_NAMES) <= names
    # each name is implemented in exactly one family table
    builder_tables = [
        layers.CORE_BUILDERS,
        conv.CONV_BUILDERS,
        norm.NORM_BUILDERS,
        recurrent.SEQ_BUILDERS,
        preprocess.PREPROCESS_BUILDERS,
        augment.AUGMENT_BUILDERS,
        merge.MERGE_BUILDERS,
    ]
    rule_tables = [
        shapes.CORE_RULES,
        shapes_conv.CONV_RULES,
        shapes_norm.NORM_RULES,
        shapes_seq.SEQ_RULES,
        shapes_preprocess.PREPROCESS_RULES,
        shapes_merge.MERGE_RULES,
    ]
    for tables in (builder_tables, rule_tables):
        assert sum(len(t) for t in tables) == len(names)


def test_every_initializer_fills_a_tensor() -> None:
    import torch

    from trainctl.model.initializers import initialize

    adapter: TypeAdapter[Any] = TypeAdapter(FAMILIES["initializers"].field())
    for name in FAMILIES["initializers"].names():
        t = torch.full((6, 4), float("nan"))
        initialize(t, adapter.validate_python(name))
        assert torch.isfinite(t).all(), name


def test_activation_names_and_functions_agree() -> None:
    from trainctl.model.activations import ACTIVATIONS

    assert set(ACTIVATION_NAMES) == set(ACTIVATIONS)


@pytest.mark.keras
def test_auto_names_follow_keras_snake_case() -> None:
    pytest.importorskip("keras")
    assert os.environ.get("KERAS_BACKEND") == "torch"
    from keras.src.utils.naming import to_snake_case

    from trainctl.model.shapes import AUTO_NAMES, snake

    names = [*FAMILIES["layers"].specs, "Conv2D", "MaxPooling2D", "BatchNormalization", "LSTM",
             "SimpleRNN", "GlobalAveragePooling1D", "Conv1DTranspose", "UpSampling2D", "PReLU"]  # fmt: skip
    for name in names:
        assert snake(name) == to_snake_case(name), name
    for name, auto in AUTO_NAMES.items():
        assert auto == to_snake_case(name), name
