"""``model.summary()`` exactly as Keras 3 draws it: a rich table, 45/80/100 % column splits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import rich.markup
from rich.console import Console
from rich.table import Column, Table

from trainctl.model.shapes import format_shape


def _num(x: object) -> str:
    return f"[color(45)]{x}[/]" if x is None else f"[color(34)]{x}[/]"


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join(_num(d) for d in (None, *shape)) + ")"


def readable_size(n_bytes: float) -> str:
    """1024-based, two decimals: ``918.54 KB``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n_bytes / 1024 < 1:
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} PB"


def summary_text(name: str, rows: Sequence[Any], *, width: int = 76, color: bool = False) -> str:
    """The summary as text. ``width`` 76 is what Keras prints when stdout is not a terminal.

    Rows with a ``connected`` cell (a branching Functional model) get Keras's 4-column layout with
    "Connected to"; see :func:`trainctl.model.shapes_graph.summary_rows`.
    """
    connected = any(getattr(r, "connected", None) is not None for r in rows)
    positions = (0.30, 0.56, 0.74, 1.0) if connected else (0.45, 0.80, 1.0)
    widths, current = [], 0
    for pos in positions:
        widths.append(int(pos * width) - current)
        current += widths[-1]
    columns = [
        Column("Layer (type)", justify="left", width=widths[0]),
        Column("Output Shape", justify="left", width=widths[1]),
        Column("Param #", justify="right", width=widths[2]),
    ]
    if connected:
        columns.append(Column("Connected to", justify="left", width=widths[3]))
    table = Table(*columns, width=width, show_lines=True)
    total = trainable = 0
    for row in rows:
        label = f"{rich.markup.escape(row.name)} ([color(33)]{rich.markup.escape(row.class_name)}[/])"
        cells = [label, _shape(row.output_shape), _num(f"{row.params:,}")]
        if connected:
            cells.append(rich.markup.escape(row.connected or "-"))
        table.add_row(*cells)
        total += row.params
        trainable += row.trainable_params
    console = Console(
        width=width + 4,
        highlight=False,
        force_terminal=color,
        color_system="standard" if color else None,
        record=False,
    )
    with console.capture() as cap:
        console.print(f'[bold]Model: "{rich.markup.escape(name)}"[/]')
        console.print(table)
        for label, count in (
            ("Total params", total),
            ("Trainable params", trainable),
            ("Non-trainable params", total - trainable),
        ):
            console.print(f"[bold] {label}: [/]" + _num(f"{count:,}") + f" ({readable_size(count * 4)})")
    return cap.get()


__all__ = ["format_shape", "readable_size", "summary_text"]
