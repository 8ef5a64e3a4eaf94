"""Layer specs, Keras 3 names and defaults:
Conv1D/2D/3D, SeparableConv2D, DepthwiseConv2D, Conv2DTranspose, ZeroPadding2D, UpSampling2D, Cropping2D."""

from __future__ import annotations
