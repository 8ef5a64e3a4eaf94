"""torch modules for the merge layers (Add ... Dot), called on a list of tensors as in Keras."""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812

from trainctl.model.layers import KerasLayer
from trainctl.model.shapes_merge import dot_axes


def _align(xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Keras inserts missing axes right after the batch axis before broadcasting."""
    rank = max(x.dim() for x in xs)
    out = []
    for x in xs:
        while x.dim() < rank:
            x = x.unsqueeze(1)
        out.append(x)
    return out


class _Merge(KerasLayer):
    def __init__(self, spec: Any, in_shapes: Any, name: str) -> None:
        super().__init__(name)
        self.op = spec.type

    def forward_pre(self, xs: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        xs = _align(list(xs))
        out = xs[0]
        if self.op == "Subtract":
            return xs[0] - xs[1]
        for x in xs[1:]:
            if self.op in ("Add", "Average"):
                out = out + x
            elif self.op == "Multiply":
                out = out * x
            elif self.op == "Maximum":
                out = torch.maximum(out, x)
            else:
                out = torch.minimum(out, x)
        return out / len(xs) if self.op == "Average" else out


class Concatenate(KerasLayer):
    def __init__(self, spec: Any, in_shapes: Any, name: str) -> None:
        super().__init__(name)
        rank = len(in_shapes[0]) + 1
        self.axis = spec.axis if spec.axis >= 0 else spec.axis + rank

    def forward_pre(self, xs: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        return torch.cat(list(xs), dim=self.axis)


class Dot(KerasLayer):
    """Keras's ``batch_dot``: contract one axis of each input, per sample."""

    def __init__(self, spec: Any, in_shapes: Any, name: str) -> None:
        super().__init__(name)
        self.axes = dot_axes(spec.axes, len(in_shapes[0]) + 1, len(in_shapes[1]) + 1)
        self.normalize = spec.normalize

    def forward_pre(self, xs: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        x, y = xs
        a, b = self.axes
        if self.normalize:
            x = F.normalize(x, dim=a, eps=1e-7)
            y = F.normalize(y, dim=b, eps=1e-7)
        x = x.movedim(a, -1)  # (B, *rest_x, k)
        y = y.movedim(b, 1)  # (B, k, *rest_y)
        rest_x, rest_y = x.shape[1:-1], y.shape[2:]
        out = torch.bmm(x.reshape(x.shape[0], -1, x.shape[-1]), y.reshape(y.shape[0], y.shape[1], -1))
        out = out.reshape(x.shape[0], *rest_x, *rest_y)
        return out.unsqueeze(1) if out.dim() == 1 else out


MERGE_BUILDERS: dict[str, Any] = {
    "Add": _Merge,
    "Subtract": _Merge,
    "Multiply": _Merge,
    "Average": _Merge,
    "Maximum": _Merge,
    "Minimum": _Merge,
    "Concatenate": Concatenate,
    "Dot": Dot,
}
