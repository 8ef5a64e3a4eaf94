"""Keras JSON codecs of the merge layers: their config keys after name/trainable/dtype (Keras 3.15)."""

from __future__ import annotations

from trainctl.serialization.codec import LayerCodec

MERGE_CODECS: dict[str, LayerCodec] = {
    **{name: LayerCodec((), built=True) for name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")},
    "Concatenate": LayerCodec(("axis",), built=True),
    "Dot": LayerCodec(("axes", "normalize"), built=True),
}
