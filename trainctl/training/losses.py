"""Keras losses on torch tensors, with Keras's formulas, clipping and reductions.

Keras computes crossentropy on probabilities: it renormalises them, clips them to
``[1e-7, 1 - 1e-7]`` and takes the log. We do the same, except when the model ends in the
activation the loss undoes (softmax for categorical losses, sigmoid for binary crossentropy):
there the trainer hands us the last layer's pre-activation and we compute ``log_softmax`` /
``logsigmoid`` and clamp the *log* to ``[log 1e-7, log(1 - 1e-7)]``. Because ``log`` is monotone
that is exactly Keras's clip-then-log, but it never forms ``log(softmax)`` from rounded
probabilities, so it is stable and its gradient is the textbook ``p - y``. (Where a float32
probability rounds towards 1 without reaching the clip, Keras's ``log(1 - p)`` suffers
cancellation; the fused value is the accurate one there.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from trainctl.errors import ConfigError, DataError

EPSILON = 1e-7  # keras.backend.epsilon()
# Keras clips float32 tensors, so the bounds are the float32 roundings of 1e-7 and 1 - 1e-7.
P_LO = float(np.float32(EPSILON))
P_HI = float(np.float32(1.0 - EPSILON))
LOG_LO = math.log(P_LO)
LOG_HI = math.log(P_HI)
# Keras's binary crossentropy takes log(1 - clip(p)) in float32, and 1 - float32(1 - 1e-7) is
# 1.19e-7, not 1e-7: the bounds on log(1 - p) are not those on log(p).
LOG1M_LO = math.log(float(np.float32(1.0) - np.float32(P_HI)))
LOG1M_HI = math.log(float(np.float32(1.0) - np.float32(P_LO)))

# A loss function maps aligned (y_true, y_pred) to per-element values (the batch axis first,
# Keras's last-axis reduction already applied) and an optional validity mask (ignore_class).
Values = tuple[Tensor, Tensor | None]
LossFn = Callable[[Tensor, Tensor], Values]

CATEGORICAL = ("categorical_crossentropy", "sparse_categorical_crossentropy")


def align_ranks(a: Tensor, b: Tensor, expand_rank_1: bool = True) -> tuple[Tensor, Tensor]:
    """Keras's ``squeeze_or_expand_to_same_rank``: fix a rank gap of one caused by a last axis of 1.

    So ``y_true`` of shape (N,) meets an output of shape (N, 1) the way it does in Keras.
    """
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        if b.ndim == 1 and expand_rank_1:
            b = b.unsqueeze(-1)
        else:
            a = a.squeeze(-1)
    elif b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        if a.ndim == 1 and expand_rank_1:
            a = a.unsqueeze(-1)
        else:
            b = b.squeeze(-1)
    return a, b


def as_float(x: Tensor) -> Tensor:
    """Losses run in float32 at least, like Keras's float32 loss dtype (also under autocast)."""
    if x.dtype in (torch.float32, torch.float64):
        return x
    return x.float()


def divide_no_nan(num: Tensor, den: Tensor) -> Tensor:
    """Keras's ``divide_no_nan``: 0 where the denominator is 0, without NaN gradients."""
    nonzero = den != 0
    return torch.where(nonzero, num / torch.where(nonzero, den, torch.ones_like(den)), 0.0)


class Loss:
    """A Keras loss: ``loss(y_out, y_true, sample_weight)`` returns the reduced scalar.

    ``takes_logits`` is True when ``y_out`` must be the last layer's pre-activation (the fused
    softmax/sigmoid path); otherwise ``y_out`` is the model's output.
    """

    def __init__(
        self, name: str, fn: LossFn, *, reduction: str = "sum_over_batch_size", takes_logits: bool = False
    ) -> None:
        self.name = name
        self.reduction = reduction
        self.takes_logits = takes_logits
        self._fn = fn
        self._sparse = name == "sparse_categorical_crossentropy"

    def __repr__(self) -> str:
        return f"Loss({self.name!r}, reduction={self.reduction!r}, takes_logits={self.takes_logits})"

    def values(self, y_out: Tensor, y_true: Tensor) -> Values:
        """Per-element losses after Keras's last-axis reduction, and the ignore_class mask."""
        y_pred = as_float(y_out)
        if not self._sparse:
            y_true = y_true.to(y_pred.dtype)
        y_true, y_pred = align_ranks(y_true, y_pred)
        return self._fn(y_true, y_pred)

    def per_sample(self, y_out: Tensor, y_true: Tensor) -> Tensor:
        """One unweighted loss per sample, shape (N,): the mean over any remaining axes."""
        values, mask = self.values(y_out, y_true)
        if values.ndim == 1:
            return values
        flat = values.reshape(values.shape[0], -1)
        if mask is None:
            return flat.mean(1)
        valid = mask.reshape(values.shape[0], -1).to(flat.dtype)
        return divide_no_nan(flat.sum(1), valid.sum(1))

    def __call__(self, y_out: Tensor, y_true: Tensor, sample_weight: Tensor | None = None) -> Tensor:
        """Keras's ``reduce_weighted_values``: weight, then sum and divide by the element count.

        With ``sample_weight`` the divisor is still the count, not the weight sum. With
        ``ignore_class`` it is the number of valid elements. ``reduction="none"`` returns the sum
        of the weighted values: a scalar is needed for ``backward`` and summing is what gradient
        descent on Keras's unreduced loss amounts to.
        """
        values, mask = self.values(y_out, y_true)
        if sample_weight is not None:
            weight = as_float(sample_weight.to(values.device))
            values, weight = align_ranks(values, weight.to(values.dtype))
            values = values * weight
        total = values.sum()
        if self.reduction in ("sum", "none") or values.ndim == 0:
            return total
        if mask is not None:
            return divide_no_nan(total, mask.sum().to(total.dtype))
        count = values.numel()
        return total / count if count else total


# ---------------------------------------------------------------------------------------------
# the loss functions; each gets aligned float tensors (sparse labels stay integer)


def _mse(t: Tensor, p: Tensor) -> Values:
    return torch.square(t - p).mean(-1), None


def _mae(t: Tensor, p: Tensor) -> Values:
    return torch.abs(t - p).mean(-1), None


def _mape(t: Tensor, p: Tensor) -> Values:
    diff = torch.abs((t - p) / torch.clamp(torch.abs(t), min=EPSILON))
    return 100.0 * diff.mean(-1), None


def _msle(t: Tensor, p: Tensor) -> Values:
    first = torch.log(torch.clamp(p, min=EPSILON) + 1.0)
    second = torch.log(torch.clamp(t, min=EPSILON) + 1.0)
    return torch.square(first - second).mean(-1), None


def _huber(delta: float) -> LossFn:
    def fn(t: Tensor, p: Tensor) -> Values:
        error = p - t
        abs_error = torch.abs(error)
        quadratic = 0.5 * torch.square(error)
        linear = delta * abs_error - 0.5 * delta**2
        return torch.where(abs_error <= delta, quadratic, linear).mean(-1), None

    return fn


def _log_cosh(t: Tensor, p: Tensor) -> Values:
    x = p - t
    return (x + F.softplus(-2.0 * x) - math.log(2.0)).mean(-1), None


def _hinge(t: Tensor, p: Tensor) -> Values:
    # Keras turns 0/1 labels into -1/1 when *every* label in the batch is 0 or 1.
    is_binary = torch.all((t == 0) | (t == 1))
    t = torch.where(is_binary, 2.0 * t - 1.0, t)
    return torch.clamp(1.0 - t * p, min=0.0).mean(-1), None


def _poisson(t: Tensor, p: Tensor) -> Values:
    return (p - t * torch.log(p + EPSILON)).mean(-1), None


def _kl_divergence(t: Tensor, p: Tensor) -> Values:
    t = torch.clamp(t, EPSILON, 1.0)
    p = torch.clamp(p, EPSILON, 1.0)
    return (t * torch.log(t / p)).sum(-1), None


def _l2_normalize(x: Tensor, axis: int) -> Tensor:
    inv_norm = torch.rsqrt(torch.square(x).sum(axis, keepdim=True))
    return x * torch.clamp(inv_norm, max=1.0 / EPSILON)


def _cosine_similarity(axis: int) -> LossFn:
    def fn(t: Tensor, p: Tensor) -> Values:
        return -(_l2_normalize(t, axis) * _l2_normalize(p, axis)).sum(axis), None

    return fn


def _log_probs(p: Tensor, mode: str) -> Tensor:
    """Log-probabilities on the last axis. mode: "logits", "fused" (pre-softmax) or "probs"."""
    if mode == "logits":
        return F.log_softmax(p, dim=-1)
    if mode == "fused":
        return torch.clamp(F.log_softmax(p, dim=-1), LOG_LO, LOG_HI)
    p = p / p.sum(-1, keepdim=True)
    return torch.log(torch.clamp(p, P_LO, P_HI))


def _binary_crossentropy(mode: str, label_smoothing: float) -> LossFn:
    def fn(t: Tensor, p: Tensor) -> Values:
        if label_smoothing:
            t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
        if mode == "logits":
            elements = F.binary_cross_entropy_with_logits(p, t, reduction="none")
        else:
            if mode == "fused":
                log_p = torch.clamp(F.logsigmoid(p), LOG_LO, LOG_HI)
                log_not_p = torch.clamp(F.logsigmoid(-p), LOG1M_LO, LOG1M_HI)
            else:
                p = torch.clamp(p, P_LO, P_HI)
                log_p, log_not_p = torch.log(p), torch.log1p(-p)
            elements = -(t * log_p + (1.0 - t) * log_not_p)
        return elements.mean(-1), None

    return fn


def _categorical_crossentropy(mode: str, label_smoothing: float) -> LossFn:
    def fn(t: Tensor, p: Tensor) -> Values:
        if label_smoothing:
            t = t * (1.0 - label_smoothing) + label_smoothing / t.shape[-1]
        return -(t * _log_probs(p, mode)).sum(-1), None

    return fn


def _sparse_categorical_crossentropy(mode: str, ignore_class: int | None) -> LossFn:
    def fn(t: Tensor, p: Tensor) -> Values:
        if t.ndim == p.ndim and t.shape[-1] == 1:
            t = t.squeeze(-1)
        labels = t.long()
        mask = None
        if ignore_class is not None:
            mask = labels != ignore_class
            labels = torch.where(mask, labels, 0)
        losses = -_log_probs(p, mode).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        if mask is not None:
            losses = torch.where(mask, losses, 0.0)
        return losses, mask

    return fn


_PLAIN: dict[str, LossFn] = {
    "mean_squared_error": _mse,
    "mean_absolute_error": _mae,
    "mean_absolute_percentage_error": _mape,
    "mean_squared_logarithmic_error": _msle,
    "log_cosh": _log_cosh,
    "hinge": _hinge,
    "poisson": _poisson,
    "kl_divergence": _kl_divergence,
}

# the activation each crossentropy can fuse with
_FUSES_WITH = {
    "categorical_crossentropy": "softmax",
    "sparse_categorical_crossentropy": "softmax",
    "binary_crossentropy": "sigmoid",
}


def build_loss(spec: Any, final_activation: str) -> Loss:
    """The loss for a ``compile.loss`` spec, fused with the final activation where exact."""
    name: str = spec.type
    kw = spec.kwargs()
    reduction = kw.pop("reduction", "sum_over_batch_size")
    takes_logits = False
    if name in _PLAIN:
        fn = _PLAIN[name]
    elif name == "huber":
        fn = _huber(kw["delta"])
    elif name == "cosine_similarity":
        fn = _cosine_similarity(kw["axis"])
    elif name in _FUSES_WITH:
        fuses_with = _FUSES_WITH[name]
        if kw["from_logits"]:
            if final_activation in ("softmax", "sigmoid"):
                raise ConfigError(
                    f"expected a linear last layer for {name} with from_logits: true, "
                    f"received a {final_activation} activation",
                    key="compile.loss.from_logits",
                    hint="drop from_logits, or set the last layer's activation to linear",
                )
            mode = "logits"
        else:
            mode = "fused" if final_activation == fuses_with else "probs"
            takes_logits = mode == "fused"
        if name == "binary_crossentropy":
            fn = _binary_crossentropy(mode, kw["label_smoothing"])
        elif name == "categorical_crossentropy":
            fn = _categorical_crossentropy(mode, kw["label_smoothing"])
        else:
            fn = _sparse_categorical_crossentropy(mode, kw["ignore_class"])
    else:  # pragma: no cover - the config layer only admits the names above
        raise ConfigError(f"expected a known loss, received {name!r}", key="compile.loss")
    return Loss(name, fn, reduction=reduction, takes_logits=takes_logits)


# ---------------------------------------------------------------------------------------------
# target checks, run once before training so a shape mistake fails fast with a remedy


def _fmt(dims: tuple[Any, ...]) -> str:
    """``(N, 10)``: the batch axis as N, since the number of samples is not the point."""
    parts = ["N", *(str(d) for d in dims)]
    return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"


def _same_after_alignment(y: tuple[Any, ...], out: tuple[Any, ...]) -> bool:
    """Whether Keras's rank alignment makes the shapes equal (no silent broadcasting)."""
    if len(y) == len(out) + 1 and y[-1] == 1:
        y = y[:-1]
    elif len(out) == len(y) + 1 and out[-1] == 1:
        out = out[:-1]
    return y[1:] == out[1:]


def check_targets(
    loss_spec: Any, y_shape: tuple[Any, ...], out_shape: tuple[Any, ...], *, key: str = "compile.loss"
) -> None:
    """Raise DataError when targets of ``y_shape`` cannot meet outputs of ``out_shape`` under the loss.

    Only trailing axes are compared; axis 0 is the batch. Keras itself would often broadcast
    silently (targets (N, 1) against outputs (N, 3)) and train on nonsense.
    """
    name: str = loss_spec.type
    y, out = tuple(y_shape), tuple(out_shape)
    width = out[-1] if len(out) > 1 else 1
    labels_like = y[1:] in (out[1:-1], (*out[1:-1], 1))
    if name in CATEGORICAL and width == 1:
        raise DataError(
            f"expected a model output with one unit per class for {name}, received output of shape {out}",
            key=key,
            hint="for two classes use binary_crossentropy with a sigmoid output, or give the last layer "
            "one unit per class",
        )
    if name == "sparse_categorical_crossentropy":
        if labels_like:
            return
        if y[1:] == out[1:]:
            raise DataError(
                f"expected integer class labels of shape {_fmt(out[1:-1])} for {name}, "
                f"received one-hot targets of shape {y}",
                key=key,
                hint="use categorical_crossentropy, or remove the one_hot step from data.y",
            )
        raise DataError(
            f"expected integer class labels of shape {_fmt(out[1:-1])} for {name} "
            f"(model output {_fmt(out[1:])}), received targets of shape {y}",
            key=key,
        )
    if name == "categorical_crossentropy":
        if y[1:] == out[1:]:
            return
        if labels_like:
            raise DataError(
                f"expected one-hot targets of shape {_fmt(out[1:])} for {name}, received labels of shape {y}",
                key=key,
                hint=f"add `y: [{{one_hot: {width}}}]` under data, or use sparse_categorical_crossentropy",
            )
        raise DataError(
            f"expected targets of shape {_fmt(out[1:])} (the model output) for {name}, received targets of shape {y}",
            key=key,
            hint=f"give the last layer {y[-1]} units" if len(y) == len(out) else None,
        )
    if _same_after_alignment(y, out):
        return
    if name == "binary_crossentropy" and labels_like:
        raise DataError(
            f"expected targets of shape {_fmt(out[1:])} for binary_crossentropy on an output of width "
            f"{width}, received labels of shape {y}",
            key=key,
            hint=f"for {width} exclusive classes use sparse_categorical_crossentropy with a softmax "
            "output; for one binary label give the last layer 1 unit",
        )
    hint = None
    if len(y) == len(out) and len(y) > 1:
        hint = f"give the last layer {y[-1]} units to match the {y[-1]} target columns"
    raise DataError(
        f"expected targets of shape {_fmt(out[1:])} (the model output) for {name}, received targets of shape {y}",
        key=key,
        hint=hint,
    )
