"""Keras metrics as streaming accumulators that stay on the device.

Each metric keeps sums (not batch means) in tensors on the device of its inputs, so the epoch
value is exact over all samples and ``update`` never synchronises with the host; ``result`` is
the only sync. Counts are kept in float64 (float32 on MPS, which has no float64) so they stay
exact far beyond float32's 2**24.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from trainctl.errors import ConfigError, DataError
from trainctl.training.losses import EPSILON, align_ranks, as_float, divide_no_nan

NEG_INF = -1e10  # Keras's stand-in for "not in the top k" (metrics_utils.NEG_INF)


def _acc_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


class Metric:
    """Base class: lazily allocated state tensors, created on the first update's device."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._state: dict[str, Tensor] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _ensure(self, device: torch.device) -> dict[str, Tensor]:
        state = self._state
        if state is None:
            dtype = _acc_dtype(device)
            state = {k: torch.zeros(s, dtype=dtype, device=device) for k, s in self._shapes().items()}
            self._state = state
        elif next(iter(state.values())).device != device:
            state = {k: v.to(device) for k, v in state.items()}
            self._state = state
        return state

    def update(self, y_pred: Tensor, y_true: Tensor, sample_weight: Tensor | None = None) -> None:
        raise NotImplementedError

    def _compute(self, state: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def result(self) -> float:
        """The epoch value so far (0.0 before any update, as Keras's divide_no_nan gives)."""
        if self._state is None:
            return 0.0
        return float(self._compute(self._state))

    def reset(self) -> None:
        if self._state is not None:
            for v in self._state.values():
                v.zero_()

    def state_dict(self) -> dict[str, Tensor]:
        return {} if self._state is None else {k: v.detach().clone() for k, v in self._state.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self._state = {k: v.detach().clone() for k, v in state.items()} if state else None


def _weight_like(sample_weight: Tensor, like: Tensor) -> Tensor:
    """Per-sample weights (N,) or (N, 1) broadcast over every non-batch axis of ``like``."""
    w = sample_weight.to(device=like.device, dtype=like.dtype)
    if w.shape == like.shape:
        return w
    w = w.reshape(w.shape[0], *([1] * (like.ndim - 1))) if w.numel() == like.shape[0] else w
    return w.expand_as(like)


# ---------------------------------------------------------------------------------------------
# mean metrics: Keras's MeanMetricWrapper (accuracies, mse, mae) and RootMeanSquaredError

ValueFn = Callable[[Tensor, Tensor], Tensor]  # (y_pred, y_true) -> values, batch axis first


class MeanMetric(Metric):
    """Keras's ``Mean``: the (weighted) sum of per-sample values over the (weighted) count."""

    def __init__(self, name: str, fn: ValueFn, *, root: bool = False) -> None:
        super().__init__(name)
        self._fn = fn
        self._root = root

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return {"total": (), "count": ()}

    def update(self, y_pred: Tensor, y_true: Tensor, sample_weight: Tensor | None = None) -> None:
        values = self._fn(as_float(y_pred), y_true.to(y_pred.device))
        state = self._ensure(values.device)
        values = values.to(state["total"].dtype)
        if values.ndim == 0:
            values = values.reshape(1)
        if sample_weight is None:
            count: Tensor | int = values.shape[0]
        else:
            # Keras's reduce_to_samplewise_values: mean the values down to the weight's rank.
            w = sample_weight.to(device=values.device, dtype=values.dtype)
            values, w = align_ranks(values, w)
            if values.ndim > w.ndim:
                values = values.mean(tuple(range(w.ndim, values.ndim)))
            w = torch.broadcast_to(w, values.shape)
            values = values * w
            if w.ndim > 1:
                w = w.mean(tuple(range(1, w.ndim)))
            count = w.sum()
        if values.ndim > 1:
            values = values.mean(tuple(range(1, values.ndim)))
        state["total"] += values.sum()
        state["count"] += count

    def _compute(self, state: dict[str, Tensor]) -> Tensor:
        mean = divide_no_nan(state["total"], state["count"])
        return torch.sqrt(mean) if self._root else mean


def _binary_accuracy(threshold: float) -> ValueFn:
    def fn(p: Tensor, t: Tensor) -> Tensor:
        t, p = align_ranks(t, p)
        return ((p > threshold).to(t.dtype) == t).float()

    return fn


def _categorical_accuracy(p: Tensor, t: Tensor) -> Tensor:
    return (torch.argmax(t, -1) == torch.argmax(p, -1)).float()


def _sparse_labels(t: Tensor, p: Tensor) -> Tensor:
    return t.squeeze(-1) if t.ndim == p.ndim and t.shape[-1] == 1 else t


def _sparse_categorical_accuracy(p: Tensor, t: Tensor) -> Tensor:
    t = _sparse_labels(t, p)
    return torch.eq(torch.argmax(p, -1), t).float()  # promotes like Keras: float labels compare as floats


def _in_top_k(p: Tensor, labels: Tensor, k: int) -> Tensor:
    """Keras's ``in_top_k`` on torch: ties with the k-th largest value count as a hit."""
    k = min(k, p.shape[-1])
    kth = torch.topk(p, k, dim=-1).values[..., -1:]
    target = torch.gather(p, -1, labels.long().unsqueeze(-1))
    return (target >= kth).squeeze(-1).float()


def _top_k_accuracy(k: int, sparse: bool) -> ValueFn:
    def fn(p: Tensor, t: Tensor) -> Tensor:
        labels = _sparse_labels(t, p) if sparse else torch.argmax(t, -1)
        return _in_top_k(p, labels, k)

    return fn


def _squared_error(p: Tensor, t: Tensor) -> Tensor:
    t, p = align_ranks(t.to(p.dtype), p)
    return torch.square(p - t)


def _mse(p: Tensor, t: Tensor) -> Tensor:
    return _squared_error(p, t).mean(-1)


def _mae(p: Tensor, t: Tensor) -> Tensor:
    t, p = align_ranks(t.to(p.dtype), p)
    return torch.abs(p - t).mean(-1)


# ---------------------------------------------------------------------------------------------
# confusion-matrix metrics: precision, recall, AUC


def _prepare_binary(
    y_pred: Tensor, y_true: Tensor, sample_weight: Tensor | None, num_classes: int | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Align predictions and labels as Keras does; integer labels are one-hot encoded first."""
    p = as_float(y_pred)
    t = y_true.to(p.device)
    if num_classes is not None:  # sparse labels against a multi-class output
        t = F.one_hot(_sparse_labels(t, p).long(), num_classes)
    p, t = align_ranks(p, t)
    w = None if sample_weight is None else _weight_like(sample_weight, p)
    return p, t != 0, w


class ConfusionMetric(Metric):
    """Keras's Precision / Recall at one threshold, with ``top_k`` and ``class_id``."""

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        threshold: float | None = None,
        top_k: int | None = None,
        class_id: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(name)
        self._kind = kind
        self._top_k = top_k
        self._class_id = class_id
        self._num_classes = num_classes
        default = 0.5 if top_k is None else NEG_INF
        self._threshold = default if threshold is None else threshold

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return {"tp": (), "fp": (), "fn": ()}

    def update(self, y_pred: Tensor, y_true: Tensor, sample_weight: Tensor | None = None) -> None:
        p, t, w = _prepare_binary(y_pred, y_true, sample_weight, self._num_classes)
        if self._top_k is not None:
            idx = torch.topk(p, min(self._top_k, p.shape[-1]), dim=-1).indices
            keep = torch.zeros_like(p, dtype=torch.bool).scatter_(-1, idx, True)
            p = torch.where(keep, p, NEG_INF)
        if self._class_id is not None:
            p, t = p[..., self._class_id], t[..., self._class_id]
            w = None if w is None else w[..., self._class_id]
        pos = p > self._threshold
        state = self._ensure(p.device)
        dtype = state["tp"].dtype
        weight = torch.ones_like(p, dtype=dtype) if w is None else w.to(dtype)
        state["tp"] += (weight * (t & pos)).sum()
        state["fp"] += (weight * (~t & pos)).sum()
        state["fn"] += (weight * (t & ~pos)).sum()

    def _compute(self, state: dict[str, Tensor]) -> Tensor:
        other = state["fp"] if self._kind == "precision" else state["fn"]
        return divide_no_nan(state["tp"], state["tp"] + other)


class AUC(Metric):
    """Keras's AUC: histograms of positives/negatives over ``num_thresholds`` evenly spaced buckets.

    The thresholds are Keras's ``[-eps, 1/(T-1), ..., (T-2)/(T-1), 1+eps]``; a prediction p counts
    as positive at threshold i when p > threshold i. Per batch we add each prediction's weight to
    its bucket (``ceil(p * (T-1)) - 1``, as Keras computes it); ``result`` turns the histograms
    into cumulative TP/FP counts with a reverse cumsum.
    """

    def __init__(
        self,
        name: str,
        *,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        multi_label: bool = False,
        from_logits: bool = False,
        num_labels: int = 1,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(name)
        self.num_thresholds = num_thresholds
        self._curve = curve
        self._summation = summation_method
        self._multi_label = multi_label
        self._from_logits = from_logits
        self._labels = num_labels if multi_label else 1
        self._num_classes = num_classes

    @property
    def thresholds(self) -> list[float]:
        t = self.num_thresholds
        return [0.0 - EPSILON] + [(i + 1) / (t - 1) for i in range(t - 2)] + [1.0 + EPSILON]

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return {"pos": (self.num_thresholds, self._labels), "neg": (self.num_thresholds, self._labels)}

    def update(self, y_pred: Tensor, y_true: Tensor, sample_weight: Tensor | None = None) -> None:
        p, t, w = _prepare_binary(y_pred, y_true, sample_weight, self._num_classes)
        if self._from_logits:
            p = torch.sigmoid(p)
        p = torch.clamp(p, 0.0, 1.0)
        n_t = self.num_thresholds
        bucket = (torch.ceil(p * (n_t - 1)) - 1).clamp_(0, n_t - 1).long()
        state = self._ensure(p.device)
        dtype = state["pos"].dtype
        weight = torch.ones_like(p, dtype=dtype) if w is None else w.to(dtype)
        label = t.to(dtype)
        if self._multi_label:  # one histogram column per label (the last axis)
            bucket = bucket * self._labels + torch.arange(self._labels, device=p.device)
        flat_bucket = bucket.reshape(-1)
        state["pos"].view(-1).index_add_(0, flat_bucket, (label * weight).reshape(-1))
        state["neg"].view(-1).index_add_(0, flat_bucket, ((1.0 - label) * weight).reshape(-1))

    def _compute(self, state: dict[str, Tensor]) -> Tensor:
        tp = state["pos"].flip(0).cumsum(0).flip(0)
        fp = state["neg"].flip(0).cumsum(0).flip(0)
        fn = state["pos"].sum(0) - tp
        tn = state["neg"].sum(0) - fp
        if self._curve == "PR" and self._summation == "interpolation":
            by_label = self._interpolate_pr(tp, fp, fn)
        else:
            recall = divide_no_nan(tp, tp + fn)
            if self._curve == "ROC":
                x, y = divide_no_nan(fp, fp + tn), recall
            else:
                x, y = recall, divide_no_nan(tp, tp + fp)
            if self._summation == "interpolation":
                heights = (y[:-1] + y[1:]) / 2.0
            elif self._summation == "minoring":
                heights = torch.minimum(y[:-1], y[1:])
            else:
                heights = torch.maximum(y[:-1], y[1:])
            by_label = ((x[:-1] - x[1:]) * heights).sum(0)
        return by_label.mean()

    @staticmethod
    def _interpolate_pr(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        """Davis & Goadrich interpolation of the PR curve, as Keras's ``interpolate_pr_auc``."""
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = divide_no_nan(dtp, torch.clamp(dp, min=0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = torch.where(both, divide_no_nan(p[:-1], torch.clamp(p[1:], min=0)), torch.ones_like(p[1:]))
        increment = divide_no_nan(slope * (dtp + intercept * torch.log(ratio)), torch.clamp(tp[1:] + fn[1:], min=0))
        return increment.sum(0)


# ---------------------------------------------------------------------------------------------
# building from specs


def resolve_accuracy(y_true_shape: Sequence[Any], y_pred_shape: Sequence[Any]) -> str:
    """Which accuracy ``"accuracy"`` means, from shapes only (Keras's compile_utils rule)."""
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    pred_last = y_pred_shape[-1] if y_pred_shape else 1
    true_last = y_true_shape[-1] if y_true_shape else 1
    if pred_last == 1:
        return "binary_accuracy"
    if len(y_true_shape) < len(y_pred_shape) or true_last == 1:
        return "sparse_categorical_accuracy"
    return "categorical_accuracy"


def _labels_are_sparse(y_true_shape: tuple[Any, ...], y_pred_shape: tuple[Any, ...]) -> bool:
    return resolve_accuracy(y_true_shape, y_pred_shape) == "sparse_categorical_accuracy"


def _check_label_form(kind: str, key: str, y_true: tuple[Any, ...], y_pred: tuple[Any, ...]) -> None:
    """Catch one-hot vs integer label mix-ups that Keras would silently score as nonsense."""
    width = y_pred[-1] if len(y_pred) > 1 else 1
    sparse = _labels_are_sparse(y_true, y_pred)
    if kind in ("categorical_accuracy", "top_k_categorical_accuracy") and (sparse or width == 1):
        raise DataError(
            f"expected one-hot targets of shape {y_pred} for {kind}, received targets of shape {y_true}",
            key=key,
            hint=f"use sparse_{kind} or accuracy" if sparse and width > 1 else "use binary_accuracy",
        )
    if kind in ("sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy") and not sparse:
        raise DataError(
            f"expected integer class labels of shape {y_pred[:-1]} for {kind}, received targets of shape {y_true}",
            key=key,
            hint=f"use {kind.removeprefix('sparse_')} or accuracy",
        )


def build_metric(spec: Any, *, key: str, y_true_shape: tuple[Any, ...], y_pred_shape: tuple[Any, ...]) -> Metric:
    """One metric from its spec; ``name`` defaults to Keras's default name for the class."""
    kind: str = spec.type
    name: str = spec.name or kind
    kw = spec.kwargs()
    if kind == "accuracy":
        kind = resolve_accuracy(y_true_shape, y_pred_shape)
    _check_label_form(kind, key, y_true_shape, y_pred_shape)
    width = y_pred_shape[-1] if len(y_pred_shape) > 1 else 1
    num_classes = width if _labels_are_sparse(y_true_shape, y_pred_shape) else None
    if kind == "binary_accuracy":
        return MeanMetric(name, _binary_accuracy(kw.get("threshold", 0.5)))
    if kind == "categorical_accuracy":
        return MeanMetric(name, _categorical_accuracy)
    if kind == "sparse_categorical_accuracy":
        return MeanMetric(name, _sparse_categorical_accuracy)
    if kind in ("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"):
        return MeanMetric(name, _top_k_accuracy(kw["k"], sparse=kind.startswith("sparse")))
    if kind == "mean_squared_error":
        return MeanMetric(name, _mse)
    if kind == "mean_absolute_error":
        return MeanMetric(name, _mae)
    if kind == "root_mean_squared_error":
        return MeanMetric(name, _squared_error, root=True)
    if kind in ("precision", "recall"):
        class_id = kw["class_id"]
        if class_id is not None and class_id >= width:
            raise ConfigError(
                f"expected class_id below the output width {width}, received {class_id}",
                key=f"{key}.class_id",
            )
        return ConfusionMetric(
            name,
            kind,
            threshold=kw["thresholds"],
            top_k=kw["top_k"],
            class_id=class_id,
            num_classes=num_classes,
        )
    if kind == "auc":
        if kw["multi_label"] and len(y_pred_shape) != 2:
            raise ConfigError(
                f"expected a model output of rank 2 for auc with multi_label, received shape {y_pred_shape}",
                key=f"{key}.multi_label",
            )
        return AUC(
            name,
            num_thresholds=kw["num_thresholds"],
            curve=kw["curve"],
            summation_method=kw["summation_method"],
            multi_label=kw["multi_label"],
            from_logits=kw["from_logits"],
            num_labels=int(width),
            num_classes=num_classes,
        )
    raise ConfigError(f"expected a known metric, received {kind!r}", key=key)  # pragma: no cover


def build_metrics(
    specs: Sequence[Any],
    loss_spec: Any,
    *,
    y_true_shape: tuple[Any, ...],
    y_pred_shape: tuple[Any, ...],
    final_activation: str,
) -> list[Metric]:
    """The metrics of ``compile.metrics``, in order; duplicate history keys are an error.

    ``update`` always receives the model's output (after ``final_activation``), as Keras's
    metrics do; ``loss_spec`` and ``final_activation`` are accepted for that contract.
    """
    del loss_spec, final_activation  # metric values follow Keras, which looks at shapes only
    metrics: list[Metric] = []
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        key = f"compile.metrics[{i}]"
        metric = build_metric(spec, key=key, y_true_shape=tuple(y_true_shape), y_pred_shape=tuple(y_pred_shape))
        if metric.name in seen or metric.name == "loss":
            raise ConfigError(
                f"expected distinct metric names (and none called 'loss'), received {metric.name!r} again",
                key=key,
                hint="give one of them a `name:`",
            )
        seen[metric.name] = i
        metrics.append(metric)
    return metrics


__all__ = [
    "AUC",
    "ConfusionMetric",
    "MeanMetric",
    "Metric",
    "build_metric",
    "build_metrics",
    "resolve_accuracy",
]
