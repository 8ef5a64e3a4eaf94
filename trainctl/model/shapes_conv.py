"""Shape rules (output shape, trainable and non-trainable params) for Conv1D/2D/3D,
SeparableConv2D, DepthwiseConv2D, Conv2DTranspose, ZeroPadding2D, UpSampling2D, Cropping2D.

Pure Python, like :mod:`trainctl.model.shapes`, so summaries need no torch. The arithmetic is
Keras's ``compute_conv_output_shape`` and ``compute_conv_transpose_output_shape``; the builders
in :mod:`trainctl.model.conv` reuse :func:`same_pads` and :func:`transpose_crops` so the torch
side cannot disagree with these numbers.
"""

from __future__ import annotations

import math
from typing import Any

from trainctl.errors import ConfigError
from trainctl.model.shapes import Rule, Shape, format_shape

Dim = int | None


_AXES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def _expect(spec: Any, shape: Shape, key: str) -> None:
    """Input rank per sample: spatial axes plus channels, and a known channel count."""
    axes = (*_AXES[spec.rank], "channels")
    if len(shape) != len(axes) or shape[-1] is None:
        hint = None
        if len(shape) == len(axes) - 1:
            dims = ", ".join(["..."] * spec.rank)
            hint = f"add a channels axis first, e.g. {{type: Reshape, target_shape: [{dims}, 1]}}"
        raise ConfigError(
            f"expected a rank-{len(axes) + 1} input (batch, {', '.join(axes)}) with a known channel count, "
            f"received shape {format_shape(shape)}",
            key=key,
            hint=hint,
        )


def conv_length(n: Dim, k: int, stride: int, dilation: int, padding: str) -> Dim:
    """Keras's output length along one axis (``same`` and ``causal``: ceil(n / stride))."""
    if n is None:
        return None
    if padding == "valid":
        return (n - dilation * (k - 1) - 1) // stride + 1
    return (n - 1) // stride + 1


def same_pads(n: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """``padding="same"`` as Keras pads: the extra row/column goes at the end (bottom/right)."""
    eff = (k - 1) * dilation + 1
    total = max((math.ceil(n / stride) - 1) * stride + eff - n, 0)
    return total // 2, total - total // 2


def transpose_length(n: Dim, k: int, stride: int, dilation: int, padding: str, out_pad: int | None) -> Dim:
    """Keras's Conv2DTranspose output length along one axis."""
    if n is None:
        return None
    eff = (k - 1) * dilation + 1
    if padding == "valid":
        return (n - 1) * stride + eff + (max(eff, stride) - eff if out_pad is None else out_pad)
    return n * stride if out_pad is None else (n - 1) * stride + eff % 2 + out_pad


def transpose_crops(k: int, stride: int, dilation: int, padding: str, out_pad: int | None) -> tuple[int, int]:
    """What to cut from each end of torch's full ``(n-1)*s + eff`` transposed output (negative: pad).

    Keras (JAX semantics) pads the dilated input by ``(left, right)``; torch's full output equals a
    padding of ``eff - 1`` on both sides, so the difference is the crop.
    """
    eff = (k - 1) * dilation + 1
    if padding == "valid":
        left, right = eff - 1, eff - 1 + (max(eff, stride) - eff if out_pad is None else out_pad)
    else:
        total = stride + eff - 2 if out_pad is None else eff + eff % 2 - 2 + out_pad
        left = min(total // 2 + total % 2, eff - 1)
        right = total - left
    return eff - 1 - left, eff - 1 - right


def _spatial(spec: Any, shape: Shape, key: str) -> tuple[Dim, ...]:
    """Output spatial dims of a convolution; a zero or negative size is a config error, as in Keras."""
    ks, ss, ds = spec.ntuple("kernel_size"), spec.ntuple("strides"), spec.ntuple("dilation_rate")
    out = tuple(conv_length(n, k, s, d, spec.padding) for n, k, s, d in zip(shape[:-1], ks, ss, ds, strict=True))
    if any(o is not None and o <= 0 for o in out):
        raise ConfigError(
            f"expected an input at least as large as the kernel {ks} (dilation {ds}) with padding "
            f"{spec.padding!r}, received shape {format_shape(shape)}",
            key=key,
            hint="use padding: same, a smaller kernel_size, or fewer downsampling layers before this one",
        )
    return out


def _conv(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _expect(spec, shape, key)
    n_in = int(shape[-1])  # type: ignore[arg-type]
    if n_in % spec.groups:
        raise ConfigError(
            f"expected input channels divisible by groups={spec.groups}, received shape {format_shape(shape)}",
            key=key,
        )
    params = math.prod(spec.ntuple("kernel_size")) * (n_in // spec.groups) * spec.filters
    params += spec.filters if spec.use_bias else 0
    return (*_spatial(spec, shape, key), spec.filters), params, 0


def _depthwise(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _expect(spec, shape, key)
    n_out = int(shape[-1]) * spec.depth_multiplier  # type: ignore[arg-type]
    params = math.prod(spec.ntuple("kernel_size")) * n_out + (n_out if spec.use_bias else 0)
    return (*_spatial(spec, shape, key), n_out), params, 0


def _separable(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _expect(spec, shape, key)
    mid = int(shape[-1]) * spec.depth_multiplier  # type: ignore[arg-type]
    params = math.prod(spec.ntuple("kernel_size")) * mid + mid * spec.filters
    params += spec.filters if spec.use_bias else 0
    return (*_spatial(spec, shape, key), spec.filters), params, 0


def _transpose(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _expect(spec, shape, key)
    ks, ss, ds = spec.ntuple("kernel_size"), spec.ntuple("strides"), spec.ntuple("dilation_rate")
    ops = spec.ntuple("output_padding") if spec.output_padding is not None else (None,) * spec.rank
    out = tuple(
        transpose_length(n, k, s, d, spec.padding, p) for n, k, s, d, p in zip(shape[:-1], ks, ss, ds, ops, strict=True)
    )
    if any(o is not None and o <= 0 for o in out):
        raise ConfigError(f"expected a positive output size, received {format_shape((*out, spec.filters))}", key=key)
    params = math.prod(ks) * int(shape[-1]) * spec.filters + (spec.filters if spec.use_bias else 0)  # type: ignore[arg-type]
    return (*out, spec.filters), params, 0


def _grow(n: Dim, before: int, after: int) -> Dim:
    return None if n is None else n + before + after


def _zero_padding(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _expect(spec, shape, key)
    (top, bottom), (left, right) = spec.pads()
    return (_grow(shape[0], top, bottom), _grow(shape[1], left, right), shape[2]), 0, 0


def _cropping(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _expect(spec, shape, key)
    (top, bottom), (left, right) = spec.crops()
    out = (_grow(shape[0], -top, -bottom), _grow(shape[1], -left, -right), shape[2])
    if any(d is not None and d <= 0 for d in out[:2]):
        raise ConfigError(
            f"expected an input larger than the cropping {spec.crops()}, received shape {format_shape(shape)}",
            key=key,
        )
    return out, 0, 0


def _up_sampling(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    _expect(spec, shape, key)
    sh, sw = spec.ntuple("size")
    h, w, c = shape
    return (None if h is None else h * sh, None if w is None else w * sw, c), 0, 0


CONV_RULES: dict[str, Rule] = {
    "Conv1D": _conv,
    "Conv2D": _conv,
    "Conv3D": _conv,
    "SeparableConv2D": _separable,
    "DepthwiseConv2D": _depthwise,
    "Conv2DTranspose": _transpose,
    "ZeroPadding2D": _zero_padding,
    "UpSampling2D": _up_sampling,
    "Cropping2D": _cropping,
}
