"""How one Keras layer class maps to its trainctl spec in Keras JSON (one entry per class)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LayerCodec:
    """How one Keras layer class maps to its trainctl spec (spec fields share Keras's names)."""

    keys: tuple[str, ...]  # config keys after name/trainable/dtype, in Keras 3.15's order
    built: bool = False  # Keras writes a ``build_config`` (layers that define ``build``)
    none_means: Mapping[str, Any] = field(default_factory=dict)  # spec None <-> this Keras value
    # keys Keras writes before ``keys``. SpatialDropout1D/2D write none: their ``keys`` hold ``name``
    # and ``dtype`` (a plain string) and no ``trainable``, which their constructors reject.
    head: tuple[str, ...] = ("name", "trainable", "dtype")
    # Wrappers (Bidirectional, TimeDistributed) hold whole layer entries in some config keys.
    # write_nested(spec, name, in_shape, entry) -> {key: layer entry}, where entry(spec, name, in_shape)
    # writes one nested layer; read_nested(config, where, parse) -> (config without those keys,
    # {spec field: parsed layer mapping}), where parse(entry, where) reads one nested layer.
    write_nested: Callable[[Any, str, tuple[Any, ...], Callable[..., dict[str, Any]]], dict[str, Any]] | None = None
    read_nested: (
        Callable[[dict[str, Any], str, Callable[..., dict[str, Any]]], tuple[dict[str, Any], dict[str, Any]]] | None
    ) = None
