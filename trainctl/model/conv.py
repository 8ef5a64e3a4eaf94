"""torch modules for convolution and spatial layers (channels_last in, channels_last out), with
Keras semantics and Keras weight layout.

Data stays channels_last as in Keras: each layer permutes ``(N, H, W, C)`` to the ``(N, C, H, W)``
*view* torch's fused kernels take (zero-copy; torch treats it as channels_last memory) and permutes
the result back. Kernels are parameters with Keras's shape (``(kh, kw, in, out)``...), so
serialization is a plain copy, but their memory is laid out as torch's channels_last weight
(``(out, kh, kw, in)``): the torch weight is then a free ``permute`` view, exact and copy-free
in every forward and backward.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from trainctl.model.initializers import initialize
from trainctl.model.layers import Builder, KerasLayer, _penalty
from trainctl.model.shapes import Shape
from trainctl.model.shapes_conv import same_pads, transpose_crops

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def keras_kernel(keras_shape: tuple[int, ...], init: Any) -> nn.Parameter:
    """A parameter of Keras shape ``(*spatial, a, b)`` stored as torch's ``(b, *spatial, a)``.

    Initialised on a contiguous tensor first, so a seeded initializer gives the same values as it
    would on any Keras-layout tensor.
    """
    *spatial, a, b = keras_shape
    value = torch.empty(keras_shape)
    initialize(value, init)
    storage = torch.empty(b, *spatial, a)
    param = storage.permute(*range(1, len(spatial) + 2), 0)
    param.copy_(value)
    return nn.Parameter(param)


def torch_weight(kernel: torch.Tensor) -> torch.Tensor:
    """Keras ``(*spatial, a, b)`` -> torch ``(b, a, *spatial)``: a view, contiguous in channels_last."""
    r = kernel.dim() - 2
    return kernel.permute(r + 1, r, *range(r))


def _to_torch(x: torch.Tensor) -> torch.Tensor:
    return x.movedim(-1, 1)


def _to_keras(x: torch.Tensor) -> torch.Tensor:
    return x.movedim(1, -1)


def _flat_pads(pads: list[tuple[int, int]]) -> tuple[int, ...]:
    """``[(before, after)]`` per spatial axis -> F.pad's order (last axis first)."""
    return tuple(p for pair in reversed(pads) for p in pair)


class _Conv(KerasLayer):
    """Shared by the convolutions: padding as Keras does it, bias, activation and regularizers."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.rank: int = spec.rank
        self.kernel_size = spec.ntuple("kernel_size")
        self.strides = spec.ntuple("strides")
        self.dilation = spec.ntuple("dilation_rate")
        self.padding: str = spec.padding
        self._penalties: list[tuple[Any, str]] = []
        self._static_pads = self._pads(in_shape[:-1])
        self.set_activation(spec.activation)

    def _bias(self, spec: Any, n: int) -> None:
        self.bias = nn.Parameter(torch.empty(n)) if spec.use_bias else None
        if self.bias is not None:
            initialize(self.bias.data, spec.bias_initializer)
            self._regularize(spec.bias_regularizer, "bias")

    def _regularize(self, regularizer: Any, weight: str) -> None:
        if regularizer is not None:
            self._penalties.append((regularizer, weight))

    @property
    def has_regularizer(self) -> bool:
        """Whether any weight of this layer is regularized (what Sequential checks)."""
        return bool(self._penalties)

    def regularization(self) -> torch.Tensor | None:
        terms = [_penalty(reg, getattr(self, weight)) for reg, weight in self._penalties]
        return sum(terms[1:], terms[0]) if terms else None

    def _pads(self, spatial: tuple[int | None, ...]) -> list[tuple[int, int]] | None:
        """Per-axis (before, after) zero padding; None when the size is only known at run time."""
        if self.padding == "valid":
            return [(0, 0)] * self.rank
        if self.padding == "causal":
            return [(self.dilation[0] * (self.kernel_size[0] - 1), 0)]
        if any(n is None for n in spatial) and max(self.strides) > 1:
            return None
        return [
            same_pads(n or 1, k, s, d)
            for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation, strict=True)
        ]

    def _padded(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """``x`` (torch layout) and the ``padding`` argument for torch's conv: symmetric padding is
        passed to the kernel; Keras's uneven "same" (extra at the end) or causal padding is F.pad."""
        pads = self._static_pads
        if pads is None:
            pads = self._pads(tuple(x.shape[2:]))
            assert pads is not None
        if all(a == b for a, b in pads):
            return x, tuple(a for a, _ in pads)
        return F.pad(x, _flat_pads(pads)), 0


class Conv(_Conv):
    """Conv1D / Conv2D / Conv3D: kernel ``(*kernel_size, in/groups, filters)``, bias ``(filters,)``."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        self.groups: int = spec.groups
        n_in = int(in_shape[-1])  # type: ignore[arg-type]
        self.kernel = keras_kernel((*self.kernel_size, n_in // spec.groups, spec.filters), spec.kernel_initializer)
        self._regularize(spec.kernel_regularizer, "kernel")
        self._bias(spec, spec.filters)
        self._conv = _CONV[self.rank]

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        x, padding = self._padded(_to_torch(x))
        y = self._conv(x, torch_weight(self.kernel), self.bias, self.strides, padding, self.dilation, self.groups)
        return _to_keras(y)


class DepthwiseConv2D(_Conv):
    """Keras names the weight ``kernel``, shape ``(kh, kw, in, depth_multiplier)``; output channel
    ``c * depth_multiplier + j`` is input channel ``c`` with filter ``j``, as torch's groups=in."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        self.n_in = int(in_shape[-1])  # type: ignore[arg-type]
        dm = spec.depth_multiplier
        self.kernel = _depthwise_kernel((*self.kernel_size, self.n_in, dm), spec.depthwise_initializer)
        self._regularize(spec.depthwise_regularizer, "kernel")
        self._bias(spec, self.n_in * dm)

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        x, padding = self._padded(_to_torch(x))
        w = _depthwise_weight(self.kernel)
        return _to_keras(F.conv2d(x, w, self.bias, self.strides, padding, self.dilation, self.n_in))


def _depthwise_kernel(keras_shape: tuple[int, ...], init: Any) -> nn.Parameter:
    """``(kh, kw, in, dm)`` stored as ``(in, dm, kh, kw)``, i.e. torch's ``(in*dm, 1, kh, kw)``."""
    kh, kw, n_in, dm = keras_shape
    value = torch.empty(keras_shape)
    initialize(value, init)
    param = torch.empty(n_in, dm, kh, kw).permute(2, 3, 0, 1)
    param.copy_(value)
    return nn.Parameter(param)


def _depthwise_weight(kernel: torch.Tensor) -> torch.Tensor:
    """Keras depthwise ``(kh, kw, in, dm)`` -> torch ``(in*dm, 1, kh, kw)`` (a view)."""
    return kernel.flatten(2).permute(2, 0, 1).unsqueeze(1)


class SeparableConv2D(_Conv):
    """Depthwise conv (strides, padding, dilation), then a 1x1 pointwise conv, then the bias."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        self.n_in = int(in_shape[-1])  # type: ignore[arg-type]
        dm = spec.depth_multiplier
        self.depthwise_kernel = _depthwise_kernel((*self.kernel_size, self.n_in, dm), spec.depthwise_initializer)
        self.pointwise_kernel = keras_kernel((1, 1, self.n_in * dm, spec.filters), spec.pointwise_initializer)
        self._regularize(spec.depthwise_regularizer, "depthwise_kernel")
        self._regularize(spec.pointwise_regularizer, "pointwise_kernel")
        self._bias(spec, spec.filters)

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        x, padding = self._padded(_to_torch(x))
        mid = F.conv2d(
            x, _depthwise_weight(self.depthwise_kernel), None, self.strides, padding, self.dilation, self.n_in
        )
        return _to_keras(F.conv2d(mid, torch_weight(self.pointwise_kernel), self.bias))


class Conv2DTranspose(_Conv):
    """Kernel ``(kh, kw, filters, in)`` (Keras's transposed layout), bias ``(filters,)``.

    As Keras's torch backend: torch's full transposed output, then the crop (or zero pad) that
    gives Keras's ``padding``/``output_padding`` window, which may be uneven.
    """

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        n_in = int(in_shape[-1])  # type: ignore[arg-type]
        self.kernel = keras_kernel((*self.kernel_size, spec.filters, n_in), spec.kernel_initializer)
        self._regularize(spec.kernel_regularizer, "kernel")
        self._bias(spec, spec.filters)
        out_pad = spec.ntuple("output_padding") if spec.output_padding is not None else (None, None)
        crops = [
            transpose_crops(k, s, d, spec.padding, p)
            for k, s, d, p in zip(self.kernel_size, self.strides, self.dilation, out_pad, strict=True)
        ]
        self._slices = (slice(None), slice(None), *(slice(max(a, 0), -b if b > 0 else None) for a, b in crops))
        neg = [(max(-a, 0), max(-b, 0)) for a, b in crops]
        self._extend = _flat_pads(neg) if any(a or b for a, b in neg) else None

    def _pads(self, spatial: tuple[int | None, ...]) -> list[tuple[int, int]] | None:
        return [(0, 0)] * self.rank  # the input is never padded; the output is cropped instead

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        fused = self.bias if self._extend is None else None  # zero-padded borders get the bias too
        y = F.conv_transpose2d(_to_torch(x), torch_weight(self.kernel), fused, self.strides, 0, 0, 1, self.dilation)
        y = y[self._slices]
        if self._extend is not None:
            y = F.pad(y, self._extend)
            if self.bias is not None:
                y = y + self.bias.view(1, -1, 1, 1)
        return _to_keras(y)


class ZeroPadding2D(KerasLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        (top, bottom), (left, right) = spec.pads()
        self.pad = (0, 0, left, right, top, bottom)  # F.pad order on (N, H, W, C): C, W, H

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad)


class Cropping2D(KerasLayer):
    """A slice: a view, no copy."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        (top, bottom), (left, right) = spec.crops()
        self.rows = slice(top, -bottom if bottom else None)
        self.cols = slice(left, -right if right else None)

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.rows, self.cols, :]


class UpSampling2D(KerasLayer):
    """``nearest`` repeats rows and columns (one broadcast copy, exact for any factor);
    ``bilinear`` is half-pixel-centre interpolation without antialiasing, as Keras's resize."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.size: tuple[int, ...] = spec.ntuple("size")
        self.interpolation: str = spec.interpolation

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        sh, sw = self.size
        if self.interpolation == "nearest":
            return x[:, :, None, :, None, :].expand(n, h, sh, w, sw, c).reshape(n, h * sh, w * sw, c)
        y = F.interpolate(_to_torch(x), size=(h * sh, w * sw), mode="bilinear", align_corners=False)
        return _to_keras(y)


CONV_BUILDERS: dict[str, Builder] = {
    "Conv1D": Conv,
    "Conv2D": Conv,
    "Conv3D": Conv,
    "SeparableConv2D": SeparableConv2D,
    "DepthwiseConv2D": DepthwiseConv2D,
    "Conv2DTranspose": Conv2DTranspose,
    "ZeroPadding2D": ZeroPadding2D,
    "UpSampling2D": UpSampling2D,
    "Cropping2D": Cropping2D,
}
