"""``trainctl train --nproc-per-node N``: the launcher side, and one rank's side, of a distributed run.

The launcher checks everything it can before any worker starts (exit 2 for a bad config or flag),
makes the run folder, and runs torchrun's agent (``trainctl.distributed.launch``). Each worker is
``trainctl train`` again, in torchrun's environment: :func:`train_rank` joins the process group and
trains its shard. Rank 0 prints and writes; the other ranks stay silent unless ``--debug``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from trainctl.cli.common import STATE
from trainctl.errors import ArtifactError, ConfigError, DistributedFailure, TrainctlError

if TYPE_CHECKING:
    from trainctl.cli.train import TrainArgs


def launch(
    args: TrainArgs,
    nproc: str,
    nnodes: int,
    node_rank: int,
    rdzv_endpoint: str | None,
    max_restarts: int,
    dist_timeout: float | None,
) -> int | None:
    """Run the workers; their exit code. None: a world of one, which trains in this process."""
    if not STATE.debug:  # c10d's and gloo's C++ logs (before torch loads; workers inherit it): --debug shows them
        os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")
    from trainctl import api
    from trainctl.distributed.context import timeout_seconds
    from trainctl.distributed.launch import Launch, resolve_nproc, run_workers
    from trainctl.runs import RunDir

    spec = Launch(
        nproc_per_node=resolve_nproc(nproc),
        nnodes=nnodes,
        node_rank=node_rank,
        rdzv_endpoint=rdzv_endpoint,
        max_restarts=max_restarts,
        timeout_s=timeout_seconds(dist_timeout),
        debug=STATE.debug,
    )
    spec.check()
    if spec.world == 1:
        return None
    # everything a worker would refuse, refused here, before any process starts
    if args.resume is not None:
        run = RunDir.open(args.resume)
        info = run.read_json(RunDir.RUN)
        if info.get("status") in ("completed", "stopped_early"):
            raise ArtifactError(f"{run.path} already finished ({info['status']}); nothing to resume")
        if not run.file(RunDir.RESOLVED).is_file():
            raise ArtifactError(f"{run.file(RunDir.RESOLVED)}: missing; this run cannot be resumed, train it again")
    elif args.init_from is not None:
        RunDir.open(Path(args.init_from))
    loaded = args.load()
    cfg = loaded.config
    try:
        api.check_global_batch(cfg.fit.resolved_batch_size, spec.world)
        _check_devices(args.device or cfg.device, spec.nproc_per_node)
    except TrainctlError as exc:
        exc.locate(loaded.where)
        raise
    run_dir: Path | None = None
    if spec.node_rank == 0:  # node 0 holds rank 0, which writes the one run folder
        if args.resume is not None:
            run_dir = Path(args.resume)
        else:
            run_dir = api.create_run_folder(loaded, args.runs_dir, args.name)
            if args.verbose(loaded) != 0:
                print(f"run folder: {run_dir}", file=args.out, flush=True)
    try:
        return run_workers(spec, args.worker_argv(), run_dir)
    except DistributedFailure as exc:
        if run_dir is not None:
            _mark_failed(run_dir, exc)
        raise


def _check_devices(device: str, nproc: int) -> None:
    """gloo on the CPU, nccl on CUDA with one process per GPU: this node needs ``nproc`` GPUs."""
    if device == "cpu":
        return
    if device != "auto" and not device.startswith("cuda"):
        raise ConfigError(f"expected device cpu, cuda or auto for a distributed run, received {device!r}", key="device")
    import torch

    if not torch.cuda.is_available():
        if device != "auto":
            raise ConfigError(f"device {device!r} was asked for, but torch sees no CUDA GPU", key="device")
        return
    if torch.cuda.device_count() < nproc:
        raise ConfigError(
            f"expected at most {torch.cuda.device_count()} processes on this node (one per GPU), received {nproc}",
            key="device",
            hint="use --nproc-per-node auto, or device: cpu",
        )


def _mark_failed(run_dir: Path, exc: TrainctlError) -> None:
    """A rank that was killed could not record its end: the launcher does."""
    from trainctl.runs import RunDir

    try:
        run = RunDir(run_dir)
        info = run.read_json(RunDir.RUN) if run.file(RunDir.RUN).is_file() else {}
        if info.get("status") in (None, "starting", "running"):
            run.update_run(status="failed", error=exc.render())
    except (OSError, TrainctlError):
        pass


# ---------------------------------------------------------------------------------------------
# one rank


def train_rank(args: TrainArgs, dist_timeout: float | None) -> None:
    """One worker: join the group, train this rank's shard, and report as the CLI does (rank 0)."""
    from trainctl import api
    from trainctl.cli.train import _progress, _signals_to, finish
    from trainctl.distributed.context import ENV_RUN_DIR, as_failure, env, init, timeout_seconds
    from trainctl.distributed.launch import record_failure

    e = env()
    assert e is not None
    main = e.rank == 0
    if not main and not STATE.debug:
        _silence()
    launched_into = os.environ.get(ENV_RUN_DIR)
    if args.resume is None and launched_into and int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0:
        # --max-restarts: a restarted job continues from the last saved state
        args = dataclasses.replace(args, resume=Path(launched_into))
    ctx = None
    try:
        loaded = args.load()
        verbose = args.verbose(loaded)
        ctx = init(e, args.device or loaded.config.device, timeout_seconds(dist_timeout))
        progress = _progress(verbose, args.as_json) if main else None
        flag: list[int] = []
        with _signals_to(flag):
            if args.resume is not None:
                result = api.resume(args.resume, progress=progress, interrupt=flag, device=args.device, dist=ctx)
            else:
                announce = main and verbose != 0 and not launched_into  # the launcher announced it
                run_dir = Path(launched_into) if launched_into and main else None
                result = args.fit(loaded, flag, progress, announce, dist=ctx, run_dir=run_dir)
    except TrainctlError as exc:
        record_failure(f"rank {e.rank}: {exc.render()}")
        raise
    except Exception as exc:
        failure = as_failure(exc, e.rank)
        record_failure(failure.render() if failure is not None else f"rank {e.rank}: {type(exc).__name__}: {exc}")
        if failure is not None:
            raise failure from None
        raise
    finally:
        if ctx is not None:
            with contextlib.suppress(Exception):  # a peer already gone: nothing left to close cleanly
                ctx.close()
    if main:
        finish(result, args.as_json, verbose, args.out)


def _silence() -> None:
    """Ranks other than 0 print nothing (``--debug`` keeps their output): fds 1 and 2 go to
    /dev/null, so C++ warnings are quiet too. Their errors reach the launcher through the
    agent's error file."""
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)
