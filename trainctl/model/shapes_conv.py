"""Shape rules (output shape, trainable and non-trainable params) for Conv1D/2D/3D,
SeparableConv2D, DepthwiseConv2D, Conv2DTranspose, ZeroPadding2D, UpSampling2D, Cropping2D.

Pure Python, like :mod:`trainctl.model.shapes`, so summaries need no torch.
"""

from __future__ import annotations

from trainctl.model.shapes import Rule

CONV_RULES: dict[str, Rule] = {}
