"""Output shapes and parameter counts computed from specs alone, as Keras's ``compute_output_shape``.

Pure Python (no torch), so ``trainctl summary`` and config validation stay instant. The torch
builder checks its modules against these numbers, so the two cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainctl.errors import ConfigError

Shape = tuple[int | None, ...]  # per sample, no batch axis
MERGE_TYPES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"})


@dataclass(frozen=True)
class LayerInfo:
    """One row of a Keras summary: the layer's auto name, class, output shape and params."""

    index: int
    name: str
    class_name: str
    input_shape: Shape
    output_shape: Shape
    trainable_params: int
    non_trainable_params: int

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


def _size(shape: Shape) -> int | None:
    if any(d is None for d in shape):
        return None
    return math.prod(d for d in shape if d is not None)


def _dense(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    if len(shape) < 1 or shape[-1] is None:
        raise ConfigError(f"Dense expects an input whose last axis is known, received shape {_fmt(shape)}", key=key)
    n_in = shape[-1]
    params = n_in * spec.units + (spec.units if spec.use_bias else 0)
    return (*shape[:-1], spec.units), params, 0


def _flatten(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    return (_size(shape),), 0, 0


def _reshape(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    target = list(spec.target_shape)
    total = _size(shape)
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if total is not None:
            if total % known:
                raise ConfigError(
                    f"Reshape cannot turn an input of shape {_fmt(shape)} ({total} values) into {tuple(target)}",
                    key=key,
                )
            target[target.index(-1)] = total // known
        else:
            target[target.index(-1)] = None  # type: ignore[call-overload]
    elif total is not None and total != known:
        raise ConfigError(
            f"expected an input with {known} values per sample for target_shape "
            f"{tuple(spec.target_shape)}, received shape {_fmt(shape)} ({total} values)",
            key=key,
        )
    return tuple(target), 0, 0


def _same(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    return shape, 0, 0


Rule = Callable[[Any, Shape, str], tuple[Shape, int, int]]

CORE_RULES: dict[str, Rule] = {
    "Dense": _dense,
    "Activation": _same,
    "Dropout": _same,
    "Flatten": _flatten,
    "Reshape": _reshape,
}


def _all_rules() -> dict[str, Rule]:
    # one table per layer family, each in its own module (pure Python, like this one)
    from trainctl.model.shapes_conv import CONV_RULES
    from trainctl.model.shapes_merge import MERGE_RULES
    from trainctl.model.shapes_norm import NORM_RULES
    from trainctl.model.shapes_preprocess import PREPROCESS_RULES
    from trainctl.model.shapes_seq import SEQ_RULES

    return {**CORE_RULES, **CONV_RULES, **NORM_RULES, **SEQ_RULES, **PREPROCESS_RULES, **MERGE_RULES}


# Keras's automatic names: snake_case of the class, numbered per model (dense, dense_1, ...)
AUTO_NAMES = {"Dense": "dense", "Activation": "activation", "Dropout": "dropout",
              "Flatten": "flatten", "Reshape": "reshape"}  # fmt: skip


_RULES: dict[str, Rule] = {}


def rules() -> dict[str, Rule]:
    """Every layer's shape rule, keyed by Keras class name (built once, on first use)."""
    if not _RULES:
        _RULES.update(_all_rules())
    return _RULES


def snake(class_name: str) -> str:
    """``BatchNormalization`` -> ``batch_normalization``, ``Conv2D`` -> ``conv2d``: the same
    regexes as Keras's ``to_snake_case`` (``keras/src/utils/naming.py``)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(layer_type: str, counts: dict[str, int], used: set[str]) -> str:
    """Keras's auto name for an unnamed layer: ``snake_case(type)``, then ``_1``, ``_2``... per
    base name, skipping names already ``used``; records the name in ``counts`` and ``used``."""
    base = AUTO_NAMES.get(layer_type) or snake(layer_type)
    n = counts.get(base, 0)
    name = base if n == 0 else f"{base}_{n}"
    while name in used:
        n += 1
        name = f"{base}_{n}"
    counts[base] = n + 1
    used.add(name)
    return name


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in (None, *shape)) + ")"


def format_shape(shape: Shape) -> str:
    """Keras's display: batch axis first, as ``(None, 28, 28, 1)``."""
    return _fmt(shape)


def infer(layers: list[Any], key_prefix: str = "model.layers") -> tuple[Shape, list[LayerInfo]]:
    """Walk the layer specs; return the model input shape and one :class:`LayerInfo` per layer.

    The InputLayer (if given) has no row, as in Keras's summary. Raises :class:`ConfigError`
    naming the layer when a shape does not fit.
    """
    first = layers[0]
    shape: Shape = tuple(first.declared_input_shape())
    input_shape = shape
    counts: dict[str, int] = {}
    used: set[str] = set()
    rows: list[LayerInfo] = []
    for i, spec in enumerate(layers):
        key = f"{key_prefix}[{i}]"
        if spec.type == "InputLayer":
            continue
        if spec.type in MERGE_TYPES:
            raise ConfigError(
                f"{spec.type} merges several inputs; a Sequential model has one tensor to give it",
                key=key,
                hint="name what it merges with `inputs: [a, b]` (a Functional model)",
            )
        rule = rules().get(spec.type)
        if rule is None:
            raise ConfigError(f"layer {spec.type!r} has no shape rule", key=key)
        out, trainable, frozen = rule(spec, shape, key)
        if not spec.trainable:
            trainable, frozen = 0, trainable + frozen
        if spec.name:
            name = spec.name
            if name in used:
                raise ConfigError(f"layer name {name!r} is used twice", key=f"{key}.name")
            used.add(name)
        else:
            name = unique_name(spec.type, counts, used)
        rows.append(LayerInfo(i, name, spec.type, shape, out, trainable, frozen))
        shape = out
    return input_shape, rows
