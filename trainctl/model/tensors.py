"""A tuple of tensors (one per model input or output) that slices like one tensor.

The data contract gives a several-input model a tuple of tensors; :class:`TensorTuple` lets code
written for one tensor (batch slicing, ``.shape[0]``, ``.device``, ``.detach()``) run unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class TensorTuple(tuple):  # type: ignore[type-arg]
    """One tensor per model input or output, sliced together: ``t[idx]``, ``t.index_select(0, idx)``,
    ``t.shape[0]`` and ``t.device`` act on every column, so the loop's batch code is unchanged."""

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, int):
            return tuple.__getitem__(self, key)
        return TensorTuple(t[key] for t in self)

    def index_select(self, dim: int, index: Tensor) -> TensorTuple:
        return TensorTuple(t.index_select(dim, index) for t in self)

    def to(self, *args: Any, **kwargs: Any) -> TensorTuple:
        return TensorTuple(t.to(*args, **kwargs) for t in self)

    def detach(self) -> TensorTuple:
        return TensorTuple(t.detach() for t in self)

    def float(self) -> TensorTuple:
        return TensorTuple(t.float() for t in self)

    @property
    def dtype(self) -> torch.dtype:
        return tuple.__getitem__(self, 0).dtype

    @property
    def shape(self) -> torch.Size:
        return tuple.__getitem__(self, 0).shape

    @property
    def device(self) -> torch.device:
        return tuple.__getitem__(self, 0).device
