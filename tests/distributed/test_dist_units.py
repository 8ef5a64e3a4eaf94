"""In-process checks of the pieces, no worker processes: the shard arithmetic, global-batch random
draws, BatchNormalization's reduced statistics, the environment, and the launcher's exit codes."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from trainctl.data.batches import Order
from trainctl.distributed.context import env, timeout_seconds
from trainctl.distributed.launch import Launch, _outcome, resolve_nproc
from trainctl.errors import ConfigError, DistributedFailure
from trainctl.model import shard


@pytest.mark.parametrize(("n", "bs", "world"), [(103, 10, 2), (7, 4, 3), (9, 8, 4)])
def test_shard_of_matches_tensor_split(n: int, bs: int, world: int) -> None:
    for rank in range(world):
        order = Order(n, bs, shuffle=False, rank=rank, world=world)
        for step, part in enumerate(order.batches(0)):
            rows, offset = order.shard_of(step)
            glob = torch.arange(step * bs, min(n, (step + 1) * bs))
            assert rows == len(glob)
            mine = torch.tensor_split(glob, world)[rank]
            assert (part.start, part.stop) == (offset + step * bs, offset + step * bs + len(mine))


def _layer(kind: str, **spec: object) -> torch.nn.Module:
    from trainctl.model.layers import Dropout
    from trainctl.model.norm import SpatialDropout

    ns = SimpleNamespace(rate=0.4, noise_shape=None, type=kind, data_format="channels_last", **spec)
    return (Dropout if kind == "Dropout" else SpatialDropout)(ns, (None,), "d").train()


@pytest.mark.parametrize("kind", ["Dropout", "SpatialDropout1D"])
def test_dropout_ranks_use_slices_of_the_one_process_mask(kind: str) -> None:
    layer = _layer(kind)
    x = torch.randn(11, 5, 3).requires_grad_() * 1.0  # a non-leaf activation, as in a model
    torch.manual_seed(3)
    whole = layer(x)
    parts = []
    for offset, n in ((0, 6), (6, 5)):  # tensor_split(11, 2): 6 + 5 rows
        torch.manual_seed(3)  # every rank's stream is in the one process's state
        with shard.sharded(11, offset):
            parts.append(layer(x[offset : offset + n]))
    assert torch.equal(torch.cat(parts), whole)


def test_batchnorm_global_path_equals_the_fused_kernel() -> None:
    """With a world of one the reduced sums are the local ones: the formula must match torch's."""
    import torch.distributed as dist

    from trainctl.config.layers_norm import BatchNormalization as Spec
    from trainctl.model.norm import BatchNormalization

    spec = Spec(momentum=0.9, epsilon=1e-3, moving_mean_initializer="random_normal")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        fused, synced = BatchNormalization(spec, (4, 3), "bn"), BatchNormalization(spec, (4, 3), "bn")
        with torch.no_grad():
            fused.gamma.uniform_(0.5, 1.5)  # type: ignore[union-attr]
            fused.beta.uniform_(-1, 1)  # type: ignore[union-attr]
        synced.load_state_dict(fused.state_dict())
        x = torch.randn(8, 4, 3)
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_fused = fused.train()(a)
        with shard.sharded(8, 0):
            out_synced = synced.train()(b)
        torch.testing.assert_close(out_synced, out_fused, rtol=1e-5, atol=1e-5)
        (out_fused * torch.arange(3.0)).sum().backward()
        (out_synced * torch.arange(3.0)).sum().backward()
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(synced.moving_mean, fused.moving_mean)
        torch.testing.assert_close(synced.moving_variance, fused.moving_variance)
    finally:
        dist.destroy_process_group()


def test_env_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "TRAINCTL_DIST_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    assert env() is None
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    e = env()
    assert e is not None and (e.rank, e.world, e.local_rank, e.nodes) == (3, 4, 1, 2)
    assert timeout_seconds() == 180.0
    monkeypatch.setenv("TRAINCTL_DIST_TIMEOUT", "7.5")
    assert timeout_seconds() == 7.5 and timeout_seconds(3) == 3.0
    with pytest.raises(ConfigError):
        timeout_seconds(0)


def test_launcher_flags_are_checked() -> None:
    assert resolve_nproc("3") == 3
    assert resolve_nproc("auto") == (max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1)
    for bad in ("0", "-1", "two"):
        with pytest.raises(ConfigError):
            resolve_nproc(bad)
    for launch in (
        Launch(2, nnodes=2),  # no endpoint
        Launch(2, nnodes=2, node_rank=2, rdzv_endpoint="h:1"),
        Launch(2, rdzv_endpoint="no-port"),
        Launch(2, max_restarts=-1),
    ):
        with pytest.raises(ConfigError):
            launch.check()


@dataclass
class Failure:
    exitcode: int
    pid: int = 100
    message: str = ""
    timestamp: int = 0


def test_outcome_names_the_rank_that_caused_it() -> None:
    killed = {1: Failure(-int(signal.SIGKILL)), 0: Failure(DistributedFailure.exit_code)}
    with pytest.raises(DistributedFailure, match=r"rank 1 \(pid 100\) was killed by SIGKILL") as info:
        _outcome(killed)
    assert info.value.exit_code == 9
    # rank 1's own data error (silent rank) keeps its code; rank 0 was stopped by the agent
    with pytest.raises(DistributedFailure, match="rank 1 failed with exit code 3: rank 1: bad rows") as info:
        _outcome({0: Failure(-int(signal.SIGTERM)), 1: Failure(3, message="rank 1: bad rows")})
    assert info.value.exit_code == 3
    assert _outcome({0: Failure(3), 1: Failure(3)}) == 3  # rank 0 printed it already
    assert _outcome({0: Failure(143), 1: Failure(143)}) == 143  # interrupted, resumable
    with pytest.raises(DistributedFailure, match="rank 0 failed with exit code 1"):
        _outcome({0: Failure(1, message="ValueError: x"), 1: Failure(9)})


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "RandomFlip"},
        {"type": "RandomRotation", "factor": 0.2},
        {"type": "RandomContrast", "factor": 0.3},
        {"type": "RandomCrop", "height": 6, "width": 5},
    ],
    ids=lambda s: s["type"],
)
def test_augmentation_ranks_use_slices_of_the_one_process_draws(spec: dict) -> None:
    from trainctl.config import layers_preprocess
    from trainctl.model.augment import AUGMENT_BUILDERS

    parsed = getattr(layers_preprocess, spec["type"])(**spec, seed=5)
    layer = AUGMENT_BUILDERS[spec["type"]](parsed, (8, 8, 3), "aug").train()
    x = torch.rand(11, 8, 8, 3)
    whole = layer(x)
    parts = []
    for offset, n in ((0, 6), (6, 5)):
        layer.generator.manual_seed(5)  # each rank's stream is where the one process's was
        with shard.sharded(11, offset):
            parts.append(layer(x[offset : offset + n]))
    layer.generator.manual_seed(5)
    torch.testing.assert_close(torch.cat(parts), layer(x), rtol=0, atol=1e-6)
    assert whole.shape == torch.cat(parts).shape
