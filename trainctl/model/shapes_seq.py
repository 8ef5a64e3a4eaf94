"""Shape rules (output shape, trainable and non-trainable params) for Embedding, SimpleRNN, LSTM,
GRU, Bidirectional, TimeDistributed.

Pure Python, like :mod:`trainctl.model.shapes`, so summaries need no torch.
"""

from __future__ import annotations

from typing import Any

from trainctl.errors import ConfigError
from trainctl.model.shapes import Rule, Shape, format_shape, snake

GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


def _embedding(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    # any rank: each id becomes a vector (Keras ``compute_output_shape``: (*input_shape, output_dim))
    return (*shape, spec.output_dim), spec.input_dim * spec.output_dim, 0


def _rnn(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    if len(shape) != 2 or shape[-1] is None:
        raise ConfigError(
            f"{spec.type} expected an input of shape (None, timesteps, features) with known features, "
            f"received {format_shape(shape)}",
            key=key,
            hint="an RNN reads sequences: put an Embedding, a Reshape or return_sequences=true before it",
        )
    gates, units, features = GATES[spec.type], spec.units, shape[-1]
    params = gates * (features * units + units * units)
    if spec.use_bias:
        params += gates * units * (2 if spec.type == "GRU" else 1)  # GRU reset_after: input + recurrent bias
    out: Shape = (shape[0], units) if spec.return_sequences else (units,)
    return out, params, 0


def _inner(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    """The wrapped layer's rule, with its own ``trainable`` flag applied."""
    from trainctl.model.shapes import rules

    inner = spec.layer
    out, trainable, frozen = rules()[inner.type](inner, shape, f"{key}.layer")
    if not inner.trainable:
        trainable, frozen = 0, trainable + frozen
    return out, trainable, frozen


def _bidirectional(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    out, trainable, frozen = _inner(spec, shape, key)
    if spec.merge_mode == "concat":
        out = (*out[:-1], 2 * out[-1])  # type: ignore[operator]
    return out, 2 * trainable, 2 * frozen


def _time_distributed(spec: Any, shape: Shape, key: str) -> tuple[Shape, int, int]:
    if len(shape) < 2:
        raise ConfigError(
            f"TimeDistributed expected an input of shape (None, timesteps, ...) (rank 3 or more), "
            f"received {format_shape(shape)}",
            key=key,
        )
    out, trainable, frozen = _inner(spec, shape[1:], key)
    return (shape[0], *out), trainable, frozen


SEQ_RULES: dict[str, Rule] = {
    "Embedding": _embedding,
    "SimpleRNN": _rnn,
    "LSTM": _rnn,
    "GRU": _rnn,
    "Bidirectional": _bidirectional,
    "TimeDistributed": _time_distributed,
}


def direction_names(inner: Any) -> tuple[str, str]:
    """Keras's names for Bidirectional's two copies of ``inner``: ``forward_lstm``, ``backward_lstm``."""
    base = inner.name or snake(inner.type)
    return f"forward_{base.removeprefix('forward_')}", f"backward_{base.removeprefix('backward_')}"
