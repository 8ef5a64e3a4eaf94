"""Sequential: an ``nn.Module`` that keeps its spec, Keras names and inferred shapes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainctl.errors import ConfigError
from trainctl.model.builders import BUILDERS
from trainctl.model.layers import KerasLayer
from trainctl.model.shapes import LayerInfo, Shape, infer


class Sequential(nn.Module):
    """Layers in order. ``forward`` returns what Keras's ``model(x)`` returns.

    ``forward_pre`` stops before the last layer's own activation; ``final_activation`` names it.
    Losses use the pair to compute crossentropy from logits where that is exact.
    """

    def __init__(self, spec: Any) -> None:
        super().__init__()
        self.spec = spec
        self.name: str = spec.name
        self.input_shape, self.info = infer(list(spec.layers))
        self.layers = nn.ModuleList()
        for row in self.info:
            layer_spec = spec.layers[row.index]
            builder = BUILDERS.get(layer_spec.type)
            if builder is None:
                raise ConfigError(f"layer {layer_spec.type!r} is not implemented", key=f"model.layers[{row.index}]")
            module = builder(layer_spec, row.input_shape, row.name)
            if not layer_spec.trainable:
                module.requires_grad_(False)
            self.layers.append(module)
        self._check_params()
        for layer in self.layers:  # layers that need their neighbours (Embedding mask_zero -> RNNs)
            link = getattr(layer, "link", None)
            if link is not None:
                link(self)
        last = self.layers[-1] if len(self.layers) else None
        self.final_activation: str = last.activation_name if isinstance(last, KerasLayer) else "linear"
        self._has_reg = any(
            getattr(m, "kernel_regularizer", None) is not None
            or getattr(m, "bias_regularizer", None) is not None
            or getattr(m, "has_regularizer", False)  # other regularizers (recurrent, embeddings, wrapped)
            for m in self.layers
        )

    @property
    def output_shape(self) -> Shape:
        return self.info[-1].output_shape if self.info else self.input_shape

    def _check_params(self) -> None:
        for row, module in zip(self.info, self.layers, strict=True):
            got = sum(p.numel() for p in module.parameters()) + sum(b.numel() for b in module.buffers())
            if got != row.params:  # pragma: no cover - guards shapes.py against builder drift
                raise RuntimeError(f"{row.name}: built {got} params, shape rules say {row.params}")

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = layer(x)
        return self.layers[-1].forward_pre(x)  # type: ignore[operator]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """Apply the last layer's activation to what ``forward_pre`` returned."""
        return self.layers[-1]._act(pre)  # type: ignore[operator]

    def regularization_loss(self) -> torch.Tensor | None:
        """Sum of kernel/bias regularizer penalties (Keras adds them to the training loss)."""
        if not self._has_reg:
            return None
        terms = [t for m in self.layers if (t := m.regularization()) is not None]  # type: ignore[operator]
        return sum(terms[1:], terms[0]) if terms else None

    def keras_weights(self) -> list[tuple[LayerInfo, list[tuple[str, torch.Tensor]]]]:
        """Per layer, its weights in Keras order with Keras names (kernel, bias...)."""
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


def build_model(spec: Any) -> Sequential:
    """Build from a :class:`~trainctl.config.schema.ModelSpec`. Seed torch first for determinism.

    A spec whose weights alone exceed the memory available (a hostile ``model.json`` with a Dense
    layer of 10^12 units) is refused before torch allocates anything."""
    from trainctl.memory import check_weights_fit

    check_weights_fit(spec)
    return Sequential(spec)
