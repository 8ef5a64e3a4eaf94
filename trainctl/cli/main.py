"""``trainctl``: the Typer app. Commands import their heavy modules lazily, so ``--help`` is fast."""

from __future__ import annotations

from typing import Annotated

import typer

from trainctl import __version__
from trainctl.cli import config_cmd, evaluate, export, plot, predict, runs_cmd, summary, train, tune
from trainctl.cli.common import STATE, guard_standard_streams
from trainctl.cli.devices import devices
from trainctl.cli.import_cmd import import_model

app = typer.Typer(
    name="trainctl",
    help="Keras-style training runs on PyTorch, driven by YAML files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trainctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for handled errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Exit codes: 0 ok, 1 internal error, 2 config/usage, 3 data, 4 artifact, 5 diverged,
    6 quality gate, 7 I/O or system failure (disk full, read-only, closed stream, out of memory),
    8 run folder busy, 9 distributed worker failed, 130/143 interrupted (resumable),
    141 stdout closed by its reader (quiet)."""
    STATE.debug = debug


app.command("train")(train.train)
app.command("summary")(summary.summary)
app.command("evaluate")(evaluate.evaluate)
app.command("predict")(predict.predict)
app.command("plot")(plot.plot)
app.command("export")(export.export)
app.command("tune")(tune.tune)
app.command("import")(import_model)
app.command("devices")(devices)
app.add_typer(config_cmd.app, name="config")
app.add_typer(runs_cmd.app, name="runs")


def main() -> None:
    guard_standard_streams()
    app()
