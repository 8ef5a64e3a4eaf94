"""Shape rules of the merge layers (Add ... Dot), as Keras's ``compute_output_shape`` and ``build``
checks. Pure Python, like :mod:`trainctl.model.shapes`.

A merge rule receives the tuple of its input shapes (per sample, no batch axis) where other rules
receive one shape; none has weights.
"""

from __future__ import annotations

from typing import Any

from trainctl.errors import ConfigError
from trainctl.model.shapes import Shape, format_shape

TWO_INPUTS = ("Subtract", "Dot")


def _count(spec: Any, shapes: tuple[Shape, ...], key: str) -> None:
    if spec.type in TWO_INPUTS and len(shapes) != 2:
        raise ConfigError(
            f"{spec.type}: expected exactly 2 inputs, received {len(shapes)}", key=f"{key}.inputs",
            hint="list two layer or input names: `inputs: [a, b]`",
        )  # fmt: skip


def _elementwise(spec: Any, shapes: tuple[Shape, ...], key: str) -> tuple[Shape, int, int]:
    """Add, Subtract, Multiply, Average, Maximum, Minimum: numpy broadcasting aligned on the right
    (Keras inserts the missing axes after the batch axis, which is the same thing)."""
    _count(spec, shapes, key)
    out = shapes[0]
    for shape in shapes[1:]:
        a, b = (out, shape) if len(out) >= len(shape) else (shape, out)
        merged: list[int | None] = list(a[: len(a) - len(b)])
        for i, j in zip(a[len(a) - len(b) :], b, strict=True):
            if i is None or j is None:
                merged.append(None)
            elif i == 1 or j == 1 or i == j:
                merged.append(j if i == 1 else i)
            else:
                raise ConfigError(
                    f"{spec.type}: expected equal shapes, received {format_shape(shapes[0])} and {format_shape(shape)}",
                    key=f"{key}.inputs",
                    hint="axes of size 1 broadcast, as in Keras; otherwise make the shapes agree "
                    "(e.g. a 1x1 Conv2D or a Dense on the shortcut)",
                )
        out = tuple(merged)
    return out, 0, 0


def _concatenate(spec: Any, shapes: tuple[Shape, ...], key: str) -> tuple[Shape, int, int]:
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise ConfigError(
            f"Concatenate: expected inputs of equal rank, received {', '.join(format_shape(s) for s in shapes)}",
            key=f"{key}.inputs",
        )
    axis = spec.axis if spec.axis > 0 else spec.axis + rank + 1  # with the batch axis
    if not 1 <= axis <= rank:
        raise ConfigError(
            f"Concatenate: expected axis in 1..{rank} or -{rank}..-1, received {spec.axis}", key=f"{key}.axis"
        )
    out = list(shapes[0])
    for shape in shapes[1:]:
        for d, (i, j) in enumerate(zip(out, shape, strict=True), start=1):
            if d != axis and i is not None and j is not None and i != j:
                raise ConfigError(
                    f"Concatenate: expected equal shapes except on axis {spec.axis}, received "
                    f"{format_shape(shapes[0])} and {format_shape(shape)}",
                    key=f"{key}.inputs",
                )
        a, b = out[axis - 1], shape[axis - 1]
        out[axis - 1] = None if a is None or b is None else a + b
    return tuple(out), 0, 0


def dot_axes(axes: int | tuple[int, int], rank1: int, rank2: int) -> tuple[int, int]:
    """Keras's axis resolution, on ranks that include the batch axis."""
    if isinstance(axes, int):
        return (axes % rank1, axes % rank2) if axes < 0 else (axes, axes)
    return (axes[0] % rank1 if axes[0] < 0 else axes[0], axes[1] % rank2 if axes[1] < 0 else axes[1])


def _dot(spec: Any, shapes: tuple[Shape, ...], key: str) -> tuple[Shape, int, int]:
    _count(spec, shapes, key)
    s1, s2 = (None, *shapes[0]), (None, *shapes[1])
    a1, a2 = dot_axes(spec.axes, len(s1), len(s2))
    if not (1 <= a1 < len(s1) and 1 <= a2 < len(s2)):
        raise ConfigError(
            f"Dot: expected axes within the input ranks (the batch axis 0 excluded), received axes={spec.axes} "
            f"for {format_shape(shapes[0])} and {format_shape(shapes[1])}",
            key=f"{key}.axes",
        )
    if s1[a1] != s2[a2]:
        raise ConfigError(
            f"Dot: expected equal sizes on the dot axes, received {s1[a1]} (axis {a1} of {format_shape(shapes[0])}) "
            f"and {s2[a2]} (axis {a2} of {format_shape(shapes[1])})",
            key=f"{key}.axes",
        )
    out = [d for i, d in enumerate(s1) if i != a1][1:] + [d for i, d in enumerate(s2) if i != a2][1:]
    return (tuple(out) if out else (1,)), 0, 0


MERGE_RULES: dict[str, Any] = {
    "Add": _elementwise,
    "Subtract": _elementwise,
    "Multiply": _elementwise,
    "Average": _elementwise,
    "Maximum": _elementwise,
    "Minimum": _elementwise,
    "Concatenate": _concatenate,
    "Dot": _dot,
}
