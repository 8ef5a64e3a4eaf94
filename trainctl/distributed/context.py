"""Who this process is in a distributed run, and the few collectives the trainer needs.

torchrun (or trainctl's own launcher, which runs torchrun's agent) sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``; :func:`from_env` reads them. The backend is gloo on the CPU
and nccl on CUDA (one process per GPU, ``cuda:LOCAL_RANK``). Every reduction is a SUM of sums and
counts, so the numbers are those of one process over the global batch, never averages of averages.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from trainctl.errors import ConfigError, DistributedFailure

ENV_RUN_DIR = "TRAINCTL_RUN_DIR"  # the run folder the launcher created: rank 0 trains into it
ENV_TIMEOUT = "TRAINCTL_DIST_TIMEOUT"  # collective timeout in seconds
DEFAULT_TIMEOUT_S = 180.0  # gloo's default is 30 min and nccl's 10: too long to notice a hung rank


@dataclass(frozen=True)
class Env:
    """The torchrun environment of one worker."""

    rank: int
    world: int
    local_rank: int
    local_world: int

    @property
    def nodes(self) -> int:
        return max(1, self.world // max(self.local_world, 1))


def env() -> Env | None:
    """The torchrun environment, or None for a plain process (or a world of one)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1 or "RANK" not in os.environ:
            return None
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError as exc:
        raise ConfigError(f"expected integer RANK/WORLD_SIZE/LOCAL_RANK in the environment ({exc})") from None
    return Env(rank, world, local_rank, local_world)


def timeout_seconds(value: float | None = None) -> float:
    """``--dist-timeout``, else ``TRAINCTL_DIST_TIMEOUT``, else :data:`DEFAULT_TIMEOUT_S`."""
    if value is None:
        raw = os.environ.get(ENV_TIMEOUT)
        try:
            value = float(raw) if raw else DEFAULT_TIMEOUT_S
        except ValueError:
            raise ConfigError(f"expected a number of seconds in {ENV_TIMEOUT}, received {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"expected a collective timeout above 0 seconds, received {value}", key="--dist-timeout")
    return float(value)


@dataclass
class DistContext:
    """One rank of an initialized process group."""

    rank: int
    world: int
    local_rank: int
    nodes: int
    backend: str
    device: torch.device
    timeout_s: float

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> dict[str, Any]:
        """What run.json records."""
        return {
            "world_size": self.world,
            "backend": self.backend,
            "nodes": self.nodes,
            "nproc_per_node": self.world // self.nodes,
            "timeout_s": self.timeout_s,
        }

    def all_reduce_(self, tensors: list[torch.Tensor]) -> None:
        """Sum each tensor across ranks, in place, in ONE collective (flattened by dtype group)."""
        if not tensors:
            return
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for group in by_dtype.values():
            flat = torch.cat([t.reshape(-1) for t in group])
            self._all_reduce(flat)
            for t, part in zip(group, torch.split(flat, [t.numel() for t in group]), strict=True):
                t.copy_(part.view_as(t))

    def _all_reduce(self, flat: torch.Tensor) -> None:
        import torch.distributed as dist

        dist.all_reduce(flat)

    def broadcast_int(self, value: int) -> int:
        """Rank 0's value on every rank (the seed, drawn once)."""
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        import torch.distributed as dist

        dist.broadcast(t, src=0)
        return int(t.item())

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def init(e: Env, device: str, timeout_s: float) -> DistContext:
    """Join the process group: nccl and ``cuda:LOCAL_RANK`` when the run asks for CUDA, else gloo."""
    import torch.distributed as dist

    wants_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if wants_cuda:
        if torch.cuda.device_count() <= e.local_rank:
            raise ConfigError(
                f"rank {e.rank} needs cuda:{e.local_rank}, but torch sees {torch.cuda.device_count()} GPU(s)",
                key="device",
                hint="use one process per GPU: --nproc-per-node auto",
            )
        dev, backend = torch.device(f"cuda:{e.local_rank}"), "nccl"
        torch.cuda.set_device(dev)
    else:
        dev, backend = torch.device("cpu"), "gloo"
    kwargs: dict[str, Any] = {"device_id": dev} if backend == "nccl" else {}
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        # the agent's store outlives a restart (--max-restarts): without a prefix per attempt the
        # restarted ranks would read the dead ranks' gloo addresses from it
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        store = dist.TCPStore(
            os.environ["MASTER_ADDR"],
            int(os.environ["MASTER_PORT"]),
            e.world,
            is_master=False,
            timeout=timedelta(seconds=timeout_s),
        )
        kwargs |= {
            "store": dist.PrefixStore(f"/trainctl/attempt_{attempt}", store),
            "rank": e.rank,
            "world_size": e.world,
        }
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s), **kwargs)
    return DistContext(e.rank, e.world, e.local_rank, e.nodes, backend, dev, timeout_s)


def as_failure(exc: BaseException, rank: int) -> DistributedFailure | None:
    """A collective that failed (a peer died, or the timeout passed) as :class:`DistributedFailure`."""
    import torch.distributed as dist

    text = str(exc)
    known = isinstance(exc, dist.DistError) or any(
        s in text for s in ("gloo", "Connection closed", "Connection reset", "timed out", "Timed out", "NCCL")
    )
    if not isinstance(exc, RuntimeError) or not known:
        return None
    first = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
    return DistributedFailure(
        f"rank {rank}: a collective with the other ranks failed: {first}",
        hint="another rank died or hung; see its message above (the collective timeout is --dist-timeout)",
    )


def interrupt_signal(local: list[int]) -> int:
    """The signal to report when any rank was interrupted: ours, or SIGTERM for a peer's."""
    return local[0] if local else int(signal.SIGTERM)
