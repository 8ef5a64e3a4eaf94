"""Layer, initializer, regularizer and activation specs, with Keras 3 names and defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PositiveInt, model_validator
from pydantic_core import PydanticCustomError

from trainctl.config.base import INITIALIZERS, LAYERS, REGULARIZERS, ComponentSpec, did_you_mean, norm

# ---------------------------------------------------------------------------------------------
# activations: plain strings in Keras, matched loosely here

ACTIVATIONS = (
    "linear", "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus", "softsign",
    "swish", "silu", "gelu", "exponential", "hard_sigmoid", "hard_silu", "leaky_relu", "relu6",
    "log_softmax", "mish",
)  # fmt: skip
_ACT_LOOKUP = {norm(a): a for a in ACTIVATIONS} | {"hardswish": "hard_silu", "none": "linear"}


def _activation(value: Any) -> Any:
    if value is None:
        return "linear"
    if not isinstance(value, str):
        raise PydanticCustomError(
            "activation", "expected an activation name, received {received}", {"received": repr(value)}
        )
    hit = _ACT_LOOKUP.get(norm(value))
    if hit is None:
        guess = did_you_mean(value, ACTIVATIONS)
        raise PydanticCustomError(
            "unknown_activation",
            "unknown activation {name}; expected one of: {choices}{hint}",
            {
                "name": repr(value),
                "choices": ", ".join(ACTIVATIONS),
                "hint": f" (did you mean {guess!r}?)" if guess else "",
            },
        )
    return hit


ActivationName = Annotated[str, BeforeValidator(_activation)]
Shape = tuple[PositiveInt | None, ...]
InputDType = Literal["float32", "int32", "int64"]  # int ids feed Embedding as Keras's Input(dtype="int32")

# ---------------------------------------------------------------------------------------------
# initializers (Keras 3 defaults)


@INITIALIZERS.register()
class GlorotUniform(ComponentSpec):
    type: Literal["GlorotUniform"] = "GlorotUniform"
    seed: int | None = None


@INITIALIZERS.register()
class GlorotNormal(ComponentSpec):
    type: Literal["GlorotNormal"] = "GlorotNormal"
    seed: int | None = None


@INITIALIZERS.register()
class HeUniform(ComponentSpec):
    type: Literal["HeUniform"] = "HeUniform"
    seed: int | None = None


@INITIALIZERS.register()
class HeNormal(ComponentSpec):
    type: Literal["HeNormal"] = "HeNormal"
    seed: int | None = None


@INITIALIZERS.register()
class LecunUniform(ComponentSpec):
    type: Literal["LecunUniform"] = "LecunUniform"
    seed: int | None = None


@INITIALIZERS.register()
class LecunNormal(ComponentSpec):
    type: Literal["LecunNormal"] = "LecunNormal"
    seed: int | None = None


@INITIALIZERS.register("zero")
class Zeros(ComponentSpec):
    type: Literal["Zeros"] = "Zeros"


@INITIALIZERS.register("one")
class Ones(ComponentSpec):
    type: Literal["Ones"] = "Ones"


@INITIALIZERS.register()
class Constant(ComponentSpec):
    type: Literal["Constant"] = "Constant"
    value: float = 0.0


@INITIALIZERS.register("normal")
class RandomNormal(ComponentSpec):
    type: Literal["RandomNormal"] = "RandomNormal"
    mean: float = 0.0
    stddev: float = Field(0.05, gt=0)
    seed: int | None = None


@INITIALIZERS.register("uniform")
class RandomUniform(ComponentSpec):
    type: Literal["RandomUniform"] = "RandomUniform"
    minval: float = -0.05
    maxval: float = 0.05
    seed: int | None = None


@INITIALIZERS.register()
class TruncatedNormal(ComponentSpec):
    type: Literal["TruncatedNormal"] = "TruncatedNormal"
    mean: float = 0.0
    stddev: float = Field(0.05, gt=0)
    seed: int | None = None


@INITIALIZERS.register()
class Orthogonal(ComponentSpec):
    type: Literal["Orthogonal"] = "Orthogonal"
    gain: float = 1.0
    seed: int | None = None


@INITIALIZERS.register()
class Identity(ComponentSpec):
    type: Literal["Identity"] = "Identity"
    gain: float = 1.0


@INITIALIZERS.register()
class VarianceScaling(ComponentSpec):
    type: Literal["VarianceScaling"] = "VarianceScaling"
    scale: float = Field(1.0, gt=0)
    mode: Literal["fan_in", "fan_out", "fan_avg"] = "fan_in"
    distribution: Literal["truncated_normal", "untruncated_normal", "uniform"] = "truncated_normal"
    seed: int | None = None


if TYPE_CHECKING:  # the union is built at run time from the registry
    Initializer = Any
else:
    Initializer = INITIALIZERS.field()

# ---------------------------------------------------------------------------------------------
# regularizers (Keras 3 defaults: 0.01)


@REGULARIZERS.register()
class L1(ComponentSpec):
    type: Literal["L1"] = "L1"
    l1: float = Field(0.01, ge=0)


@REGULARIZERS.register()
class L2(ComponentSpec):
    type: Literal["L2"] = "L2"
    l2: float = Field(0.01, ge=0)


@REGULARIZERS.register()
class L1L2(ComponentSpec):
    type: Literal["L1L2"] = "L1L2"
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)


if TYPE_CHECKING:  # the union is built at run time from the registry
    Regularizer = Any
else:
    Regularizer = REGULARIZERS.field()

# ---------------------------------------------------------------------------------------------
# layers


class LayerSpec(ComponentSpec):
    """Arguments every Keras layer takes. ``input_shape`` excludes the batch axis, as in Keras."""

    name: str | None = None
    trainable: bool = True
    input_shape: Shape | None = None
    batch_input_shape: Shape | None = None
    # graph models: the model input or earlier layer(s) this layer is called on (default: the one above)
    inputs: str | list[str] | None = None

    def declared_input_shape(self) -> tuple[int | None, ...] | None:
        """The per-sample input shape this layer declares, if any."""
        if self.input_shape is not None:
            return tuple(self.input_shape)
        if self.batch_input_shape is not None:
            return tuple(self.batch_input_shape[1:])
        return None


@LAYERS.register("Input")
class InputLayer(LayerSpec):
    type: Literal["InputLayer"] = "InputLayer"
    shape: Shape | None = None
    batch_shape: Shape | None = None
    dtype: InputDType = "float32"

    @model_validator(mode="after")
    def _one_shape(self) -> InputLayer:
        if self.declared_input_shape() is None:
            raise ValueError("InputLayer needs `shape` (per sample), e.g. shape: [784]")
        return self

    def declared_input_shape(self) -> tuple[int | None, ...] | None:
        if self.shape is not None:
            return tuple(self.shape)
        if self.batch_shape is not None:
            return tuple(self.batch_shape[1:])
        return super().declared_input_shape()


@LAYERS.register()
class Dense(LayerSpec):
    type: Literal["Dense"] = "Dense"
    units: PositiveInt
    activation: ActivationName = "linear"
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"  # type: ignore[assignment]
    bias_initializer: Initializer = "zeros"  # type: ignore[assignment]
    kernel_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None
    activity_regularizer: Regularizer | None = None
    input_dim: PositiveInt | None = None

    def declared_input_shape(self) -> tuple[int | None, ...] | None:
        if self.input_dim is not None:
            return (self.input_dim,)
        return super().declared_input_shape()


@LAYERS.register()
class Activation(LayerSpec):
    type: Literal["Activation"] = "Activation"
    activation: ActivationName


@LAYERS.register()
class Dropout(LayerSpec):
    type: Literal["Dropout"] = "Dropout"
    rate: float = Field(ge=0.0, lt=1.0)
    noise_shape: tuple[PositiveInt | None, ...] | None = None
    seed: int | None = None


@LAYERS.register()
class Flatten(LayerSpec):
    type: Literal["Flatten"] = "Flatten"
    data_format: Literal["channels_last", "channels_first"] | None = None


@LAYERS.register()
class Reshape(LayerSpec):
    type: Literal["Reshape"] = "Reshape"
    target_shape: tuple[int, ...]

    @model_validator(mode="after")
    def _one_unknown(self) -> Reshape:
        if sum(1 for d in self.target_shape if d == -1) > 1:
            raise ValueError("target_shape may contain at most one -1")
        if any(d == 0 or d < -1 for d in self.target_shape):
            raise ValueError("target_shape entries must be positive, or -1 for one inferred axis")
        return self


# the other layer families register themselves in LAYERS when imported (before the union is built)
from trainctl.config import layers_conv, layers_merge, layers_norm, layers_preprocess, layers_seq  # noqa: E402, F401
