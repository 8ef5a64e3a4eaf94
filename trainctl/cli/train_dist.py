"""``trainctl train --nproc-per-node N``: the launcher side, and one rank's side, of a distributed run.

The launcher checks everything it can before any worker starts (exit 2 for a bad config or flag),
makes the run folder, and runs torchrun's agent (``trainctl.distributed.launch``). Each worker is
``trainctl train`` again, in torchrun's environment: :func:`train_rank` joins the process group and
trains its shard. Rank 0 prints and writes; the other ranks stay silent unless ``--debug``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from trainctl.cli.common import STATE
from trainctl.errors import ArtifactError, ConfigError, DistributedFailure, TrainctlError


def launch(
    config: Path | None,
    overrides: list[str] | None,
    name: str | None,
    runs_dir: Path,
    device: str | None,
    smoke: bool,
    as_json: bool,
    threads: int | None,
    resume: Path | None,
    init_from: Path | None,
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
    from trainctl.config import load_config
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
    out = sys.stderr if as_json else sys.stdout
    # everything a worker would refuse, refused here, before any process starts
    if resume is not None:
        run = RunDir.open(resume)
        info = run.read_json(RunDir.RUN)
        if info.get("status") in ("completed", "stopped_early"):
            raise ArtifactError(f"{run.path} already finished ({info['status']}); nothing to resume")
        if not run.file(RunDir.RESOLVED).is_file():
            raise ArtifactError(f"{run.file(RunDir.RESOLVED)}: missing; this run cannot be resumed, train it again")
        loaded = load_config(run.file(RunDir.RESOLVED))
        verbose: Any = "auto"
    else:
        if config is None:
            raise ConfigError("expected a CONFIG file (or --resume RUN)", hint="trainctl train configs/xor.yaml")
        loaded = load_config(config, [*(overrides or []), *([f"threads={threads}"] if threads else [])])
        verbose = loaded.config.fit.verbose
        if init_from is not None:
            RunDir.open(Path(init_from))
    cfg = loaded.config
    try:
        api.check_global_batch(cfg.fit.resolved_batch_size, spec.world)
        _check_devices(device or cfg.device, spec.nproc_per_node)
    except TrainctlError as exc:
        exc.locate(loaded.where)
        raise
    run_dir: Path | None = None
    if spec.node_rank == 0:  # node 0 holds rank 0, which writes the one run folder
        if resume is not None:
            run_dir = Path(resume)
        else:
            run_dir = api.create_run_folder(loaded, runs_dir, name)
            if verbose != 0:
                print(f"run folder: {run_dir}", file=out, flush=True)
    args = _worker_args(config, overrides, name, runs_dir, device, smoke, as_json, threads, resume, init_from)
    try:
        return run_workers(spec, args, run_dir)
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


def _worker_args(
    config: Path | None,
    overrides: list[str] | None,
    name: str | None,
    runs_dir: Path,
    device: str | None,
    smoke: bool,
    as_json: bool,
    threads: int | None,
    resume: Path | None,
    init_from: Path | None,
) -> list[str]:
    """The command line each worker gets: this one, without the launcher's flags."""
    args: list[str] = []
    if resume is not None:
        args += ["--resume", str(Path(resume).resolve())]
    else:
        args += [str(Path(str(config)).resolve()), *(overrides or [])]
    args += ["--runs-dir", str(Path(runs_dir).resolve())]
    for flag, value in (("--name", name), ("--device", device), ("--threads", threads), ("--init-from", init_from)):
        if value is not None:
            args += [flag, str(Path(value).resolve()) if isinstance(value, Path) else str(value)]
    if smoke:
        args.append("--smoke")
    if as_json:
        args.append("--json")
    return args


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


def train_rank(
    config: Path | None,
    overrides: list[str] | None,
    name: str | None,
    runs_dir: Path,
    device: str | None,
    smoke: bool,
    as_json: bool,
    threads: int | None,
    resume: Path | None,
    init_from: Path | None,
    dist_timeout: float | None,
) -> None:
    """One worker: join the group, train this rank's shard, and report as the CLI does (rank 0)."""
    from trainctl import api
    from trainctl.cli.train import _progress, _signals_to, finish
    from trainctl.config import load_config
    from trainctl.distributed.context import ENV_RUN_DIR, as_failure, env, init, timeout_seconds
    from trainctl.distributed.launch import record_failure
    from trainctl.runs import RunDir

    e = env()
    assert e is not None
    main = e.rank == 0
    if not main and not STATE.debug:
        _silence()
    out = sys.stderr if as_json else sys.stdout
    launched_into = os.environ.get(ENV_RUN_DIR)
    if resume is None and launched_into and int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0:
        resume = Path(launched_into)  # --max-restarts: a restarted job continues from the last saved state
    ctx = None
    try:
        if resume is not None:
            loaded = load_config(RunDir.open(resume).file(RunDir.RESOLVED))
            verbose: Any = "auto"
        else:
            if config is None:
                raise ConfigError("expected a CONFIG file (or --resume RUN)")
            loaded = load_config(config, [*(overrides or []), *([f"threads={threads}"] if threads else [])])
            verbose = loaded.config.fit.verbose
        ctx = init(e, device or loaded.config.device, timeout_seconds(dist_timeout))
        progress = _progress(verbose, as_json) if main else None
        flag: list[int] = []
        with _signals_to(flag):
            if resume is not None:
                result = api.resume(resume, progress=progress, interrupt=flag, device=device, dist=ctx)
            else:
                announce = main and verbose != 0 and not launched_into  # the launcher announced it
                result = api.train(
                    loaded,
                    interrupt=flag,
                    runs_dir=runs_dir,
                    name=name,
                    device=device,
                    smoke=smoke,
                    init_from=init_from,
                    progress=progress,
                    on_run_dir=(lambda p: print(f"run folder: {p}", file=out)) if announce else None,
                    dist=ctx,
                    run_dir=Path(launched_into) if launched_into and main else None,
                )
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
        finish(result, as_json, verbose, out)


def _silence() -> None:
    """Ranks other than 0 print nothing (``--debug`` keeps their output): fds 1 and 2 go to
    /dev/null, so C++ warnings are quiet too. Their errors reach the launcher through the
    agent's error file."""
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)
