"""``trainctl export RUN --format onnx|torch``: a run's model as ONNX or a torch.export program."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainctl.cli.common import emit_json, handle_errors


@handle_errors("as_json")
def export(
    run: Annotated[str, typer.Argument(help="A run folder, or a run name (the newest runs/<name>-*).")],
    format: Annotated[str, typer.Option("--format", "-f", help="onnx, or torch (a torch.export .pt2).")] = "onnx",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The file to write (default: RUN/export/model.onnx|.pt2).")
    ] = None,
    opset: Annotated[int | None, typer.Option("--opset", help="ONNX opset version (default 18).")] = None,
    raw_inputs: Annotated[
        bool,
        typer.Option("--raw-inputs", help="Fold the run's data.x steps in: the model takes what predict takes."),
    ] = False,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run names are looked up.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="A JSON summary on stdout.")] = False,
) -> None:
    """Export a trained run for deployment: ONNX (onnxruntime, C++, phones) or a torch.export program.

    The batch axis is dynamic. The file is written atomically and recorded in the run's run.json.
    """
    from trainctl.export import export_run

    result = export_run(run, fmt=format, output=output, opset=opset, raw_inputs=raw_inputs, runs_dir=runs_dir)
    if as_json:
        emit_json({"run_dir": str(result.run_dir), **result.record()})
        return

    def described(inp: dict[str, object]) -> str:
        shape = "(" + ", ".join(str(d) for d in inp["shape"]) + ")"  # type: ignore[attr-defined]
        return f"{shape} {inp['dtype']}" if len(result.inputs) == 1 else f"{inp['name']} {shape} {inp['dtype']}"

    what = ", ".join(described(i) for i in result.inputs)
    noun = "input" if len(result.inputs) == 1 else "inputs"
    typer.echo(f"wrote {result.path} ({result.format}, {noun} {what}, {result.bytes} bytes)")
