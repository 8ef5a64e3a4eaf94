"""torch modules for pooling, normalization and reshaping layers, with Keras semantics and Keras weight layout."""

from __future__ import annotations

from trainctl.model.layers import Builder

NORM_BUILDERS: dict[str, Builder] = {}
