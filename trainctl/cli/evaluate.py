"""``trainctl evaluate RUN``: Keras ``model.evaluate`` from a run folder alone."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from trainctl.cli.common import emit_json, handle_errors, plain_output


@handle_errors("as_json")
def evaluate(
    run: Annotated[str, typer.Argument(help="A run folder, or a run name (the newest runs/<name>-*).")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Evaluate on FILE.npz, FILE.csv or CONFIG.yaml's test split instead."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Samples per batch (default: the run's).")
    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run names are looked up.")] = Path("runs"),
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N (default: auto).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout; everything else on stderr.")
    ] = False,
) -> None:
    """Report the loss and metrics of a trained run on its test split (or on --data).

    Uses the run's saved preprocessing, loss and metrics; writes RUN/eval/metrics.json.
    """
    from trainctl.evaluation import evaluate as run_evaluate
    from trainctl.reporting.progress import format_logs

    result = run_evaluate(run, data=data, batch_size=batch_size, device=device, runs_dir=runs_dir)
    if as_json:
        emit_json(
            {"run_dir": str(result.run_dir), "data": result.data, "samples": result.samples, "metrics": result.metrics}
        )
        return
    if plain_output():
        sys.stderr.write(f"{result.run_dir}: {result.samples} samples from {result.data}\n")
        sys.stdout.write(format_logs(result.metrics) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{result.run_dir.name}[/bold]: {result.samples} samples from {result.data}", highlight=False)
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
