"""The per-step shard context: which rows of the global batch this rank holds.

In a distributed run each rank forwards only its ``tensor_split`` part of every global batch. Layers
whose numbers depend on the whole batch read this context so that the run matches one process:

- random layers (Dropout, augmentation) draw for ALL ``rows`` of the global batch from the same
  stream one process would use, and keep rows ``offset:offset + n`` (:func:`global_draw`);
- BatchNormalization reduces its sums across ranks (``trainctl.model.norm``).

Outside a distributed training step there is no context and every layer takes its usual path,
so a single process pays nothing for this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shard:
    """``rows`` in the global batch; this rank's rows start at ``offset``."""

    rows: int
    offset: int


_current: Shard | None = None


def current() -> Shard | None:
    return _current


@contextmanager
def sharded(rows: int, offset: int) -> Iterator[None]:
    """Set the context for one forward pass (the trainer does this, once per step)."""
    global _current
    previous, _current = _current, Shard(rows, offset)
    try:
        yield
    finally:
        _current = previous


def global_draw(n: int, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """``draw(rows)`` makes random values with the batch on axis 0; under a shard context it is
    asked for the global batch and this rank's ``n`` rows are kept, so every rank consumes the
    random stream exactly as one process does."""
    shard = _current
    if shard is None:
        return draw(n)
    return draw(shard.rows).narrow(0, shard.offset, n)


class _AllReduceSum(torch.autograd.Function):
    """SUM across ranks; the gradient of every rank's input is the SUM of the ranks' output
    gradients (each rank's loss depends on the reduced value)."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        import torch.distributed as dist

        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        import torch.distributed as dist

        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """A differentiable SUM across the ranks of the default process group."""
    out = _AllReduceSum.apply(x)
    assert isinstance(out, torch.Tensor)
    return out
