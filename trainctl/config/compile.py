"""Optimizer, learning-rate schedule, loss and metric specs, with Keras 3 names and defaults.

Defaults are Keras's, not torch's (see ../shared/notes/keras-format.md §4): for example Adam's
epsilon is 1e-7, RMSprop's rho is 0.9 and Adadelta's learning rate is 0.001.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from trainctl.config.base import LOSSES, METRICS, OPTIMIZERS, SCHEDULES, ComponentSpec

# ---------------------------------------------------------------------------------------------
# learning-rate schedules: functions of the optimizer step (iterations), as in Keras


@SCHEDULES.register()
class ExponentialDecay(ComponentSpec):
    type: Literal["ExponentialDecay"] = "ExponentialDecay"
    initial_learning_rate: PositiveFloat
    decay_steps: PositiveInt
    decay_rate: PositiveFloat
    staircase: bool = False


@SCHEDULES.register()
class PiecewiseConstantDecay(ComponentSpec):
    type: Literal["PiecewiseConstantDecay"] = "PiecewiseConstantDecay"
    boundaries: list[int]
    values: list[float]

    @model_validator(mode="after")
    def _lengths(self) -> PiecewiseConstantDecay:
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                f"expected len(values) == len(boundaries) + 1, received {len(self.values)} values "
                f"for {len(self.boundaries)} boundaries"
            )
        if self.boundaries != sorted(self.boundaries):
            raise ValueError("boundaries must be increasing")
        return self


@SCHEDULES.register()
class CosineDecay(ComponentSpec):
    type: Literal["CosineDecay"] = "CosineDecay"
    initial_learning_rate: NonNegativeFloat
    decay_steps: PositiveInt
    alpha: float = Field(0.0, ge=0.0, le=1.0)
    warmup_target: PositiveFloat | None = None
    warmup_steps: int = Field(0, ge=0)


if TYPE_CHECKING:  # the union is built at run time from the registry
    Schedule = Any
else:
    Schedule = SCHEDULES.field()
LearningRate = PositiveFloat | Schedule

# ---------------------------------------------------------------------------------------------
# optimizers


class OptimizerSpec(ComponentSpec):
    """Arguments shared by every Keras optimizer. ``weight_decay`` is decoupled, as in Keras."""

    learning_rate: LearningRate = 0.001  # type: ignore[valid-type]
    weight_decay: NonNegativeFloat | None = None
    clipnorm: PositiveFloat | None = None
    clipvalue: PositiveFloat | None = None
    global_clipnorm: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one_clip(self) -> OptimizerSpec:
        given = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of clipnorm, clipvalue, global_clipnorm; received {', '.join(given)}")
        return self


@OPTIMIZERS.register()
class SGD(OptimizerSpec):
    type: Literal["SGD"] = "SGD"
    learning_rate: LearningRate = 0.01  # type: ignore[valid-type]
    momentum: float = Field(0.0, ge=0.0)
    nesterov: bool = False


@OPTIMIZERS.register()
class Adam(OptimizerSpec):
    type: Literal["Adam"] = "Adam"
    beta_1: float = Field(0.9, ge=0.0, lt=1.0)
    beta_2: float = Field(0.999, ge=0.0, lt=1.0)
    epsilon: PositiveFloat = 1e-7
    amsgrad: bool = False


@OPTIMIZERS.register()
class AdamW(Adam):
    type: Literal["AdamW"] = "AdamW"  # type: ignore[assignment]
    weight_decay: NonNegativeFloat | None = 0.004


@OPTIMIZERS.register()
class RMSprop(OptimizerSpec):
    type: Literal["RMSprop"] = "RMSprop"
    rho: float = Field(0.9, ge=0.0, lt=1.0)
    momentum: float = Field(0.0, ge=0.0)
    epsilon: PositiveFloat = 1e-7
    centered: bool = False


@OPTIMIZERS.register()
class Adagrad(OptimizerSpec):
    type: Literal["Adagrad"] = "Adagrad"
    initial_accumulator_value: NonNegativeFloat = 0.1
    epsilon: PositiveFloat = 1e-7


@OPTIMIZERS.register()
class Adadelta(OptimizerSpec):
    type: Literal["Adadelta"] = "Adadelta"
    rho: float = Field(0.95, ge=0.0, lt=1.0)
    epsilon: PositiveFloat = 1e-7


@OPTIMIZERS.register()
class Adamax(OptimizerSpec):
    type: Literal["Adamax"] = "Adamax"
    beta_1: float = Field(0.9, ge=0.0, lt=1.0)
    beta_2: float = Field(0.999, ge=0.0, lt=1.0)
    epsilon: PositiveFloat = 1e-7


@OPTIMIZERS.register()
class Nadam(OptimizerSpec):
    type: Literal["Nadam"] = "Nadam"
    beta_1: float = Field(0.9, ge=0.0, lt=1.0)
    beta_2: float = Field(0.999, ge=0.0, lt=1.0)
    epsilon: PositiveFloat = 1e-7


if TYPE_CHECKING:  # the union is built at run time from the registry
    Optimizer = Any
else:
    Optimizer = OPTIMIZERS.field()

# ---------------------------------------------------------------------------------------------
# losses: canonical names are Keras's function names; short aliases and class names also work


class LossSpec(ComponentSpec):
    reduction: Literal["sum_over_batch_size", "sum", "mean", "none"] = "sum_over_batch_size"


@LOSSES.register("mse", "MeanSquaredError")
class mean_squared_error(LossSpec):  # noqa: N801
    type: Literal["mean_squared_error"] = "mean_squared_error"


@LOSSES.register("mae", "MeanAbsoluteError")
class mean_absolute_error(LossSpec):  # noqa: N801
    type: Literal["mean_absolute_error"] = "mean_absolute_error"


@LOSSES.register("mape", "MeanAbsolutePercentageError")
class mean_absolute_percentage_error(LossSpec):  # noqa: N801
    type: Literal["mean_absolute_percentage_error"] = "mean_absolute_percentage_error"


@LOSSES.register("msle", "MeanSquaredLogarithmicError")
class mean_squared_logarithmic_error(LossSpec):  # noqa: N801
    type: Literal["mean_squared_logarithmic_error"] = "mean_squared_logarithmic_error"


@LOSSES.register("Huber", "huber_loss")
class huber(LossSpec):  # noqa: N801
    type: Literal["huber"] = "huber"
    delta: PositiveFloat = 1.0


@LOSSES.register("LogCosh", "logcosh")
class log_cosh(LossSpec):  # noqa: N801
    type: Literal["log_cosh"] = "log_cosh"


@LOSSES.register("BinaryCrossentropy", "bce")
class binary_crossentropy(LossSpec):  # noqa: N801
    type: Literal["binary_crossentropy"] = "binary_crossentropy"
    from_logits: bool = False
    label_smoothing: float = Field(0.0, ge=0.0, le=1.0)


@LOSSES.register("CategoricalCrossentropy", "cce")
class categorical_crossentropy(LossSpec):  # noqa: N801
    type: Literal["categorical_crossentropy"] = "categorical_crossentropy"
    from_logits: bool = False
    label_smoothing: float = Field(0.0, ge=0.0, le=1.0)


@LOSSES.register("SparseCategoricalCrossentropy", "scce")
class sparse_categorical_crossentropy(LossSpec):  # noqa: N801
    type: Literal["sparse_categorical_crossentropy"] = "sparse_categorical_crossentropy"
    from_logits: bool = False
    ignore_class: int | None = None


@LOSSES.register("kld", "KLDivergence", "kullback_leibler_divergence")
class kl_divergence(LossSpec):  # noqa: N801
    type: Literal["kl_divergence"] = "kl_divergence"


@LOSSES.register("Hinge")
class hinge(LossSpec):  # noqa: N801
    type: Literal["hinge"] = "hinge"


@LOSSES.register("Poisson")
class poisson(LossSpec):  # noqa: N801
    type: Literal["poisson"] = "poisson"


@LOSSES.register("CosineSimilarity")
class cosine_similarity(LossSpec):  # noqa: N801
    type: Literal["cosine_similarity"] = "cosine_similarity"
    axis: int = -1


if TYPE_CHECKING:  # the union is built at run time from the registry
    Loss = Any
else:
    Loss = LOSSES.field()

# ---------------------------------------------------------------------------------------------
# metrics: ``name`` is the history key; a bare string keeps the spelling the user wrote


class MetricSpec(ComponentSpec):
    name: str | None = None


@METRICS.register("acc")
class accuracy(MetricSpec):  # noqa: N801
    """Resolved from shapes, as Keras does: binary, sparse categorical or categorical."""

    type: Literal["accuracy"] = "accuracy"


@METRICS.register("BinaryAccuracy")
class binary_accuracy(MetricSpec):  # noqa: N801
    type: Literal["binary_accuracy"] = "binary_accuracy"
    threshold: float = 0.5


@METRICS.register("CategoricalAccuracy")
class categorical_accuracy(MetricSpec):  # noqa: N801
    type: Literal["categorical_accuracy"] = "categorical_accuracy"


@METRICS.register("SparseCategoricalAccuracy")
class sparse_categorical_accuracy(MetricSpec):  # noqa: N801
    type: Literal["sparse_categorical_accuracy"] = "sparse_categorical_accuracy"


@METRICS.register("TopKCategoricalAccuracy", "top_k_accuracy")
class top_k_categorical_accuracy(MetricSpec):  # noqa: N801
    type: Literal["top_k_categorical_accuracy"] = "top_k_categorical_accuracy"
    k: PositiveInt = 5


@METRICS.register("SparseTopKCategoricalAccuracy")
class sparse_top_k_categorical_accuracy(MetricSpec):  # noqa: N801
    type: Literal["sparse_top_k_categorical_accuracy"] = "sparse_top_k_categorical_accuracy"
    k: PositiveInt = 5


@METRICS.register("mse", "MeanSquaredError")
class mean_squared_error_metric(MetricSpec):  # noqa: N801
    type: Literal["mean_squared_error"] = "mean_squared_error"


@METRICS.register("mae", "MeanAbsoluteError")
class mean_absolute_error_metric(MetricSpec):  # noqa: N801
    type: Literal["mean_absolute_error"] = "mean_absolute_error"


@METRICS.register("rmse", "RootMeanSquaredError")
class root_mean_squared_error(MetricSpec):  # noqa: N801
    type: Literal["root_mean_squared_error"] = "root_mean_squared_error"


@METRICS.register("Precision")
class precision(MetricSpec):  # noqa: N801
    type: Literal["precision"] = "precision"
    thresholds: float | None = Field(None, gt=0.0, lt=1.0)
    top_k: PositiveInt | None = None
    class_id: int | None = Field(None, ge=0)


@METRICS.register("Recall")
class recall(MetricSpec):  # noqa: N801
    type: Literal["recall"] = "recall"
    thresholds: float | None = Field(None, gt=0.0, lt=1.0)
    top_k: PositiveInt | None = None
    class_id: int | None = Field(None, ge=0)


@METRICS.register("AUC")
class auc(MetricSpec):  # noqa: N801
    type: Literal["auc"] = "auc"
    num_thresholds: int = Field(200, gt=1)
    curve: Literal["ROC", "PR"] = "ROC"
    summation_method: Literal["interpolation", "minoring", "majoring"] = "interpolation"
    multi_label: bool = False
    from_logits: bool = False


if TYPE_CHECKING:  # the union is built at run time from the registry
    Metric = Any
else:
    Metric = METRICS.field()
