"""``trainctl summary CONFIG``: Keras's ``model.summary()`` from the config alone (no torch)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from trainctl.cli.common import emit_json, handle_errors


@handle_errors("as_json")
def summary(
    config: Annotated[Path, typer.Argument(help="A config YAML file.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Rows as one JSON object.")] = False,
) -> None:
    """Print the Keras summary table: layer names, output shapes and parameter counts."""
    from trainctl import api
    from trainctl.config import load_config
    from trainctl.reporting.summary import summary_text

    loaded = load_config(config, overrides or [])
    name, rows = api.summary(loaded)
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
                    for r in rows
                ],
                "total_params": sum(r.params for r in rows),
            }
        )
        return
    tty = sys.stdout.isatty()
    width = min(88, shutil.get_terminal_size().columns - 4) if tty else 76
    sys.stdout.write(summary_text(name, rows, width=width, color=tty))
