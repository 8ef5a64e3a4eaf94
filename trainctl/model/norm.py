"""torch modules for pooling, normalization and reshaping layers, with Keras semantics and Keras weight layout.

Data is channels_last as in Keras; pooling moves the channel axis to position 1 with a zero-copy
``movedim`` view so the fused torch kernels run, and moves it back the same way.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from trainctl.model import shard
from trainctl.model.initializers import initialize
from trainctl.model.layers import Builder, KerasLayer, _penalty
from trainctl.model.shapes import Shape
from trainctl.model.shapes_norm import bn_axis, channels_first, ln_axes, pool_geometry

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """Keras/TF "same": ``ceil(n/s)`` outputs; the odd padding element goes after (bottom/right)."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class Pooling(KerasLayer):
    """MaxPooling and AveragePooling, 1D to 3D.

    "same" pads asymmetrically like Keras. Max pooling ignores the padding (``-inf``); average
    pooling divides by the number of valid elements in each window (TensorFlow's and JAX's
    semantics; Keras's torch backend instead counts replicated edge values when the padding is
    asymmetric).
    """

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.rank: int = spec.rank
        self.is_max = spec.type.startswith("Max")
        self.pool, self.strides = pool_geometry(spec)
        self.same = spec.padding == "same"
        self.channels_first = channels_first(spec)
        self._counts: dict[tuple[Any, ...], torch.Tensor] = {}  # "same" average divisors, per input size

    def _valid_fraction(self, x: torch.Tensor, pads: list[int]) -> torch.Tensor:
        """Per output position, the share of its window that lies inside the input (cached)."""
        key = (tuple(x.shape[2:]), x.device, x.dtype)
        frac = self._counts.get(key)
        if frac is None:
            # a normal tensor even when first met under inference_mode (validation), so training can use it
            with torch.inference_mode(False), torch.no_grad():
                ones = F.pad(torch.ones((1, 1, *x.shape[2:]), device=x.device, dtype=x.dtype), pads)
                frac = _AVG_POOL[self.rank](ones, self.pool, self.strides)
            self._counts[key] = frac
        return frac

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        if not self.channels_first:
            x = x.movedim(-1, 1)
        if self.same:
            sides = [same_padding(int(n), k, s) for n, k, s in zip(x.shape[2:], self.pool, self.strides, strict=True)]
            symmetric = all(a == b for a, b in sides)
            pads = [p for side in reversed(sides) for p in side]  # F.pad wants the last axis first
            if self.is_max:
                if symmetric:
                    out = _MAX_POOL[self.rank](x, self.pool, self.strides, [a for a, _ in sides])
                else:
                    out = _MAX_POOL[self.rank](F.pad(x, pads, value=-math.inf), self.pool, self.strides)
            elif symmetric:
                out = _AVG_POOL[self.rank](x, self.pool, self.strides, [a for a, _ in sides], count_include_pad=False)
            else:
                out = _AVG_POOL[self.rank](F.pad(x, pads), self.pool, self.strides).div_(self._valid_fraction(x, pads))
        else:
            pool = _MAX_POOL if self.is_max else _AVG_POOL
            out = pool[self.rank](x, self.pool, self.strides)
        return out if self.channels_first else out.movedim(1, -1)


class GlobalPooling(KerasLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        first = 2 if channels_first(spec) else 1
        self.dims = tuple(range(first, first + spec.rank))
        self.keepdims: bool = spec.keepdims
        self.is_max = "Max" in spec.type

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_max:
            return torch.amax(x, dim=self.dims, keepdim=self.keepdims)
        return torch.mean(x, dim=self.dims, keepdim=self.keepdims)


class BatchNormalization(KerasLayer):
    """Keras BatchNormalization: weights gamma, beta, then the buffers moving_mean, moving_variance.

    Training mode (and ``trainable``, as in Keras 3) normalizes with the batch statistics and
    updates ``moving = moving * momentum + batch * (1 - momentum)`` with the *biased* batch
    variance. torch's fused kernel computes the batch statistics once: it is asked to write them
    into scratch running stats with momentum 1, which stores the unbiased variance
    ``S / (n - 1)``; scaling by ``(n - 1) / n`` recovers Keras's ``S / n``.
    """

    moving_mean: torch.Tensor
    moving_variance: torch.Tensor

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.axis = bn_axis(spec, in_shape, name)
        channels = int(in_shape[self.axis - 1])  # type: ignore[arg-type]
        self.gamma = nn.Parameter(torch.empty(channels)) if spec.scale else None
        self.beta = nn.Parameter(torch.empty(channels)) if spec.center else None
        self.register_buffer("moving_mean", torch.empty(channels))
        self.register_buffer("moving_variance", torch.empty(channels))
        for tensor, init in (
            (self.gamma, spec.gamma_initializer),
            (self.beta, spec.beta_initializer),
            (self.moving_mean, spec.moving_mean_initializer),
            (self.moving_variance, spec.moving_variance_initializer),
        ):
            if tensor is not None:
                initialize(tensor.data, init)
        self.momentum = float(spec.momentum)
        self.epsilon = float(spec.epsilon)
        self.updates_stats: bool = spec.trainable  # Keras 3: a frozen BN always runs in inference mode
        self.gamma_regularizer = spec.gamma_regularizer
        self.beta_regularizer = spec.beta_regularizer
        self.has_regularizer = spec.gamma_regularizer is not None or spec.beta_regularizer is not None

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        xc = x if self.axis == 1 else x.movedim(self.axis, 1)
        cudnn = torch.backends.cudnn.enabled
        if self.training and self.updates_stats and shard.current() is not None:
            out = self._global_batch(xc)
        elif self.training and self.updates_stats:
            n = xc.numel() // max(xc.shape[1], 1)
            mean = torch.zeros_like(self.moving_mean)
            var = torch.zeros_like(self.moving_variance)
            # torch.batch_norm, not F.batch_norm: a single value per channel is legal in Keras
            # (variance 0, output beta), F.batch_norm refuses it
            out = torch.batch_norm(xc, self.gamma, self.beta, mean, var, True, 1.0, self.epsilon, cudnn)
            with torch.no_grad():
                self.moving_mean.mul_(self.momentum).add_(mean, alpha=1.0 - self.momentum)
                self.moving_variance.mul_(self.momentum)
                if n > 1:  # for n == 1 the batch variance is 0 and torch's unbiased value is undefined
                    self.moving_variance.add_(var, alpha=(1.0 - self.momentum) * (n - 1) / n)
        else:
            out = torch.batch_norm(
                xc, self.gamma, self.beta, self.moving_mean, self.moving_variance, False, 0.0, self.epsilon, cudnn
            )
        return out if self.axis == 1 else out.movedim(1, self.axis)

    def _global_batch(self, xc: torch.Tensor) -> torch.Tensor:
        """A distributed step: normalize with the GLOBAL batch's statistics, as one process does
        (Keras's ``synchronized: true``). Two differentiable all-reduces per layer (the sum, then
        the centred sum of squares), so the gradient also flows through the global mean and
        variance; torch's SyncBatchNorm would do this but refuses CPU tensors."""
        where = shard.current()
        assert where is not None
        dims = [0, *range(2, xc.dim())]
        view = (1, -1, *([1] * (xc.dim() - 2)))
        count = where.rows * math.prod(int(d) for d in xc.shape[2:])
        mean = shard.all_reduce_sum(xc.sum(dims)) / count
        centred = xc - mean.view(view)
        var = shard.all_reduce_sum((centred * centred).sum(dims)) / count  # biased, as Keras normalizes
        out = centred * torch.rsqrt(var + self.epsilon).view(view)
        if self.gamma is not None:
            out = out * self.gamma.view(view)
        if self.beta is not None:
            out = out + self.beta.view(view)
        with torch.no_grad():  # identical on every rank: the reduced sums are
            self.moving_mean.mul_(self.momentum).add_(mean.detach(), alpha=1.0 - self.momentum)
            self.moving_variance.mul_(self.momentum).add_(var.detach(), alpha=1.0 - self.momentum)
        return out

    def regularization(self) -> torch.Tensor | None:
        terms = [_penalty(r, w) for r, w in ((self.gamma_regularizer, self.gamma), (self.beta_regularizer, self.beta))
                 if r is not None and w is not None]  # fmt: skip
        return sum(terms[1:], terms[0]) if terms else None


class LayerNormalization(KerasLayer):
    """Keras LayerNormalization: normalizes over ``axis`` per sample; weights gamma, beta.

    Trailing axes use torch's fused ``layer_norm`` (as Keras's torch backend does); other axes
    use Keras's formula ``x * inv + (beta - mean * inv)``, ``inv = gamma / sqrt(var + eps)``.
    """

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        full = len(in_shape) + 1
        self.axes = ln_axes(spec, in_shape, name)
        self.param_shape = tuple(int(in_shape[a - 1]) for a in self.axes)  # type: ignore[arg-type]
        self.trailing = self.axes == tuple(range(full - len(self.axes), full))
        self.broadcast = tuple(int(in_shape[d - 1]) if d in self.axes else 1 for d in range(1, full))  # type: ignore[arg-type]
        self.gamma = nn.Parameter(torch.empty(self.param_shape)) if spec.scale else None
        self.beta = nn.Parameter(torch.empty(self.param_shape)) if spec.center else None
        if self.gamma is not None:
            initialize(self.gamma.data, spec.gamma_initializer)
        if self.beta is not None:
            initialize(self.beta.data, spec.beta_initializer)
        self.epsilon = float(spec.epsilon)
        self.gamma_regularizer = spec.gamma_regularizer
        self.beta_regularizer = spec.beta_regularizer
        self.has_regularizer = spec.gamma_regularizer is not None or spec.beta_regularizer is not None

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        if self.trailing:
            return F.layer_norm(x, self.param_shape, self.gamma, self.beta, self.epsilon)
        var, mean = torch.var_mean(x, dim=self.axes, keepdim=True, correction=0)
        inv = torch.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma.reshape(self.broadcast)
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + self.beta.reshape(self.broadcast)
        return x * inv + shift

    regularization = BatchNormalization.regularization


class SpatialDropout(KerasLayer):
    """Drops whole channels (one draw per sample and channel), scaling the rest by 1/(1-rate)."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.rate = float(spec.rate)
        self.two_d = spec.type == "SpatialDropout2D"
        self.channels_first = channels_first(spec)

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        if shard.current() is not None:
            return self._sharded(x)
        if self.two_d:
            if self.channels_first:
                return F.dropout2d(x, self.rate, True)
            return F.dropout2d(x.permute(0, 3, 1, 2), self.rate, True).permute(0, 2, 3, 1)
        return F.dropout1d(x.transpose(1, 2), self.rate, True).transpose(1, 2)

    def _sharded(self, x: torch.Tensor) -> torch.Tensor:
        """A distributed step: this rank's rows of the global (samples, channels) mask, drawn
        as F.dropout1d/dropout2d draw it on the CPU (bernoulli_ into (N, C, 1...), then div_)."""
        if self.two_d:
            xc = x if self.channels_first else x.permute(0, 3, 1, 2)
        else:
            xc = x.transpose(1, 2)
        ones = (1,) * (xc.dim() - 2)
        channels = int(xc.shape[1])
        noise = shard.global_draw(
            int(xc.shape[0]), lambda rows: xc.new_empty((rows, channels, *ones)).bernoulli_(1.0 - self.rate)
        )
        out = xc * noise.div(1.0 - self.rate)
        if self.two_d:
            return out if self.channels_first else out.permute(0, 2, 3, 1)
        return out.transpose(1, 2)


class RepeatVector(KerasLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.n: int = spec.n

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1).expand(-1, self.n, -1)  # a view, as cheap as Keras's repeat is not


class Permute(KerasLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.order = (0, *spec.dims)  # Keras's dims count from 1: the batch axis stays first

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.order)


NORM_BUILDERS: dict[str, Builder] = {
    "MaxPooling1D": Pooling,
    "MaxPooling2D": Pooling,
    "MaxPooling3D": Pooling,
    "AveragePooling1D": Pooling,
    "AveragePooling2D": Pooling,
    "AveragePooling3D": Pooling,
    "GlobalMaxPooling1D": GlobalPooling,
    "GlobalMaxPooling2D": GlobalPooling,
    "GlobalAveragePooling1D": GlobalPooling,
    "GlobalAveragePooling2D": GlobalPooling,
    "BatchNormalization": BatchNormalization,
    "LayerNormalization": LayerNormalization,
    "SpatialDropout1D": SpatialDropout,
    "SpatialDropout2D": SpatialDropout,
    "RepeatVector": RepeatVector,
    "Permute": Permute,
}
