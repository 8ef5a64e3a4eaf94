"""Layer specs, Keras 3 names and defaults:
pooling, global pooling, BatchNormalization, LayerNormalization, SpatialDropout1D/2D, RepeatVector, Permute.

Keras options trainctl does not implement (constraints, ``renorm``, ``synchronized``,
LayerNormalization's deprecated ``rms_scaling``) are not fields: a YAML that sets them is rejected,
and the Keras JSON codecs write them at their Keras defaults.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from trainctl.config.base import LAYERS
from trainctl.config.layers import Initializer, LayerSpec, Regularizer

DataFormat = Literal["channels_last", "channels_first"]
PoolSize = PositiveInt | tuple[PositiveInt, ...]


def _check_tuple(value: PoolSize | None, rank: int, field: str, layer: str) -> None:
    if isinstance(value, tuple) and len(value) != rank:
        raise ValueError(f"{layer} expected {field} to be an int or {rank} ints, received {list(value)}")


class _Pooling(LayerSpec):
    """Shared by the six pooling layers; ``strides=None`` means ``pool_size``, as in Keras."""

    rank: ClassVar[int] = 2
    pool_size: PoolSize
    strides: PoolSize | None = None
    padding: Literal["valid", "same"] = "valid"
    data_format: DataFormat | None = None

    @model_validator(mode="after")
    def _lengths(self) -> _Pooling:
        _check_tuple(self.pool_size, self.rank, "pool_size", type(self).__name__)
        _check_tuple(self.strides, self.rank, "strides", type(self).__name__)
        return self


@LAYERS.register()
class MaxPooling1D(_Pooling):
    type: Literal["MaxPooling1D"] = "MaxPooling1D"
    rank: ClassVar[int] = 1
    pool_size: PoolSize = 2


@LAYERS.register()
class MaxPooling2D(_Pooling):
    type: Literal["MaxPooling2D"] = "MaxPooling2D"
    rank: ClassVar[int] = 2
    pool_size: PoolSize = (2, 2)


@LAYERS.register()
class MaxPooling3D(_Pooling):
    type: Literal["MaxPooling3D"] = "MaxPooling3D"
    rank: ClassVar[int] = 3
    pool_size: PoolSize = (2, 2, 2)


@LAYERS.register()
class AveragePooling1D(_Pooling):
    type: Literal["AveragePooling1D"] = "AveragePooling1D"
    rank: ClassVar[int] = 1


@LAYERS.register()
class AveragePooling2D(_Pooling):
    type: Literal["AveragePooling2D"] = "AveragePooling2D"
    rank: ClassVar[int] = 2


@LAYERS.register()
class AveragePooling3D(_Pooling):
    type: Literal["AveragePooling3D"] = "AveragePooling3D"
    rank: ClassVar[int] = 3


class _GlobalPooling(LayerSpec):
    rank: ClassVar[int] = 1
    data_format: DataFormat | None = None
    keepdims: bool = False


@LAYERS.register()
class GlobalMaxPooling1D(_GlobalPooling):
    type: Literal["GlobalMaxPooling1D"] = "GlobalMaxPooling1D"
    rank: ClassVar[int] = 1


@LAYERS.register()
class GlobalMaxPooling2D(_GlobalPooling):
    type: Literal["GlobalMaxPooling2D"] = "GlobalMaxPooling2D"
    rank: ClassVar[int] = 2


@LAYERS.register()
class GlobalAveragePooling1D(_GlobalPooling):
    type: Literal["GlobalAveragePooling1D"] = "GlobalAveragePooling1D"
    rank: ClassVar[int] = 1


@LAYERS.register()
class GlobalAveragePooling2D(_GlobalPooling):
    type: Literal["GlobalAveragePooling2D"] = "GlobalAveragePooling2D"
    rank: ClassVar[int] = 2


@LAYERS.register()
class BatchNormalization(LayerSpec):
    """Keras's update: ``moving = moving * momentum + batch * (1 - momentum)`` (biased variance)."""

    type: Literal["BatchNormalization"] = "BatchNormalization"
    axis: int = -1
    momentum: float = Field(0.99, ge=0.0, le=1.0)
    epsilon: float = Field(1e-3, gt=0.0)
    center: bool = True
    scale: bool = True
    beta_initializer: Initializer = "zeros"  # type: ignore[assignment]
    gamma_initializer: Initializer = "ones"  # type: ignore[assignment]
    moving_mean_initializer: Initializer = "zeros"  # type: ignore[assignment]
    moving_variance_initializer: Initializer = "ones"  # type: ignore[assignment]
    beta_regularizer: Regularizer | None = None
    gamma_regularizer: Regularizer | None = None

    @field_validator("axis", mode="before")
    @classmethod
    def _one_axis(cls, value: Any) -> Any:
        """tf-keras writes ``axis: [3]``; Keras's legacy loader reads a 1-element list as that int too."""
        if isinstance(value, list | tuple) and len(value) == 1:
            return value[0]
        return value


@LAYERS.register()
class LayerNormalization(LayerSpec):
    """``axis`` is one axis or a list of axes (normalized together), as in Keras."""

    type: Literal["LayerNormalization"] = "LayerNormalization"
    axis: int | tuple[int, ...] = -1
    epsilon: float = Field(1e-3, gt=0.0)
    center: bool = True
    scale: bool = True
    beta_initializer: Initializer = "zeros"  # type: ignore[assignment]
    gamma_initializer: Initializer = "ones"  # type: ignore[assignment]
    beta_regularizer: Regularizer | None = None
    gamma_regularizer: Regularizer | None = None

    @model_validator(mode="after")
    def _some_axis(self) -> LayerNormalization:
        if isinstance(self.axis, tuple) and not self.axis:
            raise ValueError("LayerNormalization expected at least one axis, received []")
        return self


@LAYERS.register()
class SpatialDropout1D(LayerSpec):
    """Drops whole channels of ``(batch, steps, channels)`` inputs (inverted dropout, as Keras)."""

    type: Literal["SpatialDropout1D"] = "SpatialDropout1D"
    rate: float = Field(ge=0.0, lt=1.0)
    seed: int | None = None


@LAYERS.register()
class SpatialDropout2D(LayerSpec):
    type: Literal["SpatialDropout2D"] = "SpatialDropout2D"
    rate: float = Field(ge=0.0, lt=1.0)
    data_format: DataFormat | None = None
    seed: int | None = None


@LAYERS.register()
class RepeatVector(LayerSpec):
    type: Literal["RepeatVector"] = "RepeatVector"
    n: PositiveInt


@LAYERS.register()
class Permute(LayerSpec):
    """``dims`` permutes the non-batch axes and counts from 1, as in Keras: ``[2, 1]`` swaps them."""

    type: Literal["Permute"] = "Permute"
    dims: tuple[PositiveInt, ...]

    @model_validator(mode="after")
    def _is_permutation(self) -> Permute:
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"expected dims to be a permutation of 1..{len(self.dims)}, received {list(self.dims)}")
        return self
