"""``trainctl train CONFIG [key=value ...]``: validate, build, fit, and write a run folder."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from trainctl.cli.common import emit_json, handle_errors, plain_output


def _progress(verbose: Any, as_json: bool) -> Any:
    """Keras's verbose: 0 silent, 1 bar, 2 one line per epoch; auto = bar on a terminal only."""
    from rich.console import Console

    from trainctl.reporting.progress import PlainProgress, RichProgress

    stream = sys.stderr if as_json else sys.stdout
    if verbose == 0:
        return None
    if verbose == 2 or plain_output() or not stream.isatty():
        return PlainProgress(stream)
    return RichProgress(Console(file=stream))


@contextmanager
def _signals_to(flag: list[int]) -> Iterator[None]:
    """SIGINT/SIGTERM ask the loop to stop after the current step; a second one stops at once."""

    def handler(signum: int, _frame: object) -> None:
        if flag:
            raise KeyboardInterrupt
        flag.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass(frozen=True)
class TrainArgs:
    """The options of one ``trainctl train``, shared by the one-process path, the distributed
    launcher (which hands them on to each worker) and each rank."""

    config: Path | None
    overrides: tuple[str, ...]
    name: str | None
    runs_dir: Path
    device: str | None
    smoke: bool
    as_json: bool
    threads: int | None
    resume: Path | None
    init_from: Path | None

    @property
    def out(self) -> Any:
        """Where messages go: stderr under ``--json``, so stdout holds the one JSON object."""
        return sys.stderr if self.as_json else sys.stdout

    def load(self) -> Any:
        """The config to train: the resumed run's resolved config, or CONFIG with the overrides
        (``--threads`` is one more override)."""
        from trainctl.config import load_config
        from trainctl.errors import ConfigError
        from trainctl.runs import RunDir

        if self.resume is not None:
            return load_config(RunDir.open(self.resume).file(RunDir.RESOLVED))
        if self.config is None:
            raise ConfigError("expected a CONFIG file (or --resume RUN)", hint="trainctl train configs/xor.yaml")
        return load_config(self.config, [*self.overrides, *([f"threads={self.threads}"] if self.threads else [])])

    def verbose(self, loaded: Any) -> Any:
        """Keras's ``verbose``: the config's, or ``auto`` when resuming (its config is not re-read)."""
        return "auto" if self.resume is not None else loaded.config.fit.verbose

    def fit(self, loaded: Any, flag: list[int], progress: Any, announce: bool, **dist: Any) -> Any:
        """``api.train`` with these options; ``announce`` prints the run folder once it exists."""
        from trainctl import api

        on_run_dir: Callable[[Path], None] | None = (
            (lambda p: print(f"run folder: {p}", file=self.out)) if announce else None
        )
        return api.train(
            loaded,
            interrupt=flag,
            runs_dir=self.runs_dir,
            name=self.name,
            device=self.device,
            smoke=self.smoke,
            init_from=self.init_from,
            progress=progress,
            on_run_dir=on_run_dir,
            **dist,
        )

    def worker_argv(self) -> list[str]:
        """The command line each distributed worker gets: these options, paths made absolute."""
        args: list[str] = []
        if self.resume is not None:
            args += ["--resume", str(Path(self.resume).resolve())]
        else:
            args += [str(Path(str(self.config)).resolve()), *self.overrides]
        args += ["--runs-dir", str(Path(self.runs_dir).resolve())]
        named = {"--name": self.name, "--device": self.device, "--threads": self.threads, "--init-from": self.init_from}
        for flag, value in named.items():
            if value is not None:
                args += [flag, str(Path(value).resolve()) if isinstance(value, Path) else str(value)]
        if self.smoke:
            args.append("--smoke")
        if self.as_json:
            args.append("--json")
        return args


def _worker_env() -> bool:
    """torchrun's environment with more than one process (read without importing torch)."""
    import os

    try:
        return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


@handle_errors("as_json")
def train(
    config: Annotated[Path | None, typer.Argument(help="The run's YAML file.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Overrides such as fit.epochs=3 (checked against the schema).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: the config's name).")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders go.")] = Path("runs"),
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="CI smoke run: every stage on a small slice, in seconds.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout; everything else on stderr.")
    ] = False,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="CPU threads (default: cores - 1, at most 8).")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue an interrupted run, in its own folder, from its last epoch."),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option("--init-from", help="Start a NEW run from the weights of a finished run."),
    ] = None,
    nproc_per_node: Annotated[
        str | None,
        typer.Option(
            "--nproc-per-node",
            help="Distributed: processes on this node (auto: one per GPU, 1 on CPU); runs torchrun's agent.",
        ),
    ] = None,
    nnodes: Annotated[int, typer.Option("--nnodes", help="Distributed: number of nodes.")] = 1,
    node_rank: Annotated[int, typer.Option("--node-rank", help="Distributed: this node's rank, 0..nnodes-1.")] = 0,
    rdzv_endpoint: Annotated[
        str | None, typer.Option("--rdzv-endpoint", help="Distributed: HOST:PORT of node 0, for several nodes.")
    ] = None,
    max_restarts: Annotated[
        int, typer.Option("--max-restarts", help="Distributed: restart the workers up to K times, from the last epoch.")
    ] = 0,
    dist_timeout: Annotated[
        float | None,
        typer.Option("--dist-timeout", help="Distributed: collective timeout in seconds (default 180)."),
    ] = None,
) -> None:
    """Train a model described by CONFIG into runs/<name>-<timestamp>/."""
    from trainctl import api
    from trainctl.cli.common import ClosedStream
    from trainctl.errors import ConfigError, IOFailure

    args = TrainArgs(
        config, tuple(overrides or ()), name, runs_dir, device, smoke, as_json, threads, resume, init_from
    )  # fmt: skip
    if isinstance(sys.stdout, ClosedStream):  # fail before a run folder exists, not after
        raise IOFailure("stdout is closed", hint="give train an open stdout (or redirect it to a file)")
    if resume is not None and (config is not None or overrides or init_from is not None):
        raise ConfigError(
            "--resume continues a run exactly as it was configured; it takes no CONFIG, overrides or --init-from",
            hint="use `trainctl train CONFIG --init-from RUN` to start a new run from its weights",
        )
    if _worker_env():  # started by torchrun (or trainctl's launcher): this process is one rank
        from trainctl.cli.train_dist import train_rank

        train_rank(args, dist_timeout)
        return
    if nproc_per_node is not None or nnodes > 1:
        from trainctl.cli.train_dist import launch

        code = launch(args, nproc_per_node or "1", nnodes, node_rank, rdzv_endpoint, max_restarts, dist_timeout)
        if code is not None:
            if code:
                raise typer.Exit(code)
            return
    flag: list[int] = []
    if resume is not None:
        verbose = "auto"
        with _signals_to(flag):
            result = api.resume(resume, progress=_progress(verbose, as_json), interrupt=flag, device=device)
    else:
        loaded = args.load()
        verbose = args.verbose(loaded)
        progress = _progress(verbose, as_json)
        with _signals_to(flag):
            result = args.fit(loaded, flag, progress, announce=verbose != 0)
    finish(result, as_json, verbose, args.out)


def finish(result: Any, as_json: bool, verbose: Any, out: Any) -> None:
    """What a finished ``train`` prints: the --json object, or the test metrics and the status."""
    if as_json:
        emit_json(
            {
                "run_dir": str(result.run_dir),
                "status": result.status,
                "epochs": result.epochs,
                "metrics": result.metrics,
            }
        )
        return
    if verbose != 0:
        test = result.metrics.get("test")
        if test:
            out.write("test: " + " - ".join(f"{k}: {v:.4f}" for k, v in test.items()) + "\n")
        out.write(f"{result.status}: {result.run_dir}\n")
