"""Keras JSON codecs for the seq layer family: config keys in the order Keras 3.15 writes them.

Bidirectional and TimeDistributed hold whole layer entries (``{"layer": {...}}``). Keras writes
Bidirectional's ``backward_layer`` too: a copy of ``layer`` with ``go_backwards`` flipped, named
``backward_<name>``; reading accepts only that copy (a custom backward layer is refused). Keras
sets the inner layers' ``zero_output_for_mask`` to ``return_sequences`` itself, so it is written
that way and not checked on reading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainctl.errors import ArtifactError
from trainctl.model.shapes import snake
from trainctl.model.shapes_seq import direction_names
from trainctl.serialization.codec import LayerCodec

Entry = Callable[..., dict[str, Any]]

_RNN_HEAD = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask",
             "units", "activation")  # fmt: skip
_INITS = ("use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer")
_TAIL = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
         "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout")  # fmt: skip


def _layer_entry(cfg: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    entry = cfg.get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ArtifactError(f"{where}: expected {key!r} to be a layer entry with 'class_name' and 'config'")
    config = {k: v for k, v in entry["config"].items() if k != "zero_output_for_mask"}
    return {**entry, "config": config}


def _short_name(parsed: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Drop the Keras prefix, and the name itself when it is the automatic one."""
    name = parsed.pop("name", None)
    if isinstance(name, str):
        name = name.removeprefix(prefix)
        if name != snake(parsed["type"]):
            parsed["name"] = name
    return parsed


def _with_module(entry: dict[str, Any]) -> dict[str, Any]:
    """Keras 3's wrappers read their inner layer with the strict deserializer, which needs
    ``module`` even in the universal form (verified: "Could not locate class 'LSTM'" without it)."""
    if "module" in entry:
        return entry
    return {"module": "keras.layers", **entry, "registered_name": None}


def _bidirectional_write(spec: Any, name: str, in_shape: tuple[Any, ...], entry: Entry) -> dict[str, Any]:
    inner = spec.layer
    forward_name, backward_name = direction_names(inner)
    backward = inner.model_copy(update={"go_backwards": True})
    out = {
        "layer": _with_module(entry(inner, forward_name, in_shape)),
        "backward_layer": _with_module(entry(backward, backward_name, in_shape)),
    }
    for item in out.values():
        item["config"]["zero_output_for_mask"] = bool(inner.return_sequences)
    return out


def _bidirectional_read(cfg: dict[str, Any], where: str, parse: Entry) -> tuple[dict[str, Any], dict[str, Any]]:
    forward = parse(_layer_entry(cfg, "layer", where), f"{where}: layer")
    if cfg.get("backward_layer") is not None:
        backward = parse(_layer_entry(cfg, "backward_layer", where), f"{where}: backward_layer")
        same = {k: v for k, v in forward.items() if k not in ("name", "go_backwards")} == {
            k: v for k, v in backward.items() if k not in ("name", "go_backwards")
        }
        if not same or forward.get("go_backwards", False) == backward.get("go_backwards", False):
            raise ArtifactError(
                f"{where}: expected backward_layer to be the forward layer reading backwards (Keras's default), "
                "received a different layer; a custom backward_layer is not supported"
            )
    rest = {k: v for k, v in cfg.items() if k not in ("layer", "backward_layer")}
    return rest, {"layer": _short_name(forward, "forward_")}


def _time_distributed_write(spec: Any, name: str, in_shape: tuple[Any, ...], entry: Entry) -> dict[str, Any]:
    inner = spec.layer
    return {"layer": _with_module(entry(inner, inner.name or snake(inner.type), tuple(in_shape[1:])))}


def _time_distributed_read(cfg: dict[str, Any], where: str, parse: Entry) -> tuple[dict[str, Any], dict[str, Any]]:
    entry = cfg.get("layer")
    if not isinstance(entry, dict):
        raise ArtifactError(f"{where}: expected 'layer' to be a layer entry with 'class_name' and 'config'")
    rest = {k: v for k, v in cfg.items() if k != "layer"}
    return rest, {"layer": _short_name(parse(entry, f"{where}: layer"))}


SEQ_CODECS: dict[str, LayerCodec] = {
    "Embedding": LayerCodec(
        (
            "input_dim",
            "output_dim",
            "embeddings_initializer",
            "embeddings_regularizer",
            "activity_regularizer",
            "embeddings_constraint",
            "mask_zero",
            "quantization_config",
        ),
        built=True,
    ),
    "SimpleRNN": LayerCodec((*_RNN_HEAD, *_INITS, *_TAIL), built=True),  # Keras writes no seed here
    "LSTM": LayerCodec((*_RNN_HEAD, "recurrent_activation", *_INITS, "unit_forget_bias", *_TAIL, "seed"), built=True),
    "GRU": LayerCodec((*_RNN_HEAD, "recurrent_activation", *_INITS, *_TAIL, "reset_after", "seed"), built=True),
    "Bidirectional": LayerCodec(
        ("merge_mode", "layer", "backward_layer"),
        built=True,
        write_nested=_bidirectional_write,
        read_nested=_bidirectional_read,
    ),
    "TimeDistributed": LayerCodec(
        ("layer",), built=True, write_nested=_time_distributed_write, read_nested=_time_distributed_read
    ),
}
