"""torch modules for Keras's augmentation layers (RandomCrop, RandomFlip, RandomRotation, RandomZoom,
RandomTranslation, RandomContrast, RandomBrightness), with Keras 3 semantics.

They act only in training (the identity at inference, as Keras's ``predict``) and work on whole
batches on the device. Each one splits its work in two: ``RandomLayer.draw`` takes the parameters
for ``n`` samples from a CPU ``torch.Generator`` (the same numbers on every device), and
``RandomLayer.transform`` applies them to a batch. A distributed run can draw for the global batch
and apply its own slice of the rows.

Each random layer owns its generator: seeded from the layer's ``seed`` when the config gives one,
else from the run's seed (:func:`seed_augmentation`). :func:`generator_states` goes into the resume
state, so ``--resume`` continues the same draws.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from trainctl.config.layers_preprocess import factor_range
from trainctl.model import shard
from trainctl.model.layers import Builder, KerasLayer
from trainctl.model.preprocess import from_nchw, resize_nchw, to_nchw
from trainctl.model.shapes import Shape
from trainctl.model.shapes_preprocess import channels_first

Params = dict[str, torch.Tensor]

# ---------------------------------------------------------------------------------------------
# random layers


def uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` draws of U(low, high) in float32 on the CPU."""
    return low + (high - low) * torch.rand(n, generator=generator)


class RandomLayer(KerasLayer):
    """Base of the augmentation layers: ``draw`` parameters for n samples, then ``transform`` a batch."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.first = channels_first(spec)
        self.seed: int | None = spec.seed
        self.generator = torch.Generator()
        self.generator.manual_seed(spec.seed if spec.seed is not None else 0)

    def size(self, x: torch.Tensor) -> tuple[int, int]:
        hax, wax = (2, 3) if self.first else (1, 2)
        return int(x.shape[hax]), int(x.shape[wax])

    def draw(self, n: int, size: tuple[int, int], generator: torch.Generator | None) -> Params:
        """Parameters for ``n`` samples of spatial ``size``, each a CPU tensor with ``n`` rows."""
        raise NotImplementedError

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """Transform a batch with parameters that have one row per sample (on x's device)."""
        raise NotImplementedError

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        return x

    host_params = False  # True: ``transform`` reads its parameters on the host (no device copy, no sync)

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.infer(x)
        n = int(x.shape[0])
        where = shard.current()
        if where is None:
            params = self.draw(n, self.size(x), self.generator)
        else:  # a distributed step: draw for the global batch, as one process does; keep this rank's rows
            drawn = self.draw(where.rows, self.size(x), self.generator)
            params = {k: v.narrow(0, where.offset, n) for k, v in drawn.items()}
        if not self.host_params:
            params = {k: v.to(x.device, non_blocking=True) for k, v in params.items()}
        return self.transform(x, params)


class RandomFlip(RandomLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        hax, wax = (2, 3) if self.first else (1, 2)
        dims = {"horizontal": (wax,), "vertical": (hax,), "horizontal_and_vertical": (hax, wax)}
        self.dims = dims[spec.mode]

    def draw(self, n: int, size: tuple[int, int], generator: torch.Generator | None) -> Params:
        return {"flip": torch.rand(n, generator=generator) <= 0.5}  # Keras: uniform <= 0.5

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        mask = params["flip"].view(-1, *([1] * (x.dim() - 1)))
        return torch.where(mask, x.flip(self.dims), x)


class RandomCrop(RandomLayer):
    """Training: one window for the whole batch, as Keras (the row is repeated so a slice of the
    parameters still holds it). Inference: the largest centred window of the target aspect ratio,
    resized to the target, as Keras documents (Keras 3.15 on torch returns the input, #21868)."""

    host_params = True  # the window is a slice bound, read on the host

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        self.height, self.width = int(spec.height), int(spec.width)

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        if self.size(x) == (self.height, self.width):
            return x
        out = resize_nchw(to_nchw(x, self.first), self.height, self.width, crop_to_aspect_ratio=True)
        return from_nchw(out, self.first)

    def draw(self, n: int, size: tuple[int, int], generator: torch.Generator | None) -> Params:
        h, w = size
        if h > self.height and w > self.width:
            top = torch.randint(0, h - self.height + 1, (1,), generator=generator)
            left = torch.randint(0, w - self.width + 1, (1,), generator=generator)
            start = torch.cat([top, left]).expand(n, 2).clone()
        else:
            start = torch.full((n, 2), -1, dtype=torch.int64)  # too small: resized (Keras)
        return {"start": start}

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        start = params["start"]
        if len(start) == 0:
            return self.infer(x)
        top, left = (int(v) for v in start[0].tolist())  # one window: the same in every row
        if top < 0:
            return self.infer(x)
        hax, wax = (2, 3) if self.first else (1, 2)
        return x.narrow(hax, top, self.height).narrow(wax, left, self.width)


def _mirror(index: torch.Tensor, size: int) -> torch.Tensor:
    s = size - 1
    if s == 0:
        return torch.zeros_like(index)
    return torch.abs((index + s) % (2 * s) - s)


def _fix(index: torch.Tensor, size: int, fill_mode: str) -> torch.Tensor:
    """Out-of-range indices -> in range, as Keras's ``map_coordinates`` index fixers."""
    if fill_mode == "wrap":
        return index % size
    if fill_mode == "reflect":  # (d c b a | a b c d | d c b a)
        return torch.div(_mirror(2 * index + 1, 2 * size + 1) - 1, 2, rounding_mode="floor")
    return index.clamp(0, size - 1)  # nearest; constant masks these out


_GRID_PADDING = {"reflect": "reflection", "nearest": "border", "constant": "zeros"}


def _grid_sample(
    images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, fill_mode: str, fill_value: float
) -> torch.Tensor:
    """The fused torch kernel for bilinear sampling. With ``align_corners=False`` its reflection is
    about the image border (Keras's ``reflect``), ``border`` repeats the edge (``nearest``), and
    ``zeros`` plus ``fill_value`` times the missing weight is Keras's ``constant``."""
    n, h, w, _ = images.shape
    grid = torch.stack(((2.0 * cols + 1.0) / w - 1.0, (2.0 * rows + 1.0) / h - 1.0), dim=-1)
    nchw = images.permute(0, 3, 1, 2)
    mode = _GRID_PADDING[fill_mode]
    out = F.grid_sample(nchw, grid, mode="bilinear", padding_mode=mode, align_corners=False)
    if fill_mode == "constant" and fill_value != 0.0:
        ones = torch.ones((n, 1, h, w), device=images.device, dtype=out.dtype)
        inside = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out = out + fill_value * (1.0 - inside)
    return out.permute(0, 2, 3, 1)


def affine_transform(
    images: torch.Tensor,
    transform: torch.Tensor,
    *,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> torch.Tensor:
    """Keras's ``ops.image.affine_transform`` for NHWC images, vectorized over the batch.

    ``transform`` rows are ``[a0, a1, a2, b0, b1, b2, ...]``: output pixel (x, y) reads the input at
    ``(a0 x + a1 y + a2, b0 x + b1 y + b2)``. Bilinear or nearest (round half to even) sampling;
    ``fill_mode`` reflect, wrap, nearest or constant (``fill_value``).
    """
    n, h, w, c = images.shape
    t = transform.to(device=images.device, dtype=torch.float32)
    ys = torch.arange(h, device=images.device, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=images.device, dtype=torch.float32).view(1, 1, w)

    def col(i: int) -> torch.Tensor:
        return t[:, i].view(n, 1, 1)

    rows = ys * col(4) + xs * col(3) + col(5)  # (n, h, w)
    cols = ys * col(1) + xs * col(0) + col(2)

    if interpolation == "bilinear" and fill_mode in _GRID_PADDING:
        return _grid_sample(images, rows, cols, fill_mode, fill_value)
    if interpolation == "bilinear" and fill_mode == "wrap":
        # one wrapped row and column appended, coordinates taken modulo the size: the seam between
        # the last and first pixel interpolates as Keras's ``index % size`` does
        padded = torch.cat([images, images[:, :1]], dim=1)
        padded = torch.cat([padded, padded[:, :, :1]], dim=2)
        return _grid_sample(padded, torch.remainder(rows, h), torch.remainder(cols, w), "nearest", 0.0)

    def nodes(coord: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        if interpolation == "nearest":
            return [(torch.round(coord).to(torch.int64), None)]
        low = torch.floor(coord)
        up = coord - low
        low_i = low.to(torch.int64)
        return [(low_i, 1.0 - up), (low_i + 1, up)]

    flat = images.reshape(n, h * w, c)
    out = torch.zeros_like(flat)
    for r, wr in nodes(rows):
        for q, wq in nodes(cols):
            idx = (_fix(r, h, fill_mode) * w + _fix(q, w, fill_mode)).view(n, h * w, 1).expand(n, h * w, c)
            value = torch.gather(flat, 1, idx)
            if fill_mode == "constant":
                valid = ((r >= 0) & (r < h) & (q >= 0) & (q < w)).view(n, h * w, 1)
                value = torch.where(valid, value, torch.full_like(value, fill_value))
            if wr is not None and wq is not None:
                value = value * (wr * wq).view(n, h * w, 1)
            out = out + value
    return out.view(n, h, w, c)


class _AffineLayer(RandomLayer):
    """Rotation, zoom and translation: a per-sample affine matrix, then :func:`affine_transform`."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        self.fill_mode = spec.fill_mode
        self.interpolation = spec.interpolation
        self.fill_value = float(spec.fill_value)

    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        nhwc = x.permute(0, 2, 3, 1) if self.first else x
        out = affine_transform(
            nhwc,
            self.matrix(params, (int(nhwc.shape[1]), int(nhwc.shape[2]))),
            interpolation=self.interpolation,
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
        )
        return out.permute(0, 3, 1, 2) if self.first else out


def _rows(*cols: torch.Tensor) -> torch.Tensor:
    return torch.stack(cols, dim=1)


class RandomRotation(_AffineLayer):
    """Angle in degrees ``U(lower, upper) * 360``, about the image centre, counter-clockwise."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        self.low, self.high = factor_range(spec.factor)

    def draw(self, n: int, size: tuple[int, int], generator: torch.Generator | None) -> Params:
        return {"angle": uniform(n, self.low * 360.0, self.high * 360.0, generator)}

    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        theta = params["angle"].float() * (math.pi / 180.0)
        cos, sin = torch.cos(theta), torch.sin(theta)
        cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
        a2 = cx - cx * cos - cy * -sin
        b2 = cy - cx * sin - cy * cos
        return _rows(cos, -sin, a2, sin, cos, b2)


class RandomZoom(_AffineLayer):
    """Zoom factors ``1 + U(lower, upper)`` per axis; positive zooms out. No width factor: the
    height draw is used for both axes (Keras)."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        self.height_range = factor_range(spec.height_factor)
        self.width_range = None if spec.width_factor is None else factor_range(spec.width_factor)

    def draw(self, n: int, size: tuple[int, int], generator: torch.Generator | None) -> Params:
        hz = uniform(n, 1.0 + self.height_range[0], 1.0 + self.height_range[1], generator)
        wz = (
            hz
            if self.width_range is None
            else uniform(n, 1.0 + self.width_range[0], 1.0 + self.width_range[1], generator)
        )
        return {"zoom": _rows(hz, wz)}

    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        hz, wz = params["zoom"][:, 0].float(), params["zoom"][:, 1].float()
        zero = torch.zeros_like(hz)
        return _rows(wz, zero, (w - 1.0) / 2.0 * (1.0 - wz), zero, hz, (h - 1.0) / 2.0 * (1.0 - hz))


class RandomTranslation(_AffineLayer):
    """Shifts of ``U(lower, upper)`` times the height and width, in pixels; positive moves the
    content down / right."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        self.height_range = factor_range(spec.height_factor)
        self.width_range = factor_range(spec.width_factor)

    def draw(self, n: int, size: tuple[int, int], generator: torch.Generator | None) -> Params:
        h, w = size
        dy = uniform(n, *self.height_range, generator) * h
        dx = uniform(n, *self.width_range, generator) * w
        return {"shift": _rows(dy, dx)}

    def matrix(self, params: Params, size: tuple[int, int]) -> torch.Tensor:
        dy, dx = params["shift"][:, 0].float(), params["shift"][:, 1].float()
        one, zero = torch.ones_like(dy), torch.zeros_like(dy)
        return _rows(one, zero, -dx, zero, one, -dy)


class RandomContrast(RandomLayer):
    """``(x - mean) * c + mean`` with the per-image, per-channel mean over height and width,
    clipped to ``value_range``; ``c ~ U(1 - lower, 1 + upper)``."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        self.lower, self.upper = spec.factor
        self.value_range = tuple(float(v) for v in spec.value_range)

    def draw(self, n: int, size: tuple[int, int], generator: torch.Generator | None) -> Params:
        return {"contrast": uniform(n, 1.0 - self.lower, 1.0 + self.upper, generator)}

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        axes = (2, 3) if self.first else (1, 2)
        mean = x.mean(dim=axes, keepdim=True)
        c = params["contrast"].to(x.dtype).view(-1, 1, 1, 1)
        return ((x - mean) * c + mean).clamp(*self.value_range)


class RandomBrightness(RandomLayer):
    """``x + d`` clipped to ``value_range``, with ``d = U(lower, upper) * (high - low)`` per image."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(spec, in_shape, name)
        self.lower, self.upper = spec.factor
        self.value_range = tuple(float(v) for v in spec.value_range)

    def draw(self, n: int, size: tuple[int, int], generator: torch.Generator | None) -> Params:
        span = self.value_range[1] - self.value_range[0]
        return {"delta": uniform(n, self.lower, self.upper, generator) * span}

    def transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return (x + params["delta"].to(x.dtype).view(-1, 1, 1, 1)).clamp(*self.value_range)


AUGMENT_BUILDERS: dict[str, Builder] = {
    "RandomCrop": RandomCrop,
    "RandomFlip": RandomFlip,
    "RandomRotation": RandomRotation,
    "RandomZoom": RandomZoom,
    "RandomTranslation": RandomTranslation,
    "RandomContrast": RandomContrast,
    "RandomBrightness": RandomBrightness,
}


# ---------------------------------------------------------------------------------------------
# run-level hooks: seeding, resume state, adapt


def random_layers(model: torch.nn.Module) -> list[RandomLayer]:
    return [m for m in model.modules() if isinstance(m, RandomLayer)]


def seed_augmentation(model: torch.nn.Module, seed: int) -> None:
    """Seed every random layer that has no ``seed`` of its own from the run's seed (one stream each)."""
    for i, layer in enumerate(random_layers(model)):
        if layer.seed is None:
            layer.generator.manual_seed((int(seed) * 1_000_003 + 7_919 * (i + 1)) % (2**63))


def generator_states(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Each random layer's generator state, by layer name (for the resume state)."""
    return {layer.keras_name: layer.generator.get_state() for layer in random_layers(model)}


def set_generator_states(model: torch.nn.Module, states: dict[str, torch.Tensor]) -> None:
    layers = {layer.keras_name: layer for layer in random_layers(model)}
    if set(states) != set(layers):
        raise ValueError(f"augmentation generators: expected {sorted(layers)}, received {sorted(states)}")
    for name, state in states.items():
        layers[name].generator.set_state(state)
