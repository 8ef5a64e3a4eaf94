"""torch modules for convolution and spatial layers (channels_last in, channels_last out), with
Keras semantics and Keras weight layout."""

from __future__ import annotations

from trainctl.model.layers import Builder

CONV_BUILDERS: dict[str, Builder] = {}
