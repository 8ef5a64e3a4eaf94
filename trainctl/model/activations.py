"""Keras activations as torch functions (Keras 3 definitions, e.g. leaky_relu slope 0.2)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812

Fn = Callable[[torch.Tensor], torch.Tensor]


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x + 3.0) / 6.0


ACTIVATIONS: dict[str, Fn] = {
    "linear": lambda x: x,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
    "tanh": torch.tanh,
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "silu": F.silu,
    "gelu": F.gelu,  # Keras 3 default approximate=False, the same as torch's default
    "exponential": torch.exp,
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": lambda x: x * _hard_sigmoid(x),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),  # Keras 3 negative_slope=0.2 (torch: 0.01)
    "relu6": F.relu6,
    "mish": F.mish,
}


def get(name: str) -> Fn:
    return ACTIVATIONS[name]
