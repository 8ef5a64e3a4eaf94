"""torch modules for Keras's preprocessing layers (Rescaling, Normalization, Resizing, CenterCrop),
with Keras 3 semantics, and Normalization's ``adapt``.

Images are channels_last, as in Keras. :func:`adapt_normalization` fits the Normalization layers on
the training rows in chunks (a streaming source can feed it the same way), as Keras's ``adapt``; the
augmentation layers live in :mod:`trainctl.model.augment`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from trainctl.model.layers import Builder, KerasLayer
from trainctl.model.shapes import Shape
from trainctl.model.shapes_preprocess import channels_first, norm_geometry

EPSILON = 1e-7  # keras.backend.epsilon(): Normalization's floor on sqrt(variance)

# ---------------------------------------------------------------------------------------------
# deterministic layers


class Rescaling(KerasLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.scale = float(spec.scale)
        self.offset = float(spec.offset)

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset


class Normalization(KerasLayer):
    """Adapted statistics are buffers ``mean``, ``variance`` (float32, the kept axes' shape) and
    ``count`` (int32 scalar, 0 as Keras writes it): Keras's three non-trainable variables, in order."""

    mean: torch.Tensor
    variance: torch.Tensor
    count: torch.Tensor

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        kept, stat_shape = norm_geometry(spec, in_shape)
        full = (1, *in_shape)
        self.kept = kept
        self.broadcast = [int(full[d]) if d in kept else 1 for d in range(len(full))]  # type: ignore[arg-type]
        self.invert = bool(spec.invert)
        self.adaptable = spec.mean is None
        self._fixed: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        if self.adaptable:
            self.register_buffer("mean", torch.zeros(stat_shape))
            self.register_buffer("variance", torch.ones(stat_shape))
            self.register_buffer("count", torch.zeros((), dtype=torch.int32))
            self._config: tuple[torch.Tensor, torch.Tensor] | None = None
        else:
            self._config = (self._expand(spec.mean), self._expand(spec.variance))

    def _expand(self, value: Any) -> torch.Tensor:
        """Config mean/variance -> the broadcast shape; a list lines up with the last kept axis (Keras)."""
        t = torch.as_tensor(value, dtype=torch.float32)
        if t.dim() == 0 or not self.kept:
            return t.reshape([1] * len(self.broadcast)).expand(self.broadcast).clone()
        shape = [1] * len(self.broadcast)
        shape[self.kept[-1]] = t.numel()
        return t.reshape(shape).expand(self.broadcast).clone()

    def stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._config is None:
            return self.mean.reshape(self.broadcast), self.variance.reshape(self.broadcast)
        hit = self._fixed.get(device)
        if hit is None:
            hit = (self._config[0].to(device), self._config[1].to(device))
            self._fixed[device] = hit
        return hit

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.stats(x.device)
        scale = torch.sqrt(var).clamp_min(EPSILON)
        if self.invert:
            return x * scale + mean
        return (x - mean) / scale

    def set_moments(self, mean: torch.Tensor, variance: torch.Tensor) -> None:
        with torch.no_grad():
            self.mean.copy_(mean.reshape(self.mean.shape))
            self.variance.copy_(variance.reshape(self.variance.shape))


def to_nchw(x: torch.Tensor, first: bool) -> torch.Tensor:
    return x if first else x.permute(0, 3, 1, 2)


def from_nchw(x: torch.Tensor, first: bool) -> torch.Tensor:
    return x if first else x.permute(0, 2, 3, 1)


def resize_nchw(
    x: torch.Tensor,
    height: int,
    width: int,
    *,
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    fill_value: float = 0.0,
    antialias: bool = False,
) -> torch.Tensor:
    """Keras's ``ops.image.resize`` on NCHW: the centred aspect crop or symmetric pad, then
    ``interpolate`` (``nearest`` is torch's ``nearest-exact``, as Keras's torch backend)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if crop_to_aspect_ratio:
        ch = max(min(h, int(float(w * height) / width)), 1)
        cw = max(min(w, int(float(h * width) / height)), 1)
        top, left = int(float(h - ch) / 2), int(float(w - cw) / 2)
        x = x[:, :, top : top + ch, left : left + cw]
    elif pad_to_aspect_ratio:
        ph = max(h, int(float(w * height) / width))
        pw = max(w, int(float(h * width) / height))
        top, left = int(float(ph - h) / 2), int(float(pw - w) / 2)
        if top > 0 or left > 0:  # the same amount on both sides, as Keras
            x = F.pad(x, (left, left, top, top), value=fill_value)
    if (int(x.shape[-2]), int(x.shape[-1])) == (height, width) and interpolation != "bicubic":
        return x.contiguous()
    mode = "nearest-exact" if interpolation == "nearest" else interpolation
    smooth = interpolation in ("bilinear", "bicubic")
    return F.interpolate(
        x, size=(height, width), mode=mode, align_corners=False if smooth else None, antialias=antialias and smooth
    )


class Resizing(KerasLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.spec = spec
        self.first = channels_first(spec)

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        out = resize_nchw(
            to_nchw(x, self.first),
            s.height,
            s.width,
            interpolation=s.interpolation,
            crop_to_aspect_ratio=s.crop_to_aspect_ratio,
            pad_to_aspect_ratio=s.pad_to_aspect_ratio,
            fill_value=s.fill_value,
            antialias=s.antialias,
        )
        return from_nchw(out, self.first)


def center_crop(x: torch.Tensor, height: int, width: int, first: bool) -> torch.Tensor:
    """Keras CenterCrop: offsets ``(H - h) // 2``; an input smaller than the target is cropped to
    the target aspect ratio and resized up (``smart_resize``)."""
    hax, wax = (2, 3) if first else (1, 2)
    h, w = int(x.shape[hax]), int(x.shape[wax])
    if h >= height and w >= width:
        return x.narrow(hax, (h - height) // 2, height).narrow(wax, (w - width) // 2, width)
    return from_nchw(resize_nchw(to_nchw(x, first), height, width, crop_to_aspect_ratio=True), first)


class CenterCrop(KerasLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.height, self.width = int(spec.height), int(spec.width)
        self.first = channels_first(spec)

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        return center_crop(x, self.height, self.width, self.first)


PREPROCESS_BUILDERS: dict[str, Builder] = {
    "Rescaling": Rescaling,
    "Normalization": Normalization,
    "Resizing": Resizing,
    "CenterCrop": CenterCrop,
}


# ---------------------------------------------------------------------------------------------
# adapt


class _Moments:
    """Streaming mean and population variance over the reduced axes (Chan's merge, in float64;
    float32 on MPS, which has no float64)."""

    def __init__(self, kept: tuple[int, ...]) -> None:
        self.kept = kept
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().to(torch.float32 if x.device.type == "mps" else torch.float64)
        reduce = [d for d in range(x.dim()) if d not in self.kept]
        n_b = math.prod(int(x.shape[d]) for d in reduce)
        if n_b == 0:
            return
        mean_b = x.mean(dim=reduce, keepdim=True) if reduce else x
        m2_b = ((x - mean_b) ** 2).sum(dim=reduce, keepdim=True) if reduce else torch.zeros_like(x)
        if self.mean is None or self.m2 is None:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * n_b / n)
        self.n = n


class _Captured(Exception):
    """Raised by the capture hook to stop the forward pass once a layer's input is known."""


def adapt_normalization(model: Any, batches: Callable[[], Iterable[Any]]) -> list[str]:
    """Fit every adaptable Normalization layer on its input, computed from ``batches()`` (the training
    rows, in chunks) through the layers before it in inference mode. One pass per such layer, in
    order, so a later one sees the earlier ones already fitted. Returns the names of those fitted.

    The layer's input is captured by a forward pre-hook that stops the pass there, so the same code
    serves chains and graphs (a graph runs its nodes in topological order)."""
    layers = [m for m in model.layers if isinstance(m, Normalization) and m.adaptable]
    fitted: list[str] = []
    if not layers:
        return fitted
    was_training = model.training
    model.eval()
    try:
        for layer in layers:
            moments = _Moments(layer.kept)
            seen: list[torch.Tensor] = []

            def capture(_module: Any, args: tuple[Any, ...], seen: list[torch.Tensor] = seen) -> None:
                seen.append(args[0])
                raise _Captured

            handle = layer.register_forward_pre_hook(capture)
            try:
                with torch.no_grad():
                    for xb in batches():
                        seen.clear()
                        with contextlib.suppress(_Captured):
                            model(xb)
                        if seen:
                            moments.update(seen[0])
            finally:
                handle.remove()
            if moments.mean is None or moments.m2 is None:
                continue  # no rows: keep Keras's un-adapted 0 / 1
            layer.set_moments(moments.mean.float(), (moments.m2 / moments.n).float())
            fitted.append(layer.keras_name)
    finally:
        model.train(was_training)
    return fitted


def chunks(x: Any, size: int = 4096) -> Callable[[], Iterable[Any]]:
    """``batches`` for :func:`adapt_normalization` over in-memory rows (a tensor, or a TensorTuple
    with one tensor per model input)."""
    n = int(x.shape[0])
    return lambda: (x[i : i + size] for i in range(0, n, size))
