"""Layer specs, Keras 3 names and defaults: preprocessing (Rescaling, Normalization, Resizing,
CenterCrop) and augmentation (RandomCrop, RandomFlip, RandomRotation, RandomZoom,
RandomTranslation, RandomContrast, RandomBrightness).

Factors follow Keras: a number ``f`` means the range ``[-f, f]`` and a pair is ``[lower, upper]``.
Rotation, contrast and brightness factors are stored as the sorted pair Keras saves in its JSON, so a
config and the ``model.json`` written from it say the same thing. Keras options that fail on its
torch backend (``interpolation: area``/``lanczos*``) are not offered.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import PositiveInt, field_validator, model_validator

from trainctl.config.base import LAYERS
from trainctl.config.layers import LayerSpec

DataFormat = Literal["channels_last", "channels_first"]
FillMode = Literal["reflect", "wrap", "constant", "nearest"]
Factor = float | tuple[float, float]


def factor_range(value: Factor, *, clamp_low: float | None = None) -> tuple[float, float]:
    """Keras's reading of a factor: ``f`` -> ``(-|f|, |f|)``; a pair is sorted."""
    if isinstance(value, tuple):
        low, high = sorted(value)
        return float(low), float(high)
    f = abs(float(value))
    low = -f if clamp_low is None else max(-f, clamp_low)
    return low, f


def _check_bounds(value: Factor, low: float, high: float, what: str, *, open_low: bool = False) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v > high or v < low or (open_low and v == low):
            bracket = "(" if open_low else "["
            raise ValueError(f"expected {what} in {bracket}{low}, {high}], received {v}")


class _Image(LayerSpec):
    """Image layers. ``factors`` declares the factor fields to check and store as Keras saves them:
    ``(field, lowest, lowest excluded, stored as)``, where ``range`` stores ``f`` as ``(-|f|, |f|)``,
    ``pair`` as ``(|f|, |f|)`` (a pair is sorted in both), and None keeps the value; every factor is
    at most 1. A ``value_range`` is stored sorted."""

    factors: ClassVar[tuple[tuple[str, float, bool, str | None], ...]] = ()
    data_format: DataFormat | None = None

    @model_validator(mode="after")
    def _factors(self) -> _Image:
        for name, low, open_low, stored in self.factors:
            value = getattr(self, name)
            if value is None:
                continue
            _check_bounds(value, low, 1.0, f"{type(self).__name__} {name}", open_low=open_low)
            if stored == "range":
                object.__setattr__(self, name, factor_range(value))
            elif stored == "pair":
                pair = value if isinstance(value, tuple) else (abs(value),) * 2
                object.__setattr__(self, name, tuple(sorted(float(v) for v in pair)))
        value_range = getattr(self, "value_range", None)
        if value_range is not None:
            object.__setattr__(self, "value_range", tuple(sorted(value_range)))
        return self


@LAYERS.register()
class Rescaling(LayerSpec):
    """``x * scale + offset``, the same in training and inference."""

    type: Literal["Rescaling"] = "Rescaling"
    scale: float
    offset: float = 0.0


@LAYERS.register()
class Normalization(LayerSpec):
    """``(x - mean) / max(sqrt(variance), 1e-7)`` per position of the kept ``axis`` (Keras).

    Without ``mean``/``variance`` the layer is adapted on the training rows before training, and its
    statistics are saved as non-trainable weights (``mean``, ``variance``, ``count``) as in Keras.
    """

    type: Literal["Normalization"] = "Normalization"
    axis: tuple[int, ...] = (-1,)
    invert: bool = False
    mean: float | tuple[float, ...] | None = None
    variance: float | tuple[float, ...] | None = None

    @field_validator("axis", mode="before")
    @classmethod
    def _axis_tuple(cls, value: Any) -> Any:
        """Keras takes an int, a list, or None (one statistic over everything, saved as ``[]``)."""
        if value is None:
            return ()
        if isinstance(value, int):
            return (value,)
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> Normalization:
        if (self.mean is None) != (self.variance is None):
            raise ValueError("Normalization expected both mean and variance, or neither (adapted on the data)")
        if self.variance is not None:
            values = self.variance if isinstance(self.variance, tuple) else (self.variance,)
            if any(v < 0 for v in values):
                raise ValueError(f"expected variance >= 0, received {list(values)}")
            n_mean = len(self.mean) if isinstance(self.mean, tuple) else 1
            if n_mean != len(values):
                raise ValueError(f"expected mean and variance of the same length, received {n_mean} and {len(values)}")
        return self


@LAYERS.register()
class Resizing(_Image):
    """Bilinear/bicubic equal torch ``interpolate(align_corners=False)``; nearest is ``nearest-exact``."""

    type: Literal["Resizing"] = "Resizing"
    height: PositiveInt
    width: PositiveInt
    interpolation: Literal["bilinear", "nearest", "bicubic"] = "bilinear"
    crop_to_aspect_ratio: bool = False
    pad_to_aspect_ratio: bool = False
    fill_mode: Literal["constant"] = "constant"
    fill_value: float = 0.0
    antialias: bool = False

    @model_validator(mode="after")
    def _one_aspect_mode(self) -> Resizing:
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError("expected at most one of crop_to_aspect_ratio and pad_to_aspect_ratio, received both")
        return self


@LAYERS.register()
class CenterCrop(_Image):
    type: Literal["CenterCrop"] = "CenterCrop"
    height: PositiveInt
    width: PositiveInt


@LAYERS.register()
class RandomCrop(_Image):
    """Training: one random window per batch (Keras). Inference: the centred largest window of the
    target aspect ratio, resized to the target (Keras's documentation; Keras 3.15 returns the input)."""

    type: Literal["RandomCrop"] = "RandomCrop"
    height: PositiveInt
    width: PositiveInt
    seed: int | None = None


@LAYERS.register()
class RandomFlip(_Image):
    """One coin per image; ``horizontal_and_vertical`` flips both axes together (Keras 3)."""

    type: Literal["RandomFlip"] = "RandomFlip"
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal_and_vertical"
    seed: int | None = None


class _Affine(_Image):
    fill_mode: FillMode = "reflect"
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    fill_value: float = 0.0
    seed: int | None = None


@LAYERS.register()
class RandomRotation(_Affine):
    """Angle ``U(lower, upper) * 2*pi``, counter-clockwise for positive values."""

    type: Literal["RandomRotation"] = "RandomRotation"
    factors = (("factor", -1.0, False, "range"),)
    factor: Factor


@LAYERS.register()
class RandomZoom(_Affine):
    """Positive factors zoom out; ``width_factor: null`` keeps the aspect ratio (Keras)."""

    type: Literal["RandomZoom"] = "RandomZoom"
    height_factor: Factor
    width_factor: Factor | None = None
    factors = (("height_factor", -1.0, True, None), ("width_factor", -1.0, True, None))


@LAYERS.register()
class RandomTranslation(_Affine):
    """Shifts by ``U(lower, upper)`` times the height/width; positive moves down/right."""

    type: Literal["RandomTranslation"] = "RandomTranslation"
    height_factor: Factor
    width_factor: Factor
    factors = (("height_factor", -1.0, False, None), ("width_factor", -1.0, False, None))


@LAYERS.register()
class RandomContrast(_Image):
    """Per image, ``(x - mean) * c + mean`` clipped to ``value_range``, with ``c ~ U(1 - lower, 1 + upper)``.

    A single number ``f`` means ``c ~ U(1 - f, 1 + f)`` as Keras documents; Keras 3.15 clamps it to
    ``[0, f]`` (contrast only ever raised). Stored as the pair ``[f, f]``, which Keras reads the same way.
    """

    type: Literal["RandomContrast"] = "RandomContrast"
    factor: Factor
    value_range: tuple[float, float] = (0.0, 255.0)
    seed: int | None = None
    factors = (("factor", 0.0, False, "pair"),)


@LAYERS.register()
class RandomBrightness(_Image):
    """Per image, ``x + d * (high - low)`` clipped to ``value_range``, with ``d ~ U(lower, upper)``."""

    type: Literal["RandomBrightness"] = "RandomBrightness"
    factor: Factor
    value_range: tuple[float, float] = (0.0, 255.0)
    seed: int | None = None
    factors = (("factor", -1.0, False, "range"),)


RANDOM_LAYERS = frozenset(
    {"RandomCrop", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
     "RandomBrightness"}
)  # fmt: skip
