"""Shape rules (output shape, trainable and non-trainable params) for pooling, global pooling,
BatchNormalization, LayerNormalization, SpatialDropout, RepeatVector, Permute.

Pure Python, like :mod:`trainctl.model.shapes`, so summaries need no torch.
"""

from __future__ import annotations

from trainctl.model.shapes import Rule

NORM_RULES: dict[str, Rule] = {}
