"""The launcher: torchrun's elastic agent, run inside ``trainctl train --nproc-per-node N``.

The agent (``torch.distributed.launcher.api.elastic_launch``, what ``torchrun`` runs) starts the
workers, does the rendezvous (standalone on one node; static, at ``--rdzv-endpoint``, across nodes),
watches them, stops them all when one fails, and restarts them ``--max-restarts`` times. Each worker
is ``python -m trainctl train ...`` with the environment torchrun sets, plus the run folder the
launcher made (:data:`~trainctl.distributed.context.ENV_RUN_DIR`). This module turns the agent's
outcome into an exit code, or a :class:`DistributedFailure` that names the rank.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainctl.distributed.context import ENV_RUN_DIR, ENV_TIMEOUT
from trainctl.errors import ConfigError, DistributedFailure

SHUTDOWN_S = 15  # how long stopping workers get to save their state before SIGKILL
QUIET_CODES = {2, 3, 4, 5, 6, 7, 8, 130, 143}  # a rank's own TrainctlError codes: already reported


def resolve_nproc(value: str) -> int:
    """``--nproc-per-node``: a count, or ``auto`` (one per visible GPU; 1 on the CPU)."""
    if value == "auto":
        import torch

        return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"expected --nproc-per-node to be a positive count or auto, received {value!r}")
    return n


@dataclass(frozen=True)
class Launch:
    """torchrun's flags, as ``trainctl train`` takes them."""

    nproc_per_node: int
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    max_restarts: int = 0
    timeout_s: float = 180.0
    debug: bool = False

    @property
    def world(self) -> int:
        return self.nproc_per_node * self.nnodes

    def check(self) -> None:
        if self.nnodes < 1:
            raise ConfigError(f"expected --nnodes of 1 or more, received {self.nnodes}")
        if not 0 <= self.node_rank < self.nnodes:
            raise ConfigError(f"expected --node-rank in 0..{self.nnodes - 1}, received {self.node_rank}")
        if self.max_restarts < 0:
            raise ConfigError(f"expected --max-restarts of 0 or more, received {self.max_restarts}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ConfigError(
                f"--nnodes {self.nnodes} needs --rdzv-endpoint HOST:PORT (node 0's address, the same on every node)"
            )
        if self.rdzv_endpoint is not None:
            host, _, port = self.rdzv_endpoint.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"expected --rdzv-endpoint HOST:PORT, received {self.rdzv_endpoint!r}")

    def config(self) -> Any:
        from torch.distributed.launcher.api import LaunchConfig

        if self.nnodes == 1 and self.rdzv_endpoint is None:  # torchrun --standalone
            backend, endpoint, configs = "c10d", "localhost:0", {}
        else:  # torchrun --node-rank R --rdzv-endpoint HOST:PORT: node 0 hosts the store
            backend, endpoint, configs = "static", str(self.rdzv_endpoint), {"rank": self.node_rank}
        return LaunchConfig(
            min_nodes=self.nnodes,
            max_nodes=self.nnodes,
            nproc_per_node=self.nproc_per_node,
            run_id=f"trainctl-{uuid.uuid4().hex[:12]}" if backend == "c10d" else "trainctl",
            rdzv_backend=backend,
            rdzv_endpoint=endpoint,
            rdzv_configs=configs,
            rdzv_timeout=int(max(self.timeout_s, 30)),  # waiting for the other nodes
            max_restarts=self.max_restarts,
            monitor_interval=0.2,
            start_method="spawn",
            shutdown_timeout=SHUTDOWN_S,
        )


def run_workers(launch: Launch, worker_args: Sequence[str], run_dir: Path | None) -> int:
    """Run ``trainctl train WORKER_ARGS`` on every rank of this node; the exit code to return.

    0 when every worker succeeded; a rank's own code when all failed ranks agree on one that
    trainctl already reported (a data error, an interrupt); otherwise :class:`DistributedFailure`
    naming the rank that failed first (a signal, an exception, a hang).
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    launch.check()
    if not launch.debug:  # the agent's own logging is for --debug; trainctl reports the outcome
        for logger_name in list(logging.root.manager.loggerDict):
            if logger_name.startswith(("torch.distributed.elastic", "torch.distributed.launcher")):
                logging.getLogger(logger_name).setLevel(logging.CRITICAL)
    if run_dir is not None:
        os.environ[ENV_RUN_DIR] = str(Path(run_dir).resolve())
    os.environ[ENV_TIMEOUT] = str(launch.timeout_s)
    root = ["--debug"] if launch.debug else []
    argv = ["-u", "-m", "trainctl", *root, "train", *worker_args]
    try:
        elastic_launch(launch.config(), sys.executable)(*argv)
    except ChildFailedError as exc:
        return _outcome(exc.failures)
    except SignalException as exc:  # the launcher was asked to stop: the workers saved and stopped
        return 128 + int(exc.sigval)
    except Exception as exc:  # the agent itself failed: rendezvous timeout, endpoint unreachable or in use
        if launch.debug:
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise DistributedFailure(
            f"the launcher on node {launch.node_rank} failed outside its workers: {type(exc).__name__}: {first}",
            hint="check --rdzv-endpoint (node 0's HOST:PORT, reachable and free) and that every node was started",
        ) from None
    return 0


STOPPED = {-int(signal.SIGTERM), -int(signal.SIGINT), 128 + int(signal.SIGTERM), 128 + int(signal.SIGINT)}


def _outcome(failures: dict[int, Any]) -> int:
    """The exit code for the failed ranks, or a :class:`DistributedFailure` naming the cause.

    When one worker fails, the agent stops the others (SIGTERM), and a rank waiting on a dead
    peer fails its collective (exit 9): those are consequences. The cause is, in order: a rank's
    own error (its exit code is kept), a rank killed by a signal the agent did not send (kill -9,
    the OOM killer), then whatever is left.
    """
    codes = {rank: int(f.exitcode) for rank, f in failures.items()}
    own = {r: c for r, c in codes.items() if c > 0 and c != DistributedFailure.exit_code and c not in STOPPED}
    if own:
        first = _earliest(failures, own)
        code = own[first]
        if 0 in own and own[0] == code and code in QUIET_CODES:
            return code  # rank 0 printed its message (other ranks print only with --debug)
        exc = DistributedFailure(f"rank {first} failed with exit code {code}: {_message(failures[first])}")
        if code in QUIET_CODES:
            exc.exit_code = code  # a data error on rank 1 is still a data error
        raise exc
    killed = {r: c for r, c in codes.items() if c < 0 and c not in STOPPED}
    if killed:
        first = min(killed)
        code = killed[first]
        try:
            what = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            what = f"was killed by signal {-code}"
        hint = "out of memory? (the kernel's OOM killer sends SIGKILL)" if -code == signal.SIGKILL else None
        raise DistributedFailure(f"rank {first} (pid {failures[first].pid}) {what}; the job was stopped", hint=hint)
    if codes and all(c in (130, 143) for c in codes.values()):
        return max(codes.values())  # every rank was interrupted and saved: resumable
    first = _earliest(failures, codes)
    raise DistributedFailure(f"rank {first} failed with exit code {codes[first]}: {_message(failures[first])}")


def _earliest(failures: dict[int, Any], ranks: dict[int, int]) -> int:
    return min(ranks, key=lambda r: (int(getattr(failures[r], "timestamp", 0) or 0), r))


def _message(failure: Any) -> str:
    message = failure.message
    if isinstance(message, dict):
        message = message.get("message", "")
    text = str(message or "").strip()
    if not text or text.startswith("To enable traceback"):
        return "no message (see its output above, or rerun with --debug)"
    return text


def record_failure(text: str) -> None:
    """Leave this worker's error where the agent reads it (``TORCHELASTIC_ERROR_FILE``), so the
    launcher can name the rank and its error even when the rank prints nothing."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({"message": text, "timestamp": int(time.time())}))
    except OSError:
        pass
