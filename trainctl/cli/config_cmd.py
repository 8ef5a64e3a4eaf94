"""``trainctl config validate|show|schema``: check a file, print it resolved, or the JSON Schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from trainctl.cli.common import emit_json, handle_errors

LARGE_MODEL_BYTES = 2**30  # `config validate` states the memory estimate from 1 GiB up
app = typer.Typer(help="Validate, show or describe config files.", no_args_is_help=True)


@app.command("validate")
@handle_errors("as_json")
def validate(
    configs: Annotated[list[Path], typer.Argument(help="One or more config files.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check config files against the schema; every problem is listed with its file:line."""
    from trainctl.config import load_config
    from trainctl.errors import ConfigError, Problem
    from trainctl.memory import config_estimate

    problems: list[Problem] = []
    notes: dict[Path, str] = {}
    for path in configs:
        try:
            need = config_estimate(load_config(path).config)
        except ConfigError as exc:
            problems += exc.problems
            continue
        if need.total >= LARGE_MODEL_BYTES:  # small models: the plain "ok" people and scripts expect
            notes[path] = f" ({need.describe()})"
    if problems:
        raise ConfigError(problems[0].message, problems=problems)
    if as_json:
        emit_json({"status": "ok", "files": [str(p) for p in configs]})
    else:
        for path in configs:
            sys.stdout.write(f"{path}: ok{notes.get(path, '')}\n")


@app.command("show")
@handle_errors()
def show(
    config: Annotated[Path, typer.Argument(help="A config file.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """Print the config with every default filled in."""
    from trainctl.api import resolved_yaml
    from trainctl.config import load_config

    sys.stdout.write(resolved_yaml(load_config(config, overrides or []).config))


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a config file (for editor completion)."""
    from trainctl.config.schema import RunConfig

    sys.stdout.write(json.dumps(RunConfig.model_json_schema(), indent=2) + "\n")
