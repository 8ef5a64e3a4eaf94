"""Several outputs in ``compile``/``fit``, with Keras 3's semantics (``compile_utils.CompileLoss``):

- ``loss``/``loss_weights``: one value for every output, or a mapping by output name;
- the total loss is ``Σ weight_i · loss_i`` (regularization is added by the loop, as for one output);
- the logs add ``<output>_loss`` (unweighted) and ``<output>_<metric>`` for each output's metrics.

The loop needs no branch for this: :class:`MultiLoss` is called like a :class:`Loss` on the
model's pre-activations (a tuple), and the per-output values are :class:`Metric` objects, so the
loop's metric updates, resets and ``val_`` copies cover them. :class:`TensorTuple` lets a tuple of
per-input (or per-output) tensors be sliced like one tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from trainctl.errors import ConfigError
from trainctl.model.tensors import TensorTuple
from trainctl.training.losses import Loss, build_loss, check_targets
from trainctl.training.metrics import Metric, build_metrics

__all__ = ["MultiLoss", "OutputLoss", "OutputMetric", "TensorTuple", "compile_outputs", "per_output"]


def per_output(value: Any, names: Sequence[str], what: str, key: str) -> list[Any]:
    """Keras's rule: one value for every output, or a mapping with exactly the output names."""
    if isinstance(value, dict):
        missing = [n for n in names if n not in value]
        extra = [k for k in value if k not in names]
        if missing or extra:
            raise ConfigError(
                f"expected {what} for the outputs {', '.join(names)}, received keys {', '.join(value) or 'none'}",
                key=key,
                hint=f"missing: {', '.join(missing)}" if missing else f"not an output: {', '.join(extra)}",
            )
        return [value[n] for n in names]
    if isinstance(value, list) and what == "loss weights":
        if len(value) != len(names):
            raise ConfigError(f"expected {len(names)} loss weights (one per output), received {len(value)}", key=key)
        return list(value)
    return [value] * len(names)


class MultiLoss:
    """The weighted sum of per-output losses; keeps each output's last (unweighted) value."""

    takes_logits = True  # gets the pre-activations; applies each output's activation where needed

    def __init__(self, losses: list[Loss], weights: list[float], activations: list[Any]) -> None:
        self.losses = losses
        self.weights = weights
        self.activations = activations
        self.name = "+".join(loss.name for loss in losses)
        self.last: list[Tensor] = []

    def __call__(self, pre: Sequence[Tensor], y: Sequence[Tensor], w: Tensor | None) -> Tensor:
        parts = []
        for loss, p, act, yt in zip(self.losses, pre, self.activations, y, strict=True):
            parts.append(loss(p if loss.takes_logits or act is None else act(p), yt, w))
        self.last = [p.detach() for p in parts]
        total = self.weights[0] * parts[0]
        for weight, part in zip(self.weights[1:], parts[1:], strict=True):
            total = total + weight * part
        return total


class OutputLoss(Metric):
    """``<output>_loss``: the unweighted loss of one output, averaged over samples like ``loss``."""

    def __init__(self, name: str, source: MultiLoss, index: int) -> None:
        super().__init__(name)
        self.source, self.index = source, index

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return {"total": (), "count": ()}

    def update(self, y_pred: Any, y_true: Any, sample_weight: Tensor | None = None) -> None:
        value = self.source.last[self.index]
        state = self._ensure(value.device)
        n = int(y_true[0].shape[0])
        state["total"] += value.to(state["total"].dtype) * n
        state["count"] += n

    def _compute(self, state: dict[str, Tensor]) -> Tensor:
        return state["total"] / state["count"].clamp_min(1)


class OutputMetric(Metric):
    """``<output>_<metric>``: a metric fed one output and its targets."""

    def __init__(self, inner: Metric, output: str, index: int) -> None:
        super().__init__(f"{output}_{inner.name}")
        self.inner, self.index = inner, index

    def update(self, y_pred: Any, y_true: Any, sample_weight: Tensor | None = None) -> None:
        self.inner.update(y_pred[self.index], y_true[self.index], sample_weight)

    def result(self) -> float:
        return self.inner.result()

    def reset(self) -> None:
        self.inner.reset()

    def state_dict(self) -> dict[str, Tensor]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.inner.load_state_dict(state)


def _metric_lists(metrics: Any, names: Sequence[str]) -> list[list[Any]]:
    if isinstance(metrics, dict):
        unknown = [k for k in metrics if k not in names]
        if unknown:
            raise ConfigError(
                f"expected metrics keyed by output name ({', '.join(names)}), received {', '.join(unknown)}",
                key="compile.metrics",
            )
        return [list(metrics.get(n, [])) for n in names]
    if metrics and isinstance(metrics[0], list):
        if len(metrics) != len(names):
            raise ConfigError(f"expected one metric list per output ({len(names)}), received {len(metrics)}",
                              key="compile.metrics")  # fmt: skip
        return [list(m) for m in metrics]
    if not metrics:
        return [[] for _ in names]
    if len(metrics) != len(names):  # Keras: a flat list gives one metric per output
        raise ConfigError(
            f"expected metrics as a mapping by output name ({', '.join(names)}), or one per output; "
            f"received a flat list of {len(metrics)}",
            key="compile.metrics",
            hint="e.g. metrics: {" + f"{names[0]}: [accuracy]" + "}",
        )
    return [[m] for m in metrics]


def compile_outputs(
    compile_spec: Any, model: Any, y_shapes: Sequence[tuple[int, ...]]
) -> tuple[MultiLoss, list[Metric]]:
    """The loss and metrics of a model with several outputs (see module doc)."""
    names = list(model.output_names)
    if len(y_shapes) != len(names):
        raise ConfigError(f"expected one target array per output ({', '.join(names)}), received {len(y_shapes)}")
    specs = per_output(compile_spec.loss, names, "a loss", "compile.loss")
    weights = per_output(1.0 if compile_spec.loss_weights is None else compile_spec.loss_weights, names,
                         "loss weights", "compile.loss_weights")  # fmt: skip
    losses = []
    for i, (spec, name) in enumerate(zip(specs, names, strict=True)):
        key = f"compile.loss.{name}" if isinstance(compile_spec.loss, dict) else "compile.loss"
        check_targets(spec, tuple(y_shapes[i]), (None, *model.output_shapes[i]), key=key)
        losses.append(build_loss(spec, model.final_activations[i]))
    total = MultiLoss(losses, [float(w) for w in weights], model.output_activations())
    metrics: list[Metric] = [OutputLoss(f"{n}_loss", total, i) for i, n in enumerate(names)]
    for i, (specs_i, name) in enumerate(zip(_metric_lists(compile_spec.metrics, names), names, strict=True)):
        inner = build_metrics(specs_i, specs[i], y_true_shape=tuple(y_shapes[i]),
                              y_pred_shape=(y_shapes[i][0], *model.output_shapes[i]),
                              final_activation=model.final_activations[i])  # fmt: skip
        metrics += [OutputMetric(m, name, i) for m in inner]
    return total, metrics
