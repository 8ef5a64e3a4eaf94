"""Shape rules (output shape, trainable and non-trainable params) for pooling, global pooling,
BatchNormalization, LayerNormalization, SpatialDropout, RepeatVector, Permute.

Pure Python, like :mod:`trainctl.model.shapes`, so summaries need no torch. The helpers that
resolve pooling windows and normalization axes are shared with the torch builders in
:mod:`trainctl.model.norm`, so both sides read the spec the same way.
"""

from __future__ import annotations

import math
from typing import Any

from trainctl.errors import ConfigError
from trainctl.model.shapes import Rule, Shape, format_shape

_SPATIAL = {1: "steps", 2: "rows, cols", 3: "depth, rows, cols"}


def as_tuple(value: int | tuple[int, ...], rank: int) -> tuple[int, ...]:
    """Keras's ``standardize_tuple``: an int means the same size along every spatial axis."""
    return (value,) * rank if isinstance(value, int) else tuple(value)


def channels_first(spec: Any) -> bool:
    return getattr(spec, "data_format", None) == "channels_first"


def _check_rank(spec: Any, shape: Shape, rank: int, key: str) -> None:
    """``rank`` counts spatial axes; the input also has batch and channel axes."""
    if len(shape) != rank + 1:
        axes = f"channels, {_SPATIAL[rank]}" if channels_first(spec) else f"{_SPATIAL[rank]}, channels"
        raise ConfigError(
            f"{spec.type} expected an input of rank {rank + 2} (batch, {axes}), "
            f"received shape {format_shape(shape)} of rank {len(shape) + 1}",
            key=key,
        )


def _split(spec: Any, shape: Shape) -> tuple[Shape, int | None]:
    """(spatial axes, channels) of a per-sample shape."""
    if channels_first(spec):
        return shape[1:], shape[0]
    return shape[:-1], shape[-1]


def _join(spec: Any, spatial: Shape, channels: int | None) -> Shape:
    return (channels, *spatial) if channels_first(spec) else (*spatial, channels)


def pool_geometry(spec: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(pool_size, strides) as tuples; Keras's ``strides=None`` means ``pool_size``."""
    pool = as_tuple(spec.pool_size, spec.rank)
    strides = pool if spec.strides is None else as_tuple(spec.strides, spec.rank)
    return pool, strides


def _pool(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _check_rank(spec, shape, spec.rank, key)
    pool, strides = pool_geometry(spec)
    spatial, channels = _split(spec, shape)
    out: list[int | None] = []
    for n, k, s in zip(spatial, pool, strides, strict=True):
        if n is None:
            out.append(None)
        elif spec.padding == "same":
            out.append(-(-n // s))
        elif n < k:
            raise ConfigError(
                f"{spec.type} expected each pooled axis to be at least pool_size {list(pool)} "
                f"(padding 'valid'), received shape {format_shape(shape)}",
                key=key,
            )
        else:
            out.append((n - k) // s + 1)
    return _join(spec, tuple(out), channels), 0, 0


def _global_pool(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _check_rank(spec, shape, spec.rank, key)
    spatial, channels = _split(spec, shape)
    if spec.keepdims:
        return _join(spec, (1,) * len(spatial), channels), 0, 0
    return (channels,), 0, 0


def bn_axis(spec: Any, shape: Shape, key: str) -> int:
    """BatchNormalization's axis as an index into the full ``(batch, *shape)`` tensor (never 0)."""
    full = len(shape) + 1
    axis = spec.axis + full if spec.axis < 0 else spec.axis
    if not 1 <= axis < full or shape[axis - 1] is None:
        raise ConfigError(
            f"{spec.type} expected axis to name a known non-batch axis of the input, "
            f"received axis {spec.axis} for input shape {format_shape(shape)}",
            key=key,
        )
    return axis


def _batch_norm(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    channels = shape[bn_axis(spec, shape, key) - 1]
    assert channels is not None  # bn_axis checked it
    return shape, (int(spec.scale) + int(spec.center)) * channels, 2 * channels


def ln_axes(spec: Any, shape: Shape, key: str) -> tuple[int, ...]:
    """LayerNormalization's axes, sorted, as indices into the full ``(batch, *shape)`` tensor."""
    full = len(shape) + 1
    raw = spec.axis if isinstance(spec.axis, tuple) else (spec.axis,)
    axes = tuple(sorted({a + full if a < 0 else a for a in raw}))
    bad = len(axes) != len(raw) or any(not 1 <= a < full or shape[a - 1] is None for a in axes)
    if bad:
        raise ConfigError(
            f"{spec.type} expected axis to name distinct known non-batch axes of the input, "
            f"received axis {list(raw) if len(raw) > 1 else raw[0]} for input shape {format_shape(shape)}",
            key=key,
        )
    return axes


def _layer_norm(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    size = math.prod(shape[a - 1] or 0 for a in ln_axes(spec, shape, key))
    return shape, (int(spec.scale) + int(spec.center)) * size, 0


def _spatial_dropout(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _check_rank(spec, shape, 1 if spec.type == "SpatialDropout1D" else 2, key)
    return shape, 0, 0


def _repeat(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    if len(shape) != 1:
        raise ConfigError(
            f"RepeatVector expected an input of rank 2 (batch, features), "
            f"received shape {format_shape(shape)} of rank {len(shape) + 1}",
            key=key,
        )
    return (spec.n, shape[0]), 0, 0


def _permute(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    if len(shape) != len(spec.dims):
        raise ConfigError(
            f"Permute expected an input of rank {len(spec.dims) + 1} for dims {list(spec.dims)}, "
            f"received shape {format_shape(shape)} of rank {len(shape) + 1}",
            key=key,
        )
    return tuple(shape[d - 1] for d in spec.dims), 0, 0


NORM_RULES: dict[str, Rule] = {
    "MaxPooling1D": _pool,
    "MaxPooling2D": _pool,
    "MaxPooling3D": _pool,
    "AveragePooling1D": _pool,
    "AveragePooling2D": _pool,
    "AveragePooling3D": _pool,
    "GlobalMaxPooling1D": _global_pool,
    "GlobalMaxPooling2D": _global_pool,
    "GlobalAveragePooling1D": _global_pool,
    "GlobalAveragePooling2D": _global_pool,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "SpatialDropout1D": _spatial_dropout,
    "SpatialDropout2D": _spatial_dropout,
    "RepeatVector": _repeat,
    "Permute": _permute,
}
