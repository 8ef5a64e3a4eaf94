"""Keras JSON codecs for the conv layer family: config keys in the order Keras 3.15 writes them.

Every layer here has a ``build`` in Keras, so each entry carries a ``build_config``. Keras always
writes ``data_format: "channels_last"``; our specs keep ``None`` (Keras's signature default), so
``none_means`` maps one to the other in both directions.
"""

from __future__ import annotations

from trainctl.serialization.codec import LayerCodec

_LAST = {"data_format": "channels_last"}
_CONV_KEYS = (
    "filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
    "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
    "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint",
)  # fmt: skip
_SEPARABLE_KEYS = (
    "depth_multiplier", "filters", "kernel_size", "strides", "padding", "data_format",
    "dilation_rate", "activation", "use_bias", "depthwise_initializer", "pointwise_initializer",
    "bias_initializer", "depthwise_regularizer", "pointwise_regularizer", "bias_regularizer",
    "activity_regularizer", "depthwise_constraint", "pointwise_constraint", "bias_constraint",
)  # fmt: skip
_DEPTHWISE_KEYS = (
    "depth_multiplier", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
    "activation", "use_bias", "depthwise_initializer", "bias_initializer", "depthwise_regularizer",
    "bias_regularizer", "activity_regularizer", "depthwise_constraint", "bias_constraint",
)  # fmt: skip
_TRANSPOSE_KEYS = (
    "filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
    "dilation_rate", "activation", "use_bias", "kernel_initializer", "bias_initializer",
    "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
    "bias_constraint",
)  # fmt: skip
_CONV = LayerCodec(_CONV_KEYS, built=True, none_means=_LAST)

CONV_CODECS: dict[str, LayerCodec] = {
    "Conv1D": _CONV,
    "Conv2D": _CONV,
    "Conv3D": _CONV,
    "SeparableConv2D": LayerCodec(_SEPARABLE_KEYS, built=True, none_means=_LAST),
    "DepthwiseConv2D": LayerCodec(_DEPTHWISE_KEYS, built=True, none_means=_LAST),
    "Conv2DTranspose": LayerCodec(_TRANSPOSE_KEYS, built=True, none_means=_LAST),
    "ZeroPadding2D": LayerCodec(("padding", "data_format"), built=True, none_means=_LAST),
    "UpSampling2D": LayerCodec(("size", "data_format", "interpolation"), built=True, none_means=_LAST),
    "Cropping2D": LayerCodec(("cropping", "data_format"), built=True, none_means=_LAST),
}
