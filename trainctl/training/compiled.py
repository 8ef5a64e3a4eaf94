"""Keras's ``model.compile`` step: the loss and metrics for one model and its targets.

Shared by training and evaluation, so both check targets and resolve metrics (``accuracy`` by
Keras's shape rule) in exactly the same way, and report the same numbers.
"""

from __future__ import annotations

from typing import Any

from trainctl.training.losses import Loss, build_loss, check_targets
from trainctl.training.metrics import Metric, build_metrics


def compile_model(compile_spec: Any, model: Any, y_shape: tuple[int, ...]) -> tuple[Loss, list[Metric]]:
    """Check the targets fit the loss and the model's output, then build the loss and metrics."""
    check_targets(compile_spec.loss, tuple(y_shape), (None, *model.output_shape))
    loss = build_loss(compile_spec.loss, model.final_activation)
    metrics = build_metrics(
        compile_spec.metrics,
        compile_spec.loss,
        y_true_shape=tuple(y_shape),
        y_pred_shape=(y_shape[0], *model.output_shape),
        final_activation=model.final_activation,
    )
    return loss, metrics
