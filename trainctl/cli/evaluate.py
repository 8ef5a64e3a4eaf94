"""``trainctl evaluate RUN``: Keras ``model.evaluate`` from a run folder alone."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

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
    report: Annotated[
        bool,
        typer.Option("--report", help="Also write RUN/eval/report.json, PNG plots and a self-contained report.html."),
    ] = False,
    task: Annotated[
        str | None,
        typer.Option("--task", help="classification, regression or segmentation (default: from the loss and shapes)."),
    ] = None,
    fail_under: Annotated[
        list[str] | None,
        typer.Option("--fail-under", metavar="METRIC=MIN", help="Exit 6 if METRIC < MIN (repeatable)."),
    ] = None,
    fail_over: Annotated[
        list[str] | None,
        typer.Option("--fail-over", metavar="METRIC=MAX", help="Exit 6 if METRIC > MAX, e.g. loss=0.5 (repeatable)."),
    ] = None,
) -> None:
    """Report the loss and metrics of a trained run on its test split (or on --data).

    Uses the run's saved preprocessing, loss and metrics; writes RUN/eval/metrics.json.
    --report adds per-class metrics, curves and plots; --fail-under/--fail-over gate CI on them.
    """
    from trainctl.evaluation import evaluate as run_evaluate
    from trainctl.gates import parse_gates
    from trainctl.reporting.progress import format_logs

    # --- quality gates and --report (see docs/reports.md) ----------------------------------
    gates = parse_gates(fail_under or [], fail_over or [])
    _check_task(task, report)
    files: dict[str, Path] = {}
    extra: dict[str, float] = {}
    if report:
        result, extra, files = _evaluate_with_report(run, data, batch_size, device, runs_dir, task)
    else:
        result = run_evaluate(run, data=data, batch_size=batch_size, device=device, runs_dir=runs_dir)
    gate_results = _gate_results(gates, result.metrics, extra, report)
    if as_json:
        obj: dict[str, object] = {
            "run_dir": str(result.run_dir),
            "data": result.data,
            "samples": result.samples,
            "metrics": result.metrics,
        }
        if report:
            plots = {name: str(path) for name, path in files.items() if name not in ("json", "html")}
            obj["report"] = {"metrics": extra, "json": str(files["json"]), "html": str(files["html"]), "plots": plots}
        if gates:
            obj["gates"] = [g.to_json() for g in gate_results]
        emit_json(obj)
        _fail_if_gated(gate_results, as_json=True)
        return
    if plain_output():
        sys.stderr.write(f"{result.run_dir}: {result.samples} samples from {result.data}\n")
        sys.stdout.write(format_logs(result.metrics) + "\n")
        _describe(files, gate_results, sys.stderr.write)
        _fail_if_gated(gate_results, as_json=False)
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
    _describe(files, gate_results, lambda text: console.print(text, end="", highlight=False, markup=False))
    _fail_if_gated(gate_results, as_json=False)


# --- helpers for --report and the quality gates -------------------------------------------


def _check_task(task: str | None, report: bool) -> None:
    from trainctl.errors import ConfigError

    tasks = ("classification", "regression", "segmentation")
    if task is not None and task not in tasks:
        from trainctl.config.base import did_you_mean

        guess = did_you_mean(task, tasks)
        raise ConfigError(
            f"expected one of {', '.join(tasks)}, received {task!r}",
            key="--task",
            hint=f"did you mean {guess!r}?" if guess else None,
        )
    if task is not None and not report:
        raise ConfigError("expected --report with --task, received --task alone", key="--task")


def _evaluate_with_report(
    run: str, data: Path | None, batch_size: int | None, device: str | None, runs_dir: Path, task: str | None
) -> tuple[Any, dict[str, float], dict[str, Path]]:
    """Evaluate once, build the report from the same predictions, write it into RUN/eval/."""
    from trainctl.evaluation import evaluate_with_predictions
    from trainctl.reporting.report import build_outputs_report, build_report, write_report
    from trainctl.runs import RunDir

    result, preds = evaluate_with_predictions(run, data=data, batch_size=batch_size, device=device, runs_dir=runs_dir)
    if isinstance(preds, dict):  # several outputs: one report per output, by name
        rep = build_outputs_report(preds, task=task, evaluation=result)  # type: ignore[arg-type]
    else:
        rep = build_report(preds, task=task, evaluation=result)  # type: ignore[arg-type]
    files = write_report(RunDir(result.run_dir), rep)
    return result, rep.metrics, files


def _gate_results(gates: list[Any], metrics: dict[str, float], extra: dict[str, float], report: bool) -> list[Any]:
    """Gates see the evaluation's metrics and, with --report, the report's (Keras's win on a clash)."""
    if not gates:
        return []
    from trainctl.gates import check_gates
    from trainctl.reporting.report import REPORT_METRICS

    merged = dict(metrics)
    for key, value in extra.items():
        merged.setdefault(key, value)
    return check_gates(gates, merged, report_only=() if report else REPORT_METRICS)


def _describe(files: dict[str, Path], gate_results: list[Any], write: Callable[[str], Any]) -> None:
    if "html" in files:
        write(f"report: {files['html']}\n")
    for g in gate_results:
        if g.passed:
            write(f"gate passed: {g.message}\n")


def _fail_if_gated(gate_results: list[Any], *, as_json: bool) -> None:
    """Exit 6 after the output is printed; with --json the one JSON object already says why."""
    from trainctl.gates import failed

    err = failed(gate_results)
    if err is None:
        return
    if not as_json:
        raise err
    sys.stderr.write(f"error: {err.render()}\n")
    raise typer.Exit(err.exit_code)
