"""``trainctl summary CONFIG|RUN [--plot FILE]``: Keras's ``model.summary()`` from the config alone
(no torch), and optionally its ``plot_model(show_shapes=True)`` diagram."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from trainctl.cli.common import emit_json, handle_errors


@handle_errors("as_json")
def summary(
    config: Annotated[
        str, typer.Argument(help="A config YAML file, or a run folder or name (its config.resolved.yaml).")
    ],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also draw the layer stack to FILE (.svg, .png or .pdf).")
    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run names are looked up.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Rows as one JSON object.")] = False,
) -> None:
    """Print the Keras summary table: layer names, output shapes and parameter counts."""
    from trainctl import api
    from trainctl.config import load_config
    from trainctl.errors import ConfigError
    from trainctl.memory import estimate
    from trainctl.reporting.summary import summary_text
    from trainctl.runs.listing import config_file

    if plot is not None and plot.suffix[1:].lower() not in ("svg", "png", "pdf"):
        raise ConfigError(f"expected a file ending in .svg, .png or .pdf, received {plot.name!r}", key="--plot")
    loaded = load_config(config_file(config, runs_dir), overrides or [])
    name, rows = api.summary(loaded)
    need = estimate(rows, loaded.config.fit.resolved_batch_size, loaded.config.compile.optimizer)
    if plot is not None:
        from trainctl.reporting.diagram import write_diagram

        write_diagram(rows, plot)
        sys.stderr.write(f"diagram: {plot}\n")
    if as_json:
        emit_json(
            {
                "name": name,
                "layers": [
                    {
                        "name": r.name,
                        "class_name": r.class_name,
                        "output_shape": [None, *r.output_shape],
                        "params": r.params,
                        "trainable_params": r.trainable_params,
                    }
                    | ({"connected_to": r.connected} if getattr(r, "connected", None) is not None else {})
                    for r in rows
                ],
                "total_params": sum(r.params for r in rows),
                "training_memory_bytes": need.total,
            }
            | ({"plot": str(plot)} if plot is not None else {})
        )
        return
    tty = sys.stdout.isatty()
    wide = any(getattr(r, "connected", None) is not None for r in rows)  # Keras: 108 with "Connected to"
    width = min(108 if wide else 88, shutil.get_terminal_size().columns - 4) if tty else 76
    sys.stdout.write(summary_text(name, rows, width=width, color=tty))
    sys.stdout.write(f" Memory: {need.describe()}\n")
