"""torch modules for Embedding, recurrent layers and their wrappers, with Keras semantics and Keras weight layout.

Weights stay in Keras layout (LSTM kernel ``(in, 4u)`` with gates i, f, c, o; GRU bias ``(2, 3u)``
with gates z, r, h), so the Keras files are plain copies; :mod:`.recurrent_ops` re-lays them out for
torch's fused kernels on every call (views and one small copy).

Masks travel as in Keras: an ``Embedding(mask_zero=True)`` marks id 0 as padding, and every layer
the mask reaches uses it or lets it through. The model is walked once when built (:meth:`Embedding.link`):
the RNNs that receive the mask hold a reference to the Embedding and read the mask it computed
in the same forward pass. Where Keras would do something with a mask that trainctl does not
(mask the loss, BatchNormalization moments, GlobalAveragePooling1D), building fails with a ConfigError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from trainctl.errors import ConfigError
from trainctl.model.initializers import initialize
from trainctl.model.layers import Builder, KerasLayer, _penalty
from trainctl.model.recurrent_ops import GATES, Recurrence, run
from trainctl.model.shapes import Shape, snake
from trainctl.model.shapes_seq import direction_names

if TYPE_CHECKING:
    from trainctl.model.sequential import Sequential

Groups = list[tuple[str, list[tuple[str, Tensor]]]]

# How a padding mask crosses each layer in Keras 3.15 (``supports_masking`` and whether ``call``
# takes ``mask``): these pass it on untouched and ignore it, these drop it (Keras warns).
MASK_PASSES = frozenset({
    "Activation", "Dense", "Dropout", "LayerNormalization", "SpatialDropout1D", "SpatialDropout2D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "LeakyReLU", "ReLU", "PReLU", "ELU",
    "UnitNormalization", "GroupNormalization",
})  # fmt: skip
MASK_STOPS = frozenset({
    "Flatten", "Reshape", "Embedding", "RepeatVector", "Permute", "Conv1D", "Conv2D", "Conv3D",
    "Conv1DTranspose", "Conv2DTranspose", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv2D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "UpSampling1D", "UpSampling2D",
    "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D",
})  # fmt: skip


def _total(terms: list[Tensor | None]) -> Tensor | None:
    kept = [t for t in terms if t is not None]
    return sum(kept[1:], kept[0]) if kept else None


def _penalties(pairs: list[tuple[Any, Tensor | None]]) -> Tensor | None:
    return _total([_penalty(spec, w) for spec, w in pairs if spec is not None and w is not None])


class Embedding(KerasLayer):
    """``embeddings[ids]``; float ids are truncated to integers first, as Keras casts them."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.embeddings = nn.Parameter(torch.empty(spec.input_dim, spec.output_dim))
        initialize(self.embeddings.data, spec.embeddings_initializer)
        self.embeddings_regularizer = spec.embeddings_regularizer
        self.mask_zero = bool(spec.mask_zero)
        self.has_consumers = False  # set by link(): compute the mask only when a layer reads it
        self.mask: Tensor | None = None

    def forward_pre(self, x: Tensor) -> Tensor:
        if self.has_consumers:
            self.mask = x != 0  # Keras: not_equal(inputs, 0), on the ids as given
        ids = x if x.dtype in (torch.int64, torch.int32) else x.long()  # truncates, as Keras's cast
        return F.embedding(ids, self.embeddings)

    @property
    def has_regularizer(self) -> bool:
        return self.embeddings_regularizer is not None

    def regularization(self) -> Tensor | None:
        return _penalties([(self.embeddings_regularizer, self.embeddings)])

    def link(self, model: Sequential) -> None:
        """Find the layers this Embedding's mask reaches, as Keras propagates it (see module doc)."""
        if not self.mask_zero:
            return
        start = next(i for i, m in enumerate(model.layers) if m is self)
        for j in range(start + 1, len(model.layers)):
            row = model.info[j]
            spec = model.spec.layers[row.index]
            module = model.layers[j]
            if isinstance(module, (Recurrent, Bidirectional)):
                module.attach_mask(self)
                self.has_consumers = True
                rnn = spec.layer if isinstance(module, Bidirectional) else spec
                if not rnn.return_sequences:  # Keras: the mask goes on only with the sequence
                    return
            elif spec.type in MASK_STOPS:
                return
            elif spec.type in MASK_PASSES or (
                spec.type == "TimeDistributed" and spec.layer.type in MASK_PASSES | MASK_STOPS
            ):
                continue
            else:
                inner = f"TimeDistributed({spec.layer.type})" if spec.type == "TimeDistributed" else spec.type
                raise ConfigError(
                    f"expected a layer that ignores or drops the padding mask of Embedding(mask_zero=true), "
                    f"received {inner}, which Keras would compute with the mask; trainctl does not implement that",
                    key=f"model.layers[{row.index}]",
                    hint="end the masked part with an RNN (return_sequences=false) before this layer, "
                    "or set mask_zero=false",
                )
        raise ConfigError(
            "expected the padding mask of Embedding(mask_zero=true) to end before the model output, "
            "received a model whose output still carries it: Keras would leave the masked timesteps "
            "out of the loss and metrics, which trainctl does not implement",
            key=f"model.layers[{model.info[start].index}]",
            hint="end the masked part with an RNN that has return_sequences=false, or set mask_zero=false",
        )


def _recurrence(spec: Any, zero_output_for_mask: bool = False) -> Recurrence:
    return Recurrence(
        kind=spec.type,
        units=spec.units,
        activation=spec.activation,
        recurrent_activation=getattr(spec, "recurrent_activation", "sigmoid"),
        go_backwards=spec.go_backwards,
        return_sequences=spec.return_sequences,
        zero_output_for_mask=zero_output_for_mask,
        dropout=spec.dropout,
        recurrent_dropout=spec.recurrent_dropout,
    )


class Recurrent(KerasLayer):
    """SimpleRNN, LSTM or GRU: ``kernel``, ``recurrent_kernel``, ``bias`` in Keras layout and order."""

    def __init__(self, spec: Any, in_shape: Shape, name: str, zero_output_for_mask: bool = False) -> None:
        super().__init__(name)
        gates, units = GATES[spec.type], spec.units
        self.recurrence = _recurrence(spec, zero_output_for_mask)
        self.cell_name = f"{snake(spec.type)}_cell"
        self.kernel = nn.Parameter(torch.empty(int(in_shape[-1]), gates * units))  # type: ignore[arg-type]
        self.recurrent_kernel = nn.Parameter(torch.empty(units, gates * units))
        initialize(self.kernel.data, spec.kernel_initializer)
        initialize(self.recurrent_kernel.data, spec.recurrent_initializer)
        self.bias: nn.Parameter | None = None
        if spec.use_bias:
            self.bias = nn.Parameter(torch.empty((2, 3 * units) if spec.type == "GRU" else (gates * units,)))
            if getattr(spec, "unit_forget_bias", False):
                # Keras: bias_initializer on the i and (c, o) blocks, ones on the forget block
                initialize(self.bias.data[:units], spec.bias_initializer)
                self.bias.data[units : 2 * units] = 1.0
                initialize(self.bias.data[2 * units :], spec.bias_initializer)
            else:
                initialize(self.bias.data, spec.bias_initializer)
        self.regularizers = (spec.kernel_regularizer, spec.recurrent_regularizer, spec.bias_regularizer)
        self._mask_source: tuple[Embedding, ...] = ()  # a tuple: not registered as a submodule

    def attach_mask(self, source: Embedding) -> None:
        self._mask_source = (source,)

    def forward_pre(self, x: Tensor) -> Tensor:
        mask = self._mask_source[0].mask if self._mask_source else None
        if mask is not None and mask.shape != x.shape[:2]:
            raise RuntimeError(f"{self.keras_name}: mask of shape {tuple(mask.shape)} for input {tuple(x.shape)}")
        return run(self.recurrence, x, self.kernel, self.recurrent_kernel, self.bias, mask=mask, training=self.training)

    def keras_groups(self, prefix: str = "") -> Groups:
        """Keras keeps RNN weights on the cell: ``layers/<lstm>/cell/vars``."""
        weights: list[tuple[str, Tensor]] = [
            (f"{prefix}{self.cell_name}/{n}", p) for n, p in self.named_parameters(recurse=False)
        ]
        return [("cell/vars", weights)]

    @property
    def has_regularizer(self) -> bool:
        return any(r is not None for r in self.regularizers)

    def regularization(self) -> Tensor | None:
        weights = (self.kernel, self.recurrent_kernel, self.bias)
        return _penalties(list(zip(self.regularizers, weights, strict=True)))


class Bidirectional(KerasLayer):
    """``layer`` forwards, a copy reading backwards, outputs merged (the backward sequence is
    flipped back first, as Keras does). Keras's names: ``forward_<name>``, ``backward_<name>``."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        inner = spec.layer
        forward_name, backward_name = direction_names(inner)
        zero = bool(inner.return_sequences)  # Keras forces zero_output_for_mask = return_sequences
        self.forward_layer = Recurrent(inner, in_shape, forward_name, zero)
        backward = inner.model_copy(update={"go_backwards": True})
        self.backward_layer = Recurrent(backward, in_shape, backward_name, zero)
        if not inner.trainable:
            self.requires_grad_(False)
        self.merge_mode = spec.merge_mode
        self.return_sequences = bool(inner.return_sequences)

    def attach_mask(self, source: Embedding) -> None:
        self.forward_layer.attach_mask(source)
        self.backward_layer.attach_mask(source)

    def forward_pre(self, x: Tensor) -> Tensor:
        y, y_rev = self.forward_layer(x), self.backward_layer(x)
        if self.return_sequences:
            y_rev = y_rev.flip(1)
        if self.merge_mode == "concat":
            return torch.cat([y, y_rev], dim=-1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "mul":
            return y * y_rev
        return (y + y_rev) / 2

    def keras_groups(self) -> Groups:
        fw = self.forward_layer.keras_groups(f"{self.forward_layer.keras_name}/")
        bw = self.backward_layer.keras_groups(f"{self.backward_layer.keras_name}/")
        return [(f"forward_layer/{fw[0][0]}", fw[0][1]), (f"backward_layer/{bw[0][0]}", bw[0][1])]

    @property
    def has_regularizer(self) -> bool:
        return self.forward_layer.has_regularizer

    def regularization(self) -> Tensor | None:
        return _total([self.forward_layer.regularization(), self.backward_layer.regularization()])


class TimeDistributed(KerasLayer):
    """The wrapped layer on ``(N*T, ...)``: timesteps are folded into the batch, one kernel call."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        from trainctl.model.builders import BUILDERS  # builders imports this module

        inner = spec.layer
        self.layer = BUILDERS[inner.type](inner, in_shape[1:], inner.name or snake(inner.type))
        if not inner.trainable:
            self.layer.requires_grad_(False)
        self.set_activation(self.layer.activation_name)  # the loss may fuse it, as for the inner layer

    def _fold(self, fn: Any, x: Tensor) -> Tensor:
        out: Tensor = fn(x.flatten(0, 1))
        return out.unflatten(0, x.shape[:2])

    def forward_pre(self, x: Tensor) -> Tensor:
        return self._fold(self.layer.forward_pre, x)

    def forward(self, x: Tensor) -> Tensor:
        return self._fold(self.layer, x)

    def keras_groups(self) -> Groups:
        own = getattr(self.layer, "keras_groups", None)
        if own is not None:
            return [(f"layer/{path}", weights) for path, weights in own()]
        prefix = f"{self.layer.keras_name}/"
        weights: list[tuple[str, Tensor]] = [(prefix + n, p) for n, p in self.layer.named_parameters(recurse=False)]
        weights += [(prefix + n, b) for n, b in self.layer.named_buffers(recurse=False)]
        return [("layer/vars", weights)]

    @property
    def has_regularizer(self) -> bool:
        m = self.layer
        return bool(
            getattr(m, "kernel_regularizer", None) is not None
            or getattr(m, "bias_regularizer", None) is not None
            or getattr(m, "has_regularizer", False)
        )

    def regularization(self) -> Tensor | None:
        return self.layer.regularization()  # type: ignore[operator,no-any-return]


SEQ_BUILDERS: dict[str, Builder] = {
    "Embedding": Embedding,
    "SimpleRNN": Recurrent,
    "LSTM": Recurrent,
    "GRU": Recurrent,
    "Bidirectional": Bidirectional,
    "TimeDistributed": TimeDistributed,
}
