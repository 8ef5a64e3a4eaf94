"""Shape rules (output shape, trainable and non-trainable params) for the preprocessing and
augmentation layers.

Pure Python, like :mod:`trainctl.model.shapes`. :func:`norm_geometry` and :func:`image_axes` are
shared with the torch builders in :mod:`trainctl.model.preprocess`, so both read a spec the same way.
"""

from __future__ import annotations

import math
from typing import Any

from trainctl.errors import ConfigError
from trainctl.model.shapes import Rule, Shape, format_shape


def channels_first(spec: Any) -> bool:
    return getattr(spec, "data_format", None) == "channels_first"


def image_axes(spec: Any) -> tuple[int, int, int]:
    """(height, width, channel) axes of a batched image tensor for this spec's data format."""
    return (2, 3, 1) if channels_first(spec) else (1, 2, 3)


def _check_image(spec: Any, shape: Shape, key: str) -> None:
    if len(shape) != 3:
        axes = "channels, height, width" if channels_first(spec) else "height, width, channels"
        raise ConfigError(
            f"{spec.type} expected images of rank 4 (batch, {axes}), "
            f"received shape {format_shape(shape)} of rank {len(shape) + 1}",
            key=key,
            hint="put a Reshape before it, e.g. {type: Reshape, target_shape: [28, 28, 1]}",
        )


def norm_geometry(spec: Any, shape: Shape, key: str = "") -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Normalization's (kept axes of the batched input, statistics shape), as Keras's ``build``."""
    ndim = len(shape) + 1
    full = (None, *shape)
    keep = []
    for a in spec.axis:
        if a < -ndim or a >= ndim:
            raise ConfigError(
                f"Normalization expected every axis in [-{ndim}, {ndim}) for an input of shape "
                f"{format_shape(shape)}, received axis {list(spec.axis)}",
                key=f"{key}.axis" if key else "",
            )
        keep.append(a % ndim)
    kept = tuple(sorted(set(keep)))
    for d in kept:
        if full[d] is None:
            raise ConfigError(
                f"Normalization expected the kept axes to have a known size, received axis {d} of "
                f"shape {format_shape(shape)}",
                key=f"{key}.axis" if key else "",
                hint="the batch axis (0) cannot be kept",
            )
    stat_shape = tuple(int(full[d]) for d in kept)  # type: ignore[arg-type]
    if spec.mean is not None and isinstance(spec.mean, tuple):
        last = stat_shape[-1] if stat_shape else 1
        if len(spec.mean) not in (1, last):
            raise ConfigError(
                f"Normalization expected mean/variance of length 1 or {last} (the last kept axis), "
                f"received {len(spec.mean)}",
                key=f"{key}.mean" if key else "",
            )
    return kept, stat_shape


def _same(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    return shape, 0, 0


def _image_same(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _check_image(spec, shape, key)
    return shape, 0, 0


def _normalization(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _, stat_shape = norm_geometry(spec, shape, key)
    if spec.mean is not None:
        return shape, 0, 0  # constants from the config, no variables (Keras)
    return shape, 0, 2 * math.prod(stat_shape) + 1  # mean, variance and the int32 count


def _resized(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _check_image(spec, shape, key)
    if channels_first(spec):
        return (shape[0], spec.height, spec.width), 0, 0
    return (spec.height, spec.width, shape[2]), 0, 0


PREPROCESS_RULES: dict[str, Rule] = {
    "Rescaling": _same,
    "Normalization": _normalization,
    "Resizing": _resized,
    "CenterCrop": _resized,
    "RandomCrop": _resized,
    "RandomFlip": _image_same,
    "RandomRotation": _image_same,
    "RandomZoom": _image_same,
    "RandomTranslation": _image_same,
    "RandomContrast": _image_same,
    "RandomBrightness": _image_same,
}
