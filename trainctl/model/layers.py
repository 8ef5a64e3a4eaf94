"""torch modules for the Keras core layers. Weights are stored in Keras layout.

Keeping Keras's layout (Dense kernel ``(in, out)``) makes the Keras file formats a plain copy and
lets Keras's initializer fan rules apply unchanged; ``addmm`` runs as fast on either layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainctl.model import activations, shard
from trainctl.model.initializers import initialize
from trainctl.model.shapes import Shape


class KerasLayer(nn.Module):
    """Base: ``activation`` is the layer's own final activation (``linear`` when none).

    ``forward_pre`` returns the value before that activation, so a loss can fuse softmax or
    sigmoid with its log for stability (see ``trainctl.training.losses``).
    """

    activation_name = "linear"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.keras_name = name
        self._act: Callable[[torch.Tensor], torch.Tensor] = activations.get("linear")

    def set_activation(self, name: str) -> None:
        self.activation_name = name
        self._act = activations.get(name)

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._act(self.forward_pre(x))

    def regularization(self) -> torch.Tensor | None:
        return None


def _penalty(spec: Any, w: torch.Tensor) -> torch.Tensor:
    l1 = getattr(spec, "l1", 0.0)
    l2 = getattr(spec, "l2", 0.0)
    out = w.new_zeros(())
    if l1:
        out = out + l1 * w.abs().sum()
    if l2:
        out = out + l2 * w.square().sum()
    return out


class Dense(KerasLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        n_in = int(in_shape[-1])  # type: ignore[arg-type]
        self.kernel = nn.Parameter(torch.empty(n_in, spec.units))
        self.bias = nn.Parameter(torch.empty(spec.units)) if spec.use_bias else None
        initialize(self.kernel.data, spec.kernel_initializer)
        if self.bias is not None:
            initialize(self.bias.data, spec.bias_initializer)
        self.set_activation(spec.activation)
        self.kernel_regularizer = spec.kernel_regularizer
        self.bias_regularizer = spec.bias_regularizer

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            if self.bias is None:
                return x @ self.kernel
            return torch.addmm(self.bias, x, self.kernel)
        out = torch.matmul(x, self.kernel)
        return out if self.bias is None else out + self.bias

    def regularization(self) -> torch.Tensor | None:
        terms = []
        if self.kernel_regularizer is not None:
            terms.append(_penalty(self.kernel_regularizer, self.kernel))
        if self.bias_regularizer is not None and self.bias is not None:
            terms.append(_penalty(self.bias_regularizer, self.bias))
        return sum(terms[1:], terms[0]) if terms else None


class Activation(KerasLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.set_activation(spec.activation)


class Dropout(KerasLayer):
    """Inverted dropout, as Keras: scale kept units by 1/(1-rate) at training time only."""

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.rate = float(spec.rate)
        self.noise_shape = spec.noise_shape

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        if self.noise_shape is None:
            if shard.current() is None:
                return nn.functional.dropout(x, self.rate, True)
            # a rank of a distributed step: its rows of the global batch's mask, drawn as
            # nn.functional.dropout draws it on the CPU (bernoulli_ into empty_like, then div_)
            tail = tuple(x.shape[1:])
            noise = shard.global_draw(
                int(x.shape[0]), lambda rows: x.new_empty((rows, *tail)).bernoulli_(1.0 - self.rate)
            )
            return x * noise.div(1.0 - self.rate)
        shape = [x.shape[i] if d is None else d for i, d in enumerate(self.noise_shape)]
        if self.noise_shape[0] is None:
            keep = shard.global_draw(
                int(x.shape[0]),
                lambda rows: torch.empty([rows, *shape[1:]], device=x.device, dtype=x.dtype).bernoulli_(
                    1.0 - self.rate
                ),
            )
        else:
            keep = torch.empty(shape, device=x.device, dtype=x.dtype).bernoulli_(1.0 - self.rate)
        return x * keep / (1.0 - self.rate)


class Flatten(KerasLayer):
    """Flattens channels_last data in Keras's element order (trainctl tensors are NHWC).

    ``data_format="channels_first"`` moves axis 1 last before flattening, as Keras does.
    """

    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.channels_first = getattr(spec, "data_format", None) == "channels_first"

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_first and x.dim() > 2:
            x = x.permute(0, *range(2, x.dim()), 1)
        return x.reshape(x.shape[0], -1)


class Reshape(KerasLayer):
    def __init__(self, spec: Any, in_shape: Shape, name: str) -> None:
        super().__init__(name)
        self.target = tuple(spec.target_shape)

    def forward_pre(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.target)


Builder = Callable[[Any, Shape, str], KerasLayer]

CORE_BUILDERS: dict[str, Builder] = {
    "Dense": Dense,
    "Activation": Activation,
    "Dropout": Dropout,
    "Flatten": Flatten,
    "Reshape": Reshape,
}
