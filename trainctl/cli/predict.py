"""``trainctl predict RUN INPUT``: stream inputs through a run's preprocessing and model."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from trainctl.cli.common import emit_json, handle_errors


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops predict at once with exit 143; the --output file is written atomically, so
    its temp file is removed on the way out and no partial output is left."""
    from trainctl.errors import Interrupted

    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signum, "interrupted by SIGTERM; no output was written")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@handle_errors("as_json")
def predict(
    run: Annotated[str, typer.Argument(help="A run folder, or a run name (the newest runs/<name>-*).")],
    input: Annotated[
        list[str],
        typer.Argument(
            help="A .npy, .npz, .csv or IDX (.gz) file, a folder of images, or - for CSV on stdin; "
            "for a run trained on an image_directory, one or more image files or folders."
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="A .csv, .npy or .jsonl file (default: CSV on stdout).")
    ] = None,
    classes: Annotated[
        bool, typer.Option("--classes", help="Class labels (argmax, or > 0.5 for one sigmoid unit).")
    ] = False,
    proba: Annotated[bool, typer.Option("--proba", help="Probabilities (softmax/sigmoid of logits).")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Rows per batch.")] = 1024,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run names are looked up.")] = Path("runs"),
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N (default: auto).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON summary on stdout (needs --output).")] = False,
) -> None:
    """Predict with a trained run: the model's outputs, --proba or --classes, one row per sample.

    The input is read and written in chunks, so memory does not grow with its size.
    """
    from trainctl.errors import ConfigError
    from trainctl.evaluation import Mode
    from trainctl.evaluation import predict as run_predict

    if classes and proba:
        raise ConfigError("expected at most one of --classes and --proba, received both")
    to_stdout = output is None or str(output) == "-"
    if as_json and to_stdout:
        raise ConfigError("--json needs --output FILE: stdout already carries the predictions")
    mode: Mode = "classes" if classes else "proba" if proba else "raw"
    with _stop_on_sigterm():
        result = run_predict(
            run,
            sys.stdin if input == ["-"] else Path(input[0]) if len(input) == 1 else [Path(p) for p in input],
            sys.stdout if to_stdout else output,
            mode=mode,
            batch_size=batch_size,
            device=device,
            runs_dir=runs_dir,
        )
    if to_stdout:
        sys.stdout.flush()
        return
    if as_json:
        emit_json(
            {
                "run_dir": str(result.run_dir),
                "input": result.input,
                "output": result.output,
                "rows": result.rows,
                "mode": result.mode,
                "columns": result.columns,
            }
        )
        return
    sys.stdout.write(f"wrote {result.rows} predictions to {result.output}\n")
