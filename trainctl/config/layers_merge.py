"""Merge layer specs (Keras 3 names and defaults): Add, Subtract, Multiply, Average, Maximum,
Minimum, Concatenate, Dot. They take a list of inputs (``inputs: [a, b]``), so they only appear in
graph models; none has weights."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from trainctl.config.base import LAYERS
from trainctl.config.layers import LayerSpec

MERGE_TYPES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot")
TWO_INPUTS = ("Subtract", "Dot")  # Keras: "should be called on exactly 2 inputs"


def _elementwise(name: str) -> type[LayerSpec]:
    """The spec of an element-wise merge layer: only Keras's common layer keys and its ``type``."""
    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"Keras's ``{name}`` merge layer: element-wise, over its list of inputs.",
        "__annotations__": {"type": Literal[name]},  # type: ignore[valid-type]
        "type": name,
    }
    return LAYERS.register()(type(name, (LayerSpec,), namespace))


Add = _elementwise("Add")
Subtract = _elementwise("Subtract")
Multiply = _elementwise("Multiply")
Average = _elementwise("Average")
Maximum = _elementwise("Maximum")
Minimum = _elementwise("Minimum")


@LAYERS.register()
class Concatenate(LayerSpec):
    type: Literal["Concatenate"] = "Concatenate"
    axis: int = -1

    @model_validator(mode="after")
    def _not_batch(self) -> Concatenate:
        if self.axis == 0:
            raise ValueError("axis 0 is the batch axis (Keras accepts it but its shapes are then wrong); use 1 or more")
        return self


@LAYERS.register()
class Dot(LayerSpec):
    """``axes`` has no default in Keras: an int or a pair, one axis per input (batch axis excluded: >= 1)."""

    type: Literal["Dot"] = "Dot"
    axes: int | tuple[int, int]
    normalize: bool = False
