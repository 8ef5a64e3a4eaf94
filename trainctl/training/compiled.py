"""Keras's ``model.compile`` step: the loss and metrics for one model and its targets.

Shared by training and evaluation, so both check targets and resolve metrics (``accuracy`` by
Keras's shape rule) in exactly the same way, and report the same numbers.
"""

from __future__ import annotations

from typing import Any

from trainctl.errors import ConfigError
from trainctl.training.losses import Loss, build_loss, check_targets
from trainctl.training.metrics import Metric, build_metrics


def compile_model(compile_spec: Any, model: Any, y_shape: Any) -> tuple[Loss, list[Metric]]:
    """Check the targets fit the loss and the model's output, then build the loss and metrics.
    A model with several outputs takes one target shape per output (see ``training.outputs``)."""
    if len(getattr(model, "output_names", ())) > 1:
        from trainctl.training.outputs import compile_outputs

        return compile_outputs(compile_spec, model, y_shape)  # type: ignore[return-value]
    if isinstance(compile_spec.loss, dict) or compile_spec.loss_weights not in (None, 1.0):
        raise ConfigError(
            "expected one loss and no loss_weights for a model with one output",
            key="compile.loss" if isinstance(compile_spec.loss, dict) else "compile.loss_weights",
        )
    specs = compile_spec.metrics
    if isinstance(specs, dict):  # keyed by the one output's name, as Keras accepts
        specs = [m for name in getattr(model, "output_names", []) for m in specs.get(name, [])]
    elif specs and isinstance(specs[0], list):
        specs = specs[0]
    check_targets(compile_spec.loss, tuple(y_shape), (None, *model.output_shape))
    loss = build_loss(compile_spec.loss, model.final_activation)
    metrics = build_metrics(
        specs,
        compile_spec.loss,
        y_true_shape=tuple(y_shape),
        y_pred_shape=(y_shape[0], *model.output_shape),
        final_activation=model.final_activation,
    )
    return loss, metrics
