"""Keras JSON codecs for the norm layer family: config keys in the order Keras 3.15 writes them."""

from __future__ import annotations

from trainctl.serialization.codec import LayerCodec

NORM_CODECS: dict[str, LayerCodec] = {}
