"""``trainctl runs list|show|compare``: what is in the runs folder, one run in detail, runs side by side."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from trainctl.cli.common import emit_json, handle_errors, plain_output
from trainctl.runs.rundir import _clean

app = typer.Typer(help="List, inspect and compare run folders.", no_args_is_help=True)

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="The folder that holds the runs.")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object on stdout; everything else on stderr.")]
RUN_HELP = "A run folder, a folder name under --runs-dir, or a run name (its newest folder)."


# ------------------------------------------------------------------------------ formatting
def _metric(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.4f}"


def _value(value: Any) -> str:
    """A config value as YAML would show it; an absent key as ``-``."""
    from trainctl.runs.listing import MISSING

    if value is MISSING:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _date(started: str | None) -> str:
    """A run's start in local time, to the minute, as people read a listing."""
    from trainctl.runs.listing import parse_time

    t = parse_time(started)
    return "-" if t is None else t.astimezone().strftime("%Y-%m-%d %H:%M")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> None:
    """A rich table on a terminal; plain space-aligned columns otherwise (pipes, CI, logs).
    All-empty headers are not printed (key/value listings)."""
    show_header = any(headers)
    if not plain_output():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, box=None, header_style="bold", pad_edge=False, show_header=show_header)
        for i in right:
            table.columns[i].justify = "right"
        table.columns[0].no_wrap = True  # run folder names are what people copy into commands
        for row in rows:
            table.add_row(*row)
        Console(highlight=False).print(table)
        return
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows] if show_header else rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        sys.stdout.write("  ".join(cells).rstrip() + "\n")


def _best(record: Any, shared: bool = False) -> str:
    best = record.best_val
    return "-" if best is None else _metric(best.value) if shared else f"{best.key} {_metric(best.value)}"


def _test(record: Any, shared: bool = False) -> str:
    test = record.test
    return "-" if test is None else _metric(test[1]) if shared else f"{test[0]} {_metric(test[1])}"


def _shared(keys: set[str], label: str) -> tuple[str, bool]:
    """A column header naming the metric when every run has the same one (shorter cells)."""
    return (f"{label} {next(iter(keys))}", True) if len(keys) == 1 else (label, False)


# ------------------------------------------------------------------------------ commands
@app.command("list")
@handle_errors("as_json")
def list_runs(runs_dir: RunsDir = Path("runs"), as_json: AsJson = False) -> None:
    """Every run under --runs-dir, newest first: status, epochs, best validation and test metric."""
    from trainctl.runs.listing import scan_runs

    records = scan_runs(runs_dir)
    if as_json:
        emit_json(_clean({"runs_dir": str(runs_dir), "runs": [r.to_json() for r in records]}))
        return
    if not records:
        sys.stderr.write(f"no runs under {runs_dir}\n")
        return
    best_head, best_shared = _shared({r.best_val.key for r in records if r.best_val}, "best")
    test_head, test_shared = _shared({r.test[0] for r in records if r.test}, "test")
    rows = [
        [
            r.folder.name,
            _date(r.started),
            r.status,
            "-" if r.epochs is None else str(r.epochs),
            _best(r, best_shared),
            _test(r, test_shared),
            _duration(r.duration_s),
        ]
        for r in records
    ]
    headers = ["run", "date", "status", "epochs", best_head, test_head, "duration"]
    _table(headers, rows, right=(3, 4, 5, 6) if best_shared and test_shared else (3, 6))


@app.command("show")
@handle_errors("as_json")
def show(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    runs_dir: RunsDir = Path("runs"),
    as_json: AsJson = False,
) -> None:
    """One run: its run.json facts, final metrics, best validation value and config highlights."""
    from trainctl.runs.listing import final_metrics, find_run, highlights, read_config, read_record

    folder = find_run(run, runs_dir).path
    record = read_record(folder)
    metrics = final_metrics(folder)
    config = highlights(read_config(folder))
    params = _params(folder)
    if params is not None:
        config["params"] = params
    if as_json:
        emit_json(_clean(record.to_json() | {"run": record.info, "metrics": metrics, "config": config}))
        return
    info = record.info
    facts: list[tuple[str, Any]] = [
        ("run", folder.name),
        ("folder", str(folder)),
        ("name", record.name),
        ("status", record.status),
        ("started", record.started),
        ("ended", record.ended),
        ("duration", _duration(record.duration_s)),
        ("epochs", record.epochs),
        ("seed", info.get("seed")),
        ("device", info.get("device")),
        ("versions", ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())),
        ("best val", None if record.best_val is None else f"{_best(record)} (epoch {record.best_val.epoch})"),
        ("error", info.get("error")),
        *(("warning", w) for w in info.get("warnings") or []),
        *(("problem", p) for p in record.problems),
    ]
    _table(["", ""], [[k, str(v)] for k, v in facts if v not in (None, "")])
    names = list(dict.fromkeys(m for split in metrics.values() for m in split))
    if names:
        sys.stdout.write("\n")
        _table(
            ["", *names],
            [[s, *(_metric(m.get(n)) for n in names)] for s, m in metrics.items()],
            right=range(1, 1 + len(names)),
        )
    if config:
        sys.stdout.write("\nconfig:\n")
        _table(["", ""], [[k, ", ".join(map(str, v)) if isinstance(v, list) else str(v)] for k, v in config.items()])


def _params(folder: Path) -> int | None:
    """Total parameters from the run's config (as ``summary`` counts them), None if it won't load."""
    from trainctl import api
    from trainctl.config import load_config
    from trainctl.errors import TrainctlError
    from trainctl.runs import RunDir

    try:
        _, rows = api.summary(load_config(folder / RunDir.RESOLVED))
    except TrainctlError:
        return None
    return sum(r.params for r in rows)


@app.command("compare")
@handle_errors("as_json")
def compare(
    runs: Annotated[list[str], typer.Argument(help="Two or more runs: " + RUN_HELP)],
    runs_dir: RunsDir = Path("runs"),
    as_json: AsJson = False,
) -> None:
    """Config keys that differ, and final train/val/test metrics side by side, with deltas
    against the first run."""
    from trainctl.errors import ConfigError
    from trainctl.runs.listing import (
        MISSING,
        config_diff,
        final_metrics,
        find_run,
        metric_diff,
        read_config,
        read_record,
    )

    if len(runs) < 2:
        raise ConfigError(f"expected at least two runs to compare, received {len(runs)}", key="RUNS")
    folders = [find_run(r, runs_dir).path for r in runs]
    records = [read_record(f) for f in folders]
    configs = config_diff([read_config(f) for f in folders])
    metrics = metric_diff([final_metrics(f) for f in folders])
    labels = [f.name for f in folders]
    if as_json:
        emit_json(_clean(_compare_json(records, configs, metrics, labels)))
        return
    head = [
        ["status", *(r.status for r in records)],
        ["epochs", *("-" if r.epochs is None else str(r.epochs) for r in records)],
        ["duration", *(_duration(r.duration_s) for r in records)],
        ["best val", *(_best(r) for r in records)],
    ]
    _table(["", *labels], head)
    differ = "1 key differs" if len(configs) == 1 else f"{len(configs)} keys differ"
    sys.stdout.write(f"\nconfig: {differ}\n")
    if configs:
        _table(["key", *labels], [[d.key, *map(_value, d.values)] for d in configs])
    sys.stdout.write(f"\nmetrics (delta against {labels[0]})\n")
    rows = []
    for d in metrics:
        cells = [_metric(None if v is MISSING else v) for v in d.values]
        cells[1:] = [
            c if delta is None else f"{c} ({delta:+.4f})" for c, delta in zip(cells[1:], d.deltas[1:], strict=True)
        ]
        rows.append([d.key, *cells])
    _table(["", *labels], rows, right=range(1, 1 + len(labels)))


def _compare_json(records: list[Any], configs: list[Any], metrics: list[Any], labels: list[str]) -> dict[str, Any]:
    """``compare --json``: absent config keys are ``null`` and listed under ``absent``."""
    from trainctl.runs.listing import MISSING

    def config_row(d: Any) -> dict[str, Any]:
        row = {"key": d.key, "values": [None if v is MISSING else v for v in d.values]}
        absent = [labels[i] for i, v in enumerate(d.values) if v is MISSING]
        return row | ({"absent": absent} if absent else {})

    def metric_row(d: Any) -> dict[str, Any]:
        split, metric = d.key.split(".", 1)
        values = [None if v is MISSING or math.isnan(v) else v for v in d.values]
        return {"key": d.key, "split": split, "metric": metric, "values": values, "deltas": list(d.deltas)}

    return {
        "runs": [r.to_json() for r in records],
        "config": [config_row(d) for d in configs],
        "metrics": [metric_row(d) for d in metrics],
    }
