"""Graph keys of ``model``: named inputs, ``call:`` entries (a layer applied again), outputs.

A config without ``model.inputs``, ``model.outputs``, ``inputs:`` and ``call:`` keys is a Keras
``Sequential``; any of them makes it a Functional model. The wiring (names, order, shapes) is
checked in :mod:`trainctl.model.shapes_graph`, which also runs at ``config validate``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from trainctl.config.base import Spec
from trainctl.config.layers import InputDType, Shape


class ModelInput(Spec):
    """One model input, as ``keras.Input(shape, dtype, name)``; ``shape`` excludes the batch axis."""

    name: str = Field(min_length=1)
    shape: Shape
    dtype: InputDType = "float32"


class CallSpec(Spec):
    """``{call: encode, inputs: right}``: the layer named ``encode`` called again, sharing its weights.
    ``name`` names this call's output for later ``inputs`` (Keras's layer keeps its own name)."""

    call: str = Field(min_length=1)
    name: str | None = None
    inputs: str | list[str] | None = None


def entry_kind(value: Any) -> str:
    """Tag of a ``model.layers`` entry: a ``call:`` entry or a layer (labels are not identifiers,
    so the loader's error paths skip them)."""
    if isinstance(value, CallSpec) or (isinstance(value, dict) and "call" in value):
        return "call-entry"
    return "layer-entry"


def one_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value
