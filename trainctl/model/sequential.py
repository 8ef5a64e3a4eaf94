"""The one model class: a graph of layer calls (inputs -> nodes -> outputs) that keeps its spec.

A Keras ``Sequential`` is the chain special case: one input, each layer called on the one above,
one output. A chain runs as a plain loop over the layers, so Sequential models pay nothing for
the graph. Shapes, names and wiring come from :mod:`trainctl.model.shapes_graph` (torch-free).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainctl.errors import ConfigError
from trainctl.model.builders import BUILDERS
from trainctl.model.layers import KerasLayer
from trainctl.model.shapes import LayerInfo, Shape
from trainctl.model.shapes_graph import Graph, build_graph
from trainctl.model.tensors import TensorTuple

Tensors = torch.Tensor | tuple[torch.Tensor, ...]


class Model(nn.Module):
    """Keras's ``Model``. ``forward`` returns what Keras's ``model(x)`` returns: a tensor for one
    output, a tuple (in ``model.outputs`` order) for several; ``x`` likewise, per input.

    ``forward_pre`` stops before each output layer's own activation; ``final_activations`` names
    them (``final_activation`` the first). Losses use the pair to compute crossentropy from logits
    where that is exact.
    """

    def __init__(self, spec: Any) -> None:
        super().__init__()
        self.spec = spec
        self.name: str = spec.name
        self.graph: Graph = build_graph(spec)
        self.info: list[LayerInfo] = list(self.graph.layers)
        self.input_shapes: tuple[Shape, ...] = tuple(i.shape for i in self.graph.inputs)
        self.input_shape: Shape = self.input_shapes[0]
        self.input_dtypes: tuple[str, ...] = tuple(i.dtype for i in self.graph.inputs)
        self.output_names: list[str] = self.graph.output_names
        first_call = {}
        for node in reversed(self.graph.nodes):
            first_call[node.layer] = node
        self.layers = nn.ModuleList()
        for j, row in enumerate(self.info):
            layer_spec = spec.layers[row.index]
            builder = BUILDERS.get(layer_spec.type)
            if builder is None:
                raise ConfigError(f"layer {layer_spec.type!r} is not implemented", key=f"model.layers[{row.index}]")
            node = first_call[j]
            in_shape: Any = node.in_shapes if node.merge else row.input_shape  # merges: every input's shape
            module = builder(layer_spec, in_shape, row.name)
            if not layer_spec.trainable:
                module.requires_grad_(False)
            self.layers.append(module)
        self._check_params()
        self._chain = self.graph.is_chain
        for j, layer in enumerate(self.layers):  # layers that need their neighbours (Embedding mask_zero -> RNNs)
            link = getattr(layer, "link", None)
            if link is None:
                continue
            if self.graph.functional and getattr(layer, "mask_zero", False):
                raise ConfigError(
                    "expected Embedding(mask_zero=false) in a Functional model, received mask_zero=true: "
                    "trainctl propagates the padding mask along Sequential chains only",
                    key=f"model.layers[{self.info[j].index}]",
                    hint="set mask_zero=false, or write the model as a Sequential list of layers",
                )
            link(self)
        n_in = len(self.graph.inputs)
        # (module index, argument value ids, merge) per node, and which nodes are outputs
        self._plan = [(node.layer, node.args, node.merge) for node in self.graph.nodes]
        self._outs = tuple(self.graph.outputs)
        self._out_nodes = {v - n_in: k for k, v in enumerate(self._outs) if v >= n_in}
        self._multi_in = n_in > 1
        self._multi_out = len(self._outs) > 1
        self._acts = [self.layers[self.graph.nodes[v - n_in].layer] if v >= n_in else None for v in self._outs]
        self.final_activations: list[str] = [
            m.activation_name if isinstance(m, KerasLayer) else "linear" for m in self._acts
        ]
        self.final_activation: str = self.final_activations[0] if self.final_activations else "linear"
        self._has_reg = any(
            getattr(m, "kernel_regularizer", None) is not None
            or getattr(m, "bias_regularizer", None) is not None
            or getattr(m, "has_regularizer", False)  # other regularizers (recurrent, embeddings, wrapped)
            for m in self.layers
        )

    @property
    def output_shape(self) -> Shape:
        return self.graph.shape_of(self._outs[0])

    @property
    def output_shapes(self) -> tuple[Shape, ...]:
        return tuple(self.graph.shape_of(v) for v in self._outs)

    def _check_params(self) -> None:
        for row, module in zip(self.info, self.layers, strict=True):
            got = sum(p.numel() for p in module.parameters()) + sum(b.numel() for b in module.buffers())
            if got != row.params:  # pragma: no cover - guards shapes.py against builder drift
                raise RuntimeError(f"{row.name}: built {got} params, shape rules say {row.params}")

    def _run(self, x: Tensors, pre: bool) -> Tensors:
        values: list[Any] = list(x) if self._multi_in else [x]
        pres: dict[int, torch.Tensor] = {}
        layers = self.layers
        for k, (j, args, merge) in enumerate(self._plan):
            arg = [values[a] for a in args] if merge else values[args[0]]
            layer = layers[j]
            if pre and k in self._out_nodes:
                p = layer.forward_pre(arg)  # type: ignore[operator]
                pres[k] = p
                values.append(layer._act(p))  # type: ignore[operator]
            else:
                values.append(layer(arg))
        n_in = len(self.graph.inputs)
        outs = TensorTuple(pres.get(v - n_in, values[v]) if pre else values[v] for v in self._outs)
        return outs if self._multi_out else outs[0]

    def forward_pre(self, x: Tensors) -> Tensors:
        if self._chain:
            for layer in self.layers[:-1]:
                x = layer(x)
            return self.layers[-1].forward_pre(x)  # type: ignore[operator]
        return self._run(x, True)

    def forward(self, x: Tensors) -> Tensors:
        if self._chain:
            for layer in self.layers:
                x = layer(x)
            return x
        return self._run(x, False)

    def activate(self, pre: Tensors) -> Tensors:
        """Apply each output layer's activation to what ``forward_pre`` returned."""
        if self._chain:
            return self.layers[-1]._act(pre)  # type: ignore[operator]
        if self._multi_out:
            return TensorTuple(p if m is None else m._act(p) for m, p in zip(self._acts, pre, strict=True))  # type: ignore[operator]
        m = self._acts[0]
        return pre if m is None else m._act(pre)  # type: ignore[operator]

    def output_activations(self) -> list[Any]:
        """Each output layer's activation function (None for an output that is a model input)."""
        return [None if m is None else m._act for m in self._acts]

    def regularization_loss(self) -> torch.Tensor | None:
        """Sum of kernel/bias regularizer penalties (Keras adds them to the training loss)."""
        if not self._has_reg:
            return None
        terms = [t for m in self.layers if (t := m.regularization()) is not None]  # type: ignore[operator]
        return sum(terms[1:], terms[0]) if terms else None

    def keras_weights(self) -> list[tuple[LayerInfo, list[tuple[str, torch.Tensor]]]]:
        """Per layer (config order), its weights in Keras order with Keras names (kernel, bias...)."""
        out = []
        for row, module in zip(self.info, self.layers, strict=True):
            groups = getattr(module, "keras_groups", None)  # wrappers/RNNs: nested Keras variable groups
            if groups is not None:
                out.append((row, [w for _, weights in groups() for w in weights]))
                continue
            out.append(
                (
                    row,
                    [(n, p) for n, p in module.named_parameters(recurse=False)]
                    + [(n, b) for n, b in module.named_buffers(recurse=False)],
                )
            )
        return out


Sequential = Model  # the chain special case; the name older code and tests import


def build_model(spec: Any) -> Model:
    """Build from a :class:`~trainctl.config.schema.ModelSpec`. Seed torch first for determinism.

    A spec whose weights alone exceed the memory available (a hostile ``model.json`` with a Dense
    layer of 10^12 units) is refused before torch allocates anything."""
    from trainctl.memory import check_weights_fit

    check_weights_fit(spec)
    return Model(spec)
