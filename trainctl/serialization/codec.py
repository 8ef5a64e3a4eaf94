"""How one Keras layer class maps to its trainctl spec in Keras JSON (one entry per class)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LayerCodec:
    """How one Keras layer class maps to its trainctl spec (spec fields share Keras's names)."""

    keys: tuple[str, ...]  # config keys after name/trainable/dtype, in Keras 3.15's order
    built: bool = False  # Keras writes a ``build_config`` (layers that define ``build``)
    none_means: Mapping[str, Any] = field(default_factory=dict)  # spec None <-> this Keras value
