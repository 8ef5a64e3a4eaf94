"""``trainctl plot RUN``: redraw a run's learning curves from its ``history.json``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from trainctl.cli.common import emit_json, handle_errors


@handle_errors("as_json")
def plot(
    run: Annotated[str, typer.Argument(help="A run folder, or a run name (the newest runs/<name>-*).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (.png, .svg or .pdf; default RUN/plots/history.png)."),
    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run names are looked up.")] = Path("runs"),
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout; everything else on stderr.")
    ] = False,
) -> None:
    """Draw loss and each metric per epoch, train against validation, from RUN/history.json.

    Works on a run still training or interrupted: it plots the epochs finished so far.
    """
    from trainctl.errors import ArtifactError, ConfigError
    from trainctl.reporting.plots import FORMATS, PLOT_FILE, panels, write_plot
    from trainctl.runs import RunDir

    folder = RunDir.find(run, runs_dir)
    target = output if output is not None else folder.file(f"{RunDir.PLOTS}/{PLOT_FILE}")
    fmt = target.suffix[1:].lower()
    if fmt not in FORMATS:
        raise ConfigError(
            f"expected an output file ending in {', '.join('.' + f for f in FORMATS)}, received {target.name!r}",
            key="--output",
        )
    history = folder.read_json(RunDir.HISTORY_JSON)
    if not isinstance(history, dict) or not panels(history) or not any(history.values()):
        raise ArtifactError(
            f"{folder.file(RunDir.HISTORY_JSON)}: expected at least one epoch of loss values, received none"
        )
    written = write_plot(history, target, title=folder.path.name)
    if as_json:
        emit_json({"run_dir": str(folder.path), "output": str(written), "panels": [p for p, _ in panels(history)]})
    else:
        sys.stdout.write(f"{written}\n")
