"""Layer specs, Keras 3 names and defaults:
Conv1D/2D/3D, SeparableConv2D, DepthwiseConv2D, Conv2DTranspose, ZeroPadding2D, UpSampling2D, Cropping2D.

Tuple arguments (``kernel_size``, ``strides``...) keep the form they were given in (an int or a
list, as Keras accepts both), so each declared default stays equal to Keras's own default;
:meth:`_Spatial.ntuple` gives the normalised tuple that shape rules and builders use. Data is
channels_last only: ``data_format: channels_first`` is refused at validation, naming the key.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, NonNegativeInt, PositiveInt, field_validator, model_validator

from trainctl.config.base import LAYERS
from trainctl.config.layers import ActivationName, Initializer, LayerSpec, Regularizer


def _lower(value: Any) -> Any:
    """Keras lower-cases ``padding`` and ``interpolation`` (``"SAME"`` works there)."""
    return value.lower() if isinstance(value, str) else value


Padding = Annotated[Literal["valid", "same"], BeforeValidator(_lower)]
CausalPadding = Annotated[Literal["valid", "same", "causal"], BeforeValidator(_lower)]
DataFormat = Literal["channels_last", "channels_first"] | None
Ints = PositiveInt | tuple[PositiveInt, ...]
Pair = NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt]
Pads = Pair | tuple[Pair, Pair]


def ntuple(value: Any, rank: int) -> tuple[int, ...]:
    """Keras's ``standardize_tuple``: an int means the same value on every spatial axis."""
    return (int(value),) * rank if isinstance(value, int) else tuple(int(v) for v in value)


def pairs(value: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """ZeroPadding2D/Cropping2D amounts as ``((top, bottom), (left, right))``, as Keras normalises."""
    if isinstance(value, int):
        return (value, value), (value, value)
    rows, cols = value
    return tuple((v, v) if isinstance(v, int) else (int(v[0]), int(v[1])) for v in (rows, cols))  # type: ignore[return-value]


class _Spatial(LayerSpec):
    """Shared checks of the channels_last spatial layers."""

    rank: ClassVar[int] = 2
    tuple_fields: ClassVar[tuple[str, ...]] = ()

    data_format: DataFormat = None

    @field_validator("data_format")
    @classmethod
    def _channels_last(cls, value: str | None) -> str | None:
        if value == "channels_first":
            raise ValueError(
                "expected data_format channels_last (trainctl data is channels_last, e.g. (N, H, W, C)), "
                "received 'channels_first'; reshape the data to put channels last instead"
            )
        return value

    def ntuple(self, field: str) -> tuple[int, ...]:
        """``kernel_size``/``strides``/... as a tuple with one entry per spatial axis."""
        return ntuple(getattr(self, field), self.rank)

    @model_validator(mode="after")
    def _tuple_lengths(self) -> _Spatial:
        for field in self.tuple_fields:
            value = getattr(self, field)
            if isinstance(value, tuple) and len(value) != self.rank:
                raise ValueError(f"expected {field} to be an int or {self.rank} ints, received {list(value)}")
        return self


class _ConvLike(_Spatial):
    """Checks every Keras convolution makes in its constructor."""

    tuple_fields: ClassVar[tuple[str, ...]] = ("kernel_size", "strides", "dilation_rate")

    @model_validator(mode="after")
    def _stride_or_dilation(self) -> _ConvLike:
        if max(self.ntuple("strides")) > 1 and max(self.ntuple("dilation_rate")) > 1:
            raise ValueError(
                "expected strides > 1 or dilation_rate > 1, not both (Keras refuses the combination), "
                f"received strides={self.ntuple('strides')}, dilation_rate={self.ntuple('dilation_rate')}"
            )
        groups = getattr(self, "groups", 1)
        filters = getattr(self, "filters", None)
        if filters is not None and filters % groups:
            raise ValueError(f"expected filters divisible by groups ({groups}), received filters={filters}")
        return self


class _Conv(_ConvLike):
    filters: PositiveInt
    kernel_size: Ints
    strides: Ints = (1, 1)
    padding: Padding = "valid"
    dilation_rate: Ints = (1, 1)
    groups: PositiveInt = 1
    activation: ActivationName = "linear"
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"  # type: ignore[assignment]
    bias_initializer: Initializer = "zeros"  # type: ignore[assignment]
    kernel_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None


@LAYERS.register("Convolution1D")
class Conv1D(_Conv):
    rank = 1
    type: Literal["Conv1D"] = "Conv1D"
    strides: Ints = 1
    padding: CausalPadding = "valid"  # type: ignore[assignment]
    dilation_rate: Ints = 1


@LAYERS.register("Convolution2D")
class Conv2D(_Conv):
    rank = 2
    type: Literal["Conv2D"] = "Conv2D"


@LAYERS.register("Convolution3D")
class Conv3D(_Conv):
    rank = 3
    type: Literal["Conv3D"] = "Conv3D"
    strides: Ints = (1, 1, 1)
    dilation_rate: Ints = (1, 1, 1)


@LAYERS.register("SeparableConvolution2D")
class SeparableConv2D(_ConvLike):
    type: Literal["SeparableConv2D"] = "SeparableConv2D"
    filters: PositiveInt
    kernel_size: Ints
    strides: Ints = (1, 1)
    padding: Padding = "valid"
    dilation_rate: Ints = (1, 1)
    depth_multiplier: PositiveInt = 1
    activation: ActivationName = "linear"
    use_bias: bool = True
    depthwise_initializer: Initializer = "glorot_uniform"  # type: ignore[assignment]
    pointwise_initializer: Initializer = "glorot_uniform"  # type: ignore[assignment]
    bias_initializer: Initializer = "zeros"  # type: ignore[assignment]
    depthwise_regularizer: Regularizer | None = None
    pointwise_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None


@LAYERS.register()
class DepthwiseConv2D(_ConvLike):
    type: Literal["DepthwiseConv2D"] = "DepthwiseConv2D"
    kernel_size: Ints
    strides: Ints = (1, 1)
    padding: Padding = "valid"
    depth_multiplier: PositiveInt = 1
    dilation_rate: Ints = (1, 1)
    activation: ActivationName = "linear"
    use_bias: bool = True
    depthwise_initializer: Initializer = "glorot_uniform"  # type: ignore[assignment]
    bias_initializer: Initializer = "zeros"  # type: ignore[assignment]
    depthwise_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None


@LAYERS.register("Convolution2DTranspose")
class Conv2DTranspose(_ConvLike):
    type: Literal["Conv2DTranspose"] = "Conv2DTranspose"
    tuple_fields = ("kernel_size", "strides", "dilation_rate", "output_padding")
    filters: PositiveInt
    kernel_size: Ints
    strides: Ints = (1, 1)
    padding: Padding = "valid"
    output_padding: NonNegativeInt | tuple[NonNegativeInt, ...] | None = None
    dilation_rate: Ints = (1, 1)
    activation: ActivationName = "linear"
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"  # type: ignore[assignment]
    bias_initializer: Initializer = "zeros"  # type: ignore[assignment]
    kernel_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None

    @model_validator(mode="after")
    def _output_padding_below_strides(self) -> Conv2DTranspose:
        if self.output_padding is not None:
            pad, strides = self.ntuple("output_padding"), self.ntuple("strides")
            if any(p >= s for p, s in zip(pad, strides, strict=True)):
                raise ValueError(f"expected output_padding below strides {strides} on every axis, received {pad}")
        return self


@LAYERS.register()
class ZeroPadding2D(_Spatial):
    type: Literal["ZeroPadding2D"] = "ZeroPadding2D"
    padding: Pads = (1, 1)

    def pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((top, bottom), (left, right))``."""
        return pairs(self.padding)


@LAYERS.register()
class UpSampling2D(_Spatial):
    type: Literal["UpSampling2D"] = "UpSampling2D"
    tuple_fields = ("size",)
    size: Ints = (2, 2)
    interpolation: Annotated[Literal["nearest", "bilinear"], BeforeValidator(_lower)] = "nearest"


@LAYERS.register()
class Cropping2D(_Spatial):
    type: Literal["Cropping2D"] = "Cropping2D"
    cropping: Pads = Field(default=((0, 0), (0, 0)))

    def crops(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((top, bottom), (left, right))``."""
        return pairs(self.cropping)
