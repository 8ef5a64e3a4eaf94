"""The one thing the trainer reads batches from: a :class:`BatchSource`.

A batch is ``(x, y, w)`` (see the data-pipeline/functional contract): tensors on the training
device, ``w`` the per-sample weights or None.

Two implementations share one :class:`Order`:

- :class:`InMemorySource`: today's fast path. The split already sits on the device; a batch is an
  index slice (``index_select``), with no DataLoader and no per-sample Python.
- :class:`StreamingSource`: rows that do not fit, or must be decoded, are fetched WHOLE batches at a
  time by :class:`Rows.take`, in worker processes (fork; numpy only in the fetch), prefetched, and
  copied to CUDA from pinned memory with ``non_blocking``.

The order is a pure function of ``(seed, epoch)``: no loader state is saved, a resume mid-run is
exact, the worker count changes nothing, and rank ``r`` of ``n`` takes its slice of every global
batch (``torch.tensor_split(batch, n)[r]``), so the global batches are those one process sees.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

Batch = tuple[Any, Any, Any]


class BatchSource(Protocol):
    """What ``Trainer.fit``/``evaluate`` iterate. ``epoch(e, start)`` yields this rank's batches of
    epoch ``e`` from global step ``start``; ``len`` counts this rank's rows per epoch."""

    @property
    def device(self) -> torch.device: ...

    def __len__(self) -> int: ...

    def steps(self) -> int: ...

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]: ...


class Order:
    """The seeded order of one split: global batches of row indices, a pure function of (seed, epoch).

    The permutation of epoch ``e`` is the ``(e - first_epoch + 1)``-th ``torch.randperm(n)`` drawn
    from a generator seeded with ``seed``: the order trainctl has always used, so seeded results
    from before this class are unchanged. Any epoch is reached by replaying the draws (cheap: one
    randperm per epoch), so nothing about the order needs saving for resume.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int | None = 0,
        shuffle: bool = True,
        first_epoch: int = 0,
        rank: int = 0,
        world: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"expected 0 <= rank < world_size, received rank {rank} of {world}")
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.seed, self.first_epoch, self.rank, self.world = seed, first_epoch, rank, world
        self._live = generator  # legacy: draw from a caller's generator (stateful, not replayable)
        self._gen: torch.Generator | None = None
        self._drawn = 0  # permutations drawn so far from self._gen

    def steps(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def rows(self) -> int:
        """This rank's rows per epoch."""
        if self.world == 1:
            return self.n
        total = 0
        for b in self._global(0, shuffle=False):
            q, r = divmod(b.stop - b.start, self.world)
            total += q + (1 if self.rank < r else 0)  # tensor_split's rule, as in _shard
        return total

    def shard_of(self, step: int) -> tuple[int, int]:
        """(rows of global batch ``step``, the first of them this rank holds): what the layers
        that see the whole batch (dropout masks, BatchNormalization) need in a distributed run."""
        rows = min(self.batch_size, self.n - step * self.batch_size)
        q, r = divmod(rows, self.world)
        return rows, self.rank * q + min(self.rank, r)

    def permutation(self, epoch: int) -> torch.Tensor:
        """The shuffled row order of ``epoch`` (CPU int64)."""
        if self._live is not None:
            return torch.randperm(self.n, generator=self._live)
        want = epoch - self.first_epoch + 1
        if self._gen is None or self._drawn >= want:
            self._gen = torch.Generator()
            self._gen.manual_seed(int(self.seed or 0))
            self._drawn = 0
        perm = torch.empty(0, dtype=torch.int64)
        while self._drawn < max(want, 1):
            perm = torch.randperm(self.n, generator=self._gen)
            self._drawn += 1
        return perm

    def _global(self, epoch: int, *, shuffle: bool, device: torch.device | None = None) -> list[Any]:
        bs, n = self.batch_size, self.n
        if not shuffle:
            return [slice(i, min(i + bs, n)) for i in range(0, n, bs)]
        perm = self.permutation(epoch)
        if device is not None and device.type != "cpu":
            perm = perm.to(device, non_blocking=True)  # one copy per epoch, not one per step
        return list(torch.split(perm, bs))

    def batches(self, epoch: int, start: int = 0, device: torch.device | None = None) -> list[Any]:
        """This rank's part of each global batch from step ``start``: slices (unshuffled) or index
        tensors (on ``device`` when given)."""
        out = self._global(epoch, shuffle=self.shuffle, device=device)[start:]
        if self.world == 1:
            return out
        return [_shard(b, self.rank, self.world) for b in out]


def _shard(batch: Any, rank: int, world: int) -> Any:
    """Rank ``rank``'s part of one global batch, by ``tensor_split``'s rule (the first
    ``size % world`` ranks get one row more), for slices and index tensors alike."""
    if isinstance(batch, slice):
        q, r = divmod(batch.stop - batch.start, world)
        lo = batch.start + rank * q + min(rank, r)
        return slice(lo, lo + q + (1 if rank < r else 0))
    return torch.tensor_split(batch, world)[rank]


# ---------------------------------------------------------------------------------------------
# in memory: index slices of tensors already on the device


@dataclass
class InMemorySource:
    """A split held as tensors on the training device; batches are slices of them."""

    x: Any
    y: Any
    w: torch.Tensor | None
    order: Order

    def __len__(self) -> int:
        return self.order.rows()

    def steps(self) -> int:
        return self.order.steps()

    @property
    def device(self) -> torch.device:
        first = self.x[0] if isinstance(self.x, tuple) else self.x
        return first.device

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        x, y, w = self.x, self.y, self.w
        if isinstance(x, tuple) or isinstance(y, tuple):  # several inputs/outputs: one slice each
            for idx in self.order.batches(epoch, start, self.device):
                yield _take(x, idx), _take(y, idx), (None if w is None else _take(w, idx))
            return
        for idx in self.order.batches(epoch, start, self.device):  # the fast path: one tensor each
            if isinstance(idx, slice):
                yield x[idx], y[idx], (None if w is None else w[idx])
            else:
                yield x.index_select(0, idx), y.index_select(0, idx), (None if w is None else w.index_select(0, idx))


def _take(value: Any, idx: Any) -> Any:
    if isinstance(value, tuple):  # keeps a TensorTuple a TensorTuple
        return type(value)(_take(t, idx) for t in value)
    return value[idx] if isinstance(idx, slice) else value.index_select(0, idx)


# ---------------------------------------------------------------------------------------------
# streaming: whole batches fetched by worker processes


class Rows(Protocol):
    """Rows a streaming source can fetch: ``take`` returns WHOLE batches as numpy arrays, ready
    for the model (decoded, preprocessed). It runs in worker processes: numpy only, no torch."""

    def __len__(self) -> int: ...

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...


class _Fetch(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """A map-style dataset whose keys are whole batches of row indices."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return self.rows.take(idx)


class _EpochSampler:
    """Yields the index arrays of one epoch; the source sets ``keys`` before each iteration."""

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def auto_workers() -> int:
    """``data.workers: auto``: one core stays with training; at most 4 (measured: 2 workers gave
    1.5-2x on decoding, more mostly adds memory)."""
    from trainctl.host import cpu_cores

    return max(0, min(cpu_cores() - 1, 4))


class StreamingSource:
    """Batches fetched from :class:`Rows` by ``workers`` processes, ``prefetch`` batches ahead each."""

    def __init__(self, rows: Rows, order: Order, device: torch.device, *, workers: int = 0, prefetch: int = 2) -> None:
        self.rows, self.order, self.device = rows, order, torch.device(device)
        self.workers, self.prefetch = workers, prefetch
        self._sampler = _EpochSampler()
        self._loader: Any = None

    def __len__(self) -> int:
        return self.order.rows()

    def steps(self) -> int:
        return self.order.steps()

    def _keys(self, epoch: int, start: int) -> list[np.ndarray]:
        keys = []
        for b in self.order.batches(epoch, start):
            keys.append(np.arange(b.start, b.stop) if isinstance(b, slice) else b.numpy())
        return keys

    def _host_batches(self, keys: list[np.ndarray]) -> Iterator[tuple[Any, Any, Any]]:
        if self.workers == 0:
            for k in keys:
                yield _to_tensors(self.rows.take(k))
            return
        if self._loader is None:
            import multiprocessing

            self._loader = torch.utils.data.DataLoader(
                _Fetch(self.rows),
                batch_size=None,
                sampler=self._sampler,
                num_workers=self.workers,
                prefetch_factor=self.prefetch,
                persistent_workers=True,
                pin_memory=self.device.type == "cuda",
                multiprocessing_context=multiprocessing.get_context("fork"),
                # its own generator: the loader draws worker seeds from it, so the global torch RNG
                # (dropout masks, augmentation draws) stays as in the in-memory run
                generator=torch.Generator(),
            )
        self._sampler.keys = keys
        yield from self._loader

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        cuda = self.device.type == "cuda"
        for x, y, w in self._host_batches(self._keys(epoch, start)):
            if cuda and self.workers == 0:
                x, y = x.pin_memory(), y.pin_memory()
                w = None if w is None else w.pin_memory()
            yield (
                x.to(self.device, non_blocking=True),
                y.to(self.device, non_blocking=True),
                None if w is None else w.to(self.device, non_blocking=True),
            )

    def close(self) -> None:
        """Stop the worker processes now (they also stop when the source is collected)."""
        self._loader = None


def _to_tensors(batch: tuple[np.ndarray, np.ndarray, np.ndarray | None]) -> tuple[Any, Any, Any]:
    x, y, w = batch
    return (
        torch.from_numpy(np.ascontiguousarray(x)),
        torch.from_numpy(np.ascontiguousarray(y)),
        (None if w is None else torch.from_numpy(np.ascontiguousarray(w))),
    )


from trainctl.data.mapped import RELEASE_BYTES, random_access, release_pages  # noqa: E402


@dataclass
class ArrayRows:
    """Rows of numpy arrays (in memory or memory-mapped). ``transform`` (a fitted Preprocessor)
    turns raw x rows into model inputs per batch; y and w are final. ``index`` maps this split's
    row numbers to rows of ``x``/``y`` (a validation split), so a subset never copies the arrays."""

    x: Any
    y: np.ndarray
    w: np.ndarray | None = None
    transform: Any = None  # fitted Preprocessor, or None when x is final
    index: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x) if self.index is None else len(self.index)

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        w = None if self.w is None else self.w[idx]
        if self.index is not None:
            idx = self.index[idx]
        x, y = np.asarray(self.x[idx]), np.asarray(self.y[idx])
        if not hasattr(self, "_read"):
            random_access(self.x)
        self._read = getattr(self, "_read", 0) + x.nbytes
        if self._read >= RELEASE_BYTES:  # mapped pages count in RSS: hand them back to the page cache
            self._read = 0
            release_pages(self.x)
        if self.transform is not None:
            x = self.transform.transform_x(x)
        return x, y, w


# ---------------------------------------------------------------------------------------------
# choosing the path (the budget rule lives with the torch-free data layer)

from trainctl.data.dataset import memory_budget, plan_cache  # noqa: E402


def resolve_workers(requested: int | str) -> int:
    return auto_workers() if requested == "auto" else int(requested)


__all__ = [
    "ArrayRows",
    "Batch",
    "BatchSource",
    "InMemorySource",
    "Order",
    "Rows",
    "StreamingSource",
    "auto_workers",
    "memory_budget",
    "plan_cache",
    "resolve_workers",
]
