"""Layer specs, Keras 3 names and defaults:
pooling, global pooling, BatchNormalization, LayerNormalization, SpatialDropout1D/2D, RepeatVector, Permute."""

from __future__ import annotations
