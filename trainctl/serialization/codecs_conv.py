"""Keras JSON codecs for the conv layer family: config keys in the order Keras 3.15 writes them."""

from __future__ import annotations

from trainctl.serialization.codec import LayerCodec

CONV_CODECS: dict[str, LayerCodec] = {}
