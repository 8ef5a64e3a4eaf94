"""Keras JSON codecs for the norm layer family: config keys in the order Keras 3.15 writes them."""

from __future__ import annotations

from trainctl.serialization.codec import LayerCodec

_CHANNELS_LAST = {"data_format": "channels_last"}
_POOL = LayerCodec(("pool_size", "padding", "strides", "data_format"), none_means=_CHANNELS_LAST)
_GLOBAL_POOL = LayerCodec(("data_format", "keepdims"), none_means=_CHANNELS_LAST)

NORM_CODECS: dict[str, LayerCodec] = {
    "MaxPooling1D": _POOL,
    "MaxPooling2D": _POOL,
    "MaxPooling3D": _POOL,
    "AveragePooling1D": _POOL,
    "AveragePooling2D": _POOL,
    "AveragePooling3D": _POOL,
    "GlobalMaxPooling1D": _GLOBAL_POOL,
    "GlobalMaxPooling2D": _GLOBAL_POOL,
    "GlobalAveragePooling1D": _GLOBAL_POOL,
    "GlobalAveragePooling2D": _GLOBAL_POOL,
    "BatchNormalization": LayerCodec(
        (
            "axis",
            "momentum",
            "epsilon",
            "center",
            "scale",
            "beta_initializer",
            "gamma_initializer",
            "moving_mean_initializer",
            "moving_variance_initializer",
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
            "synchronized",
            "renorm",
            "renorm_clipping",
            "renorm_momentum",
        ),
        built=True,
    ),
    "LayerNormalization": LayerCodec(
        (
            "axis",
            "epsilon",
            "center",
            "scale",
            "rms_scaling",
            "beta_initializer",
            "gamma_initializer",
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
        ),
        built=True,
    ),
    # Keras's SpatialDropout configs have no `trainable` and a plain-string dtype, after `seed`
    "SpatialDropout1D": LayerCodec(("rate", "seed", "name", "dtype"), head=()),
    "SpatialDropout2D": LayerCodec(
        ("rate", "seed", "name", "dtype", "data_format"), head=(), none_means=_CHANNELS_LAST
    ),
    "RepeatVector": LayerCodec(("n",), built=True),
    "Permute": LayerCodec(("dims",), built=True),
}
