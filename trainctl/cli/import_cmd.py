"""``trainctl import KERAS_FILES... --out RUN``: a model Keras saved -> a trainctl run folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from trainctl.cli.common import emit_json, handle_errors


def _metric_list(text: str | None) -> list[str] | None:
    """``--metrics accuracy,mae`` -> ["accuracy", "mae"]; ``--metrics ""`` means no metrics."""
    if text is None:
        return None
    return [m.strip() for m in text.split(",") if m.strip()]


@handle_errors("as_json")
def import_model(
    files: Annotated[
        list[Path],
        typer.Argument(help="MODEL.keras, a whole-model MODEL.h5, or MODEL.json plus its weights .h5."),
    ],
    out: Annotated[Path, typer.Option("--out", help="The run folder to create (new or empty).")],
    loss: Annotated[
        str | None, typer.Option(help="Loss, replacing the file's (required if it was saved uncompiled).")
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metrics, replacing the file's (e.g. accuracy,mae).")
    ] = None,
    optimizer: Annotated[str | None, typer.Option(help="Optimizer, replacing the file's.")] = None,
    data_config: Annotated[
        Path | None,
        typer.Option("--data-config", help="Copy the data: section (and seed) of this config into the run."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: the --out folder's name).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout; everything else on stderr.")
    ] = False,
) -> None:
    """Import a Keras Sequential model into a run folder that evaluate and predict accept."""
    from trainctl.importer import import_keras

    result = import_keras(
        files,
        out,
        loss=loss,
        metrics=_metric_list(metrics),
        optimizer=optimizer,
        data_config=data_config,
        name=name,
    )
    comp = result.config.compile
    params = sum(r.params for r in result.source.model.info)
    if as_json:
        emit_json(
            {
                "run_dir": str(result.run_dir),
                "status": "imported",
                "format": result.source.format,
                "files": [str(p) for p in result.source.files],
                "keras_version": result.source.keras_version,
                "params": params,
                "loss": comp.loss.type if comp.loss is not None else None,
                "metrics": [m.name or m.type for m in comp.metrics],
                "optimizer": comp.optimizer.type,
                "data": result.has_data,
            }
        )
        return
    out_stream = sys.stdout
    loss = comp.loss.type if comp.loss is not None else "none: evaluate will ask for one"
    out_stream.write(f"imported {result.source.format} model ({params:,} params, loss {loss}) into {result.run_dir}\n")
    if not result.has_data:
        out_stream.write("no data section: give evaluate/predict the data with --data\n")
