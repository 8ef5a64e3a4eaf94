"""The batch sources: one seeded order for every path, shards that tile the global batches, and a
streaming path that yields exactly the in-memory batches (whatever the worker count)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from trainctl.data.batches import ArrayRows, InMemorySource, Order, StreamingSource, plan_cache


def _legacy_batches(n: int, bs: int, seed: int, epochs: int) -> list[list[torch.Tensor]]:
    """The order trainctl used before batch sources: one generator seeded once, one randperm per epoch."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return [list(torch.split(torch.randperm(n, generator=gen), bs)) for _ in range(epochs)]


def _same(a: list, b: list) -> bool:
    pairs = zip(a, b, strict=True) if len(a) == len(b) else iter([(0, 1)])
    return all(torch.equal(torch.as_tensor(p), torch.as_tensor(q)) for p, q in pairs)


def test_order_is_the_legacy_order_and_a_pure_function_of_the_epoch() -> None:
    want = _legacy_batches(103, 10, seed=7, epochs=4)
    order = Order(103, 10, seed=7)
    for e in (2, 0, 3, 1, 3):  # any epoch, in any order: replayed, never read from loader state
        assert _same(order.batches(e), want[e])
    resumed = Order(103, 10, seed=7, first_epoch=2)  # fit.initial_epoch: that epoch takes the first draw
    assert _same(resumed.batches(2), want[0])
    assert order.steps() == 11


def test_unshuffled_order_is_contiguous_slices() -> None:
    assert Order(7, 3, shuffle=False).batches(5) == [slice(0, 3), slice(3, 6), slice(6, 7)]


@pytest.mark.parametrize("shuffle", [True, False])
def test_rank_shards_tile_each_global_batch(shuffle: bool) -> None:
    n, bs, world = 53, 8, 3
    whole = Order(n, bs, seed=3, shuffle=shuffle).batches(1)
    parts = [Order(n, bs, seed=3, shuffle=shuffle, rank=r, world=world).batches(1) for r in range(world)]
    as_idx = lambda b: torch.arange(b.start, b.stop) if isinstance(b, slice) else b  # noqa: E731
    for step, glob in enumerate(whole):
        joined = torch.cat([as_idx(parts[r][step]) for r in range(world)])
        assert torch.equal(joined, as_idx(glob))
    sizes = [Order(n, bs, rank=r, world=world).rows() for r in range(world)]
    assert sum(sizes) == n
    with pytest.raises(ValueError, match="rank 3 of 3"):
        Order(n, bs, rank=3, world=3)


def _data(n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(n, 5)).astype(np.float32),
        rng.integers(0, 3, n).astype(np.int64),
        rng.uniform(0.5, 2, n).astype(np.float32),
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_yields_the_in_memory_batches(workers: int) -> None:
    x, y, w = _data()
    mem = InMemorySource(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w), Order(200, 32, seed=5))
    stream = StreamingSource(ArrayRows(x, y, w), Order(200, 32, seed=5), torch.device("cpu"), workers=workers)
    for epoch in (0, 1):
        got, want = list(stream.epoch(epoch)), list(mem.epoch(epoch))
        assert len(got) == len(want) == 7
        for g, m in zip(got, want, strict=True):
            for a, b in zip(g, m, strict=True):
                assert torch.equal(a, b)
    stream.close()


def test_streaming_subset_through_an_index_map() -> None:
    x, y, _ = _data(50)
    index = np.arange(10, 50)
    stream = StreamingSource(ArrayRows(x, y, index=index), Order(40, 16, shuffle=False), torch.device("cpu"))
    xs = torch.cat([b[0] for b in stream.epoch(0)])
    assert torch.equal(xs, torch.from_numpy(x[10:]))
    assert len(stream) == 40 and stream.steps() == 3


CFG = """
seed: 1
data: {source: synthetic, kind: blobs, n: 300, features: 5, classes: 3}
model:
  layers:
    - {type: Dense, units: 8, activation: relu, input_shape: [5]}
    - {type: Dense, units: 3, activation: softmax}
compile: {optimizer: {type: Adam, learning_rate: 0.01}, loss: sparse_categorical_crossentropy, metrics: [accuracy]}
fit: {epochs: 1, batch_size: 20}
"""


def test_first_epoch_loss_streaming_equals_in_memory(tmp_path: Path) -> None:
    from trainctl.config import load_config
    from trainctl.model.sequential import build_model
    from trainctl.training.compiled import compile_model
    from trainctl.training.loop import Trainer
    from trainctl.training.optimizers import build_optimizer

    (tmp_path / "c.yaml").write_text(CFG)
    cfg = load_config(tmp_path / "c.yaml").config
    x, y, _ = _data(300)

    def first_epoch(path: str) -> dict[str, float]:
        torch.manual_seed(0)
        model = build_model(cfg.model)
        loss, metrics = compile_model(cfg.compile, model, y.shape)
        opt = build_optimizer(cfg.compile.optimizer, model.parameters())
        trainer = Trainer(model=model, optimizer=opt, loss=loss, metrics=metrics, batch_size=20)
        order = Order(300, 20, seed=9)
        if path == "memory":
            src: Any = InMemorySource(torch.from_numpy(x), torch.from_numpy(y), None, order)
        else:
            src = StreamingSource(ArrayRows(x, y), order, torch.device("cpu"), workers=2)
        return trainer.train_epoch(src, None)

    mem, stream = first_epoch("memory"), first_epoch("stream")
    assert abs(mem["loss"] - stream["loss"]) <= 1e-5
    assert mem == stream  # same rows, same order, same arithmetic: identical, not just close


def test_plan_cache_auto_follows_the_budget() -> None:
    assert plan_cache("auto", 100, budget=1000) == "memory"
    assert plan_cache("auto", 1001, budget=1000) == "none"
    assert plan_cache("memory", 10**12, budget=1) == "memory"
    assert plan_cache("none", 1, budget=1000) == "none"
