"""Layer specs, Keras 3 names and defaults:
Embedding, SimpleRNN, LSTM, GRU, Bidirectional, TimeDistributed.

Keras options with no meaning in a ``Sequential`` model, or no torch equivalent, are fields that
accept only their default and say why otherwise (``return_state``, ``stateful``, GRU
``reset_after=False``, Bidirectional ``merge_mode=None``). ``unroll`` is accepted and ignored: it
changes how Keras runs the loop, not the numbers. ``seed`` is accepted as on ``Dropout``: dropout
masks come from the run's seeded torch generator. Constraints and ``activity_regularizer`` are not
fields (a YAML that sets them is rejected; the JSON codecs write them at their Keras defaults).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PositiveInt,
    SerializeAsAny,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)

from trainctl.config.base import LAYERS
from trainctl.config.layers import ActivationName, Initializer, LayerSpec, Regularizer

RNN_TYPES = ("SimpleRNN", "LSTM", "GRU")

_ADAPTER: list[TypeAdapter[Any]] = []  # built on first use, once every family has registered


def _nested_layer(value: Any) -> Any:
    """A wrapped layer, written like any entry of ``model.layers`` (``{type: LSTM, units: 8}``)."""
    if not _ADAPTER:
        _ADAPTER.append(TypeAdapter(LAYERS.field()))
    return _ADAPTER[0].validate_python(value)


if TYPE_CHECKING:  # a LayerSpec subclass, checked at run time
    NestedLayer = Any
else:
    NestedLayer = Annotated[
        SerializeAsAny[LayerSpec],
        BeforeValidator(_nested_layer),
        WithJsonSchema({"type": "object", "description": "a layer, written as an entry of model.layers"}),
    ]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]


@LAYERS.register()
class Embedding(LayerSpec):
    """Integer ids -> vectors. Ids arrive as float32 unless cast (``{cast: int64}``); the layer
    truncates them to integers as Keras does. ``mask_zero`` makes id 0 padding for the RNNs after it."""

    type: Literal["Embedding"] = "Embedding"
    input_dim: PositiveInt
    output_dim: PositiveInt
    embeddings_initializer: Initializer = "uniform"  # type: ignore[assignment]
    embeddings_regularizer: Regularizer | None = None
    mask_zero: bool = False


class RNNSpec(LayerSpec):
    """Arguments SimpleRNN, LSTM and GRU share (Keras 3 names and defaults)."""

    units: PositiveInt
    activation: ActivationName = "tanh"
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"  # type: ignore[assignment]
    recurrent_initializer: Initializer = "orthogonal"  # type: ignore[assignment]
    bias_initializer: Initializer = "zeros"  # type: ignore[assignment]
    kernel_regularizer: Regularizer | None = None
    recurrent_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None
    dropout: Rate = 0.0
    recurrent_dropout: Rate = 0.0
    seed: int | None = None
    return_sequences: bool = False
    return_state: bool = False
    go_backwards: bool = False
    stateful: bool = False
    unroll: bool = False

    @model_validator(mode="after")
    def _sequential_only(self) -> RNNSpec:
        if self.return_state:
            raise ValueError(
                "return_state=true is not supported: the layer would return [output, *states] and a "
                "Sequential model passes one tensor on; use return_sequences to pass the outputs on"
            )
        if self.stateful:
            raise ValueError(
                "stateful=true is not supported: trainctl shuffles batches and resets states per batch, "
                "as Keras does with stateful=false"
            )
        return self


@LAYERS.register()
class SimpleRNN(RNNSpec):
    type: Literal["SimpleRNN"] = "SimpleRNN"


@LAYERS.register()
class LSTM(RNNSpec):
    type: Literal["LSTM"] = "LSTM"
    recurrent_activation: ActivationName = "sigmoid"
    unit_forget_bias: bool = True


@LAYERS.register()
class GRU(RNNSpec):
    type: Literal["GRU"] = "GRU"
    recurrent_activation: ActivationName = "sigmoid"
    reset_after: bool = True

    @model_validator(mode="after")
    def _reset_after(self) -> GRU:
        if not self.reset_after:
            raise ValueError(
                "reset_after=false is not supported: that GRU variant (reset gate before the recurrent "
                "matmul, bias of shape (3*units,)) has no torch kernel; use the Keras 3 default "
                "reset_after=true"
            )
        return self


class WrapperSpec(LayerSpec):
    """A layer wrapping another; the input shape goes on the wrapper, as in Keras."""

    layer: NestedLayer

    @model_validator(mode="after")
    def _inner_shape(self) -> WrapperSpec:
        wrapper = type(self).__name__
        if self.layer.type == "InputLayer":
            raise ValueError(f"{wrapper} cannot wrap an InputLayer")
        if self.layer.declared_input_shape() is not None:
            raise ValueError(f"put input_shape on the {wrapper} itself, not on the layer it wraps")
        return self


@LAYERS.register()
class Bidirectional(WrapperSpec):
    """Runs ``layer`` forwards and a copy of it backwards, merging the two outputs."""

    type: Literal["Bidirectional"] = "Bidirectional"
    merge_mode: Literal["concat", "sum", "mul", "ave"] = "concat"

    @model_validator(mode="before")
    @classmethod
    def _merge_none(cls, data: Any) -> Any:
        if isinstance(data, dict) and "merge_mode" in data and data["merge_mode"] is None:
            raise ValueError(
                "merge_mode=null is not supported: it returns two tensors and a Sequential model "
                "passes one on; use concat, sum, mul or ave"
            )
        return data

    @model_validator(mode="after")
    def _rnn_only(self) -> Bidirectional:
        if self.layer.type not in RNN_TYPES:
            raise ValueError(f"Bidirectional expected a SimpleRNN, LSTM or GRU layer, received {self.layer.type}")
        if self.layer.go_backwards:
            raise ValueError(  # Keras 3 raises too: its backward copy would also read backwards
                "Bidirectional expected a layer with go_backwards=false (the backward copy reads backwards), "
                "received go_backwards=true"
            )
        return self


@LAYERS.register()
class TimeDistributed(WrapperSpec):
    """Applies ``layer`` to every timestep (axis 1) independently, with one set of weights."""

    type: Literal["TimeDistributed"] = "TimeDistributed"

    @model_validator(mode="after")
    def _per_sample_only(self) -> TimeDistributed:
        if self.layer.type == "BatchNormalization":  # trainctl folds time into the batch: one call
            raise ValueError(
                "TimeDistributed(BatchNormalization) is not supported: Keras normalizes each timestep "
                "with its own batch statistics; use BatchNormalization directly (it normalizes the last axis)"
            )
        return self
