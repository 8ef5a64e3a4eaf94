"""Keras JSON codecs for the preprocessing and augmentation layers: config keys in the order Keras
3.15 writes them. Every one of these layers has a ``build_config`` in Keras's JSON."""

from __future__ import annotations

from trainctl.serialization.codec import LayerCodec

_CHANNELS_LAST = {"data_format": "channels_last"}
_AFFINE = ("fill_mode", "interpolation", "seed", "fill_value")
_RESIZE = ("height", "width", "interpolation", "crop_to_aspect_ratio", "pad_to_aspect_ratio", "fill_mode", "fill_value",
           "antialias")  # fmt: skip


def _image(*keys: str) -> LayerCodec:
    return LayerCodec(("data_format", *keys), built=True, none_means=_CHANNELS_LAST)


PREPROCESS_CODECS: dict[str, LayerCodec] = {
    "Rescaling": LayerCodec(("scale", "offset"), built=True),
    "Normalization": LayerCodec(("axis", "invert", "mean", "variance"), built=True),
    "Resizing": _image(*_RESIZE),
    "CenterCrop": _image("height", "width"),
    "RandomCrop": _image("height", "width", "seed"),
    "RandomFlip": _image("seed", "mode"),
    "RandomRotation": _image("factor", "fill_mode", "fill_value", "interpolation", "seed"),
    "RandomZoom": _image("height_factor", "width_factor", *_AFFINE),
    "RandomTranslation": _image("height_factor", "width_factor", *_AFFINE),
    "RandomContrast": _image("factor", "value_range", "seed"),
    "RandomBrightness": _image("factor", "value_range", "seed"),
}
