"""``trainctl summary --plot``: the layer stack as Keras's ``plot_model(show_shapes=True)`` draws it.

One box per layer, top to bottom: ``name (Class)`` over its input and output shapes, an arrow
to the next layer. A Functional model lists its layers in Keras's order, InputLayers included,
and an edge that skips boxes (a residual, a second input) is an arc on the right. Drawn with
matplotlib's Agg canvas on a bare ``Figure`` (no Graphviz, no pyplot, no display), so it works
wherever trainctl installs. SVG keeps text as ``<text>`` elements, so the layer names stay
searchable and selectable.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainctl.model.shapes import LayerInfo, format_shape

FORMATS = ("svg", "png", "pdf")
FONT_PT = 10.0
# inches: DejaVu Sans runs ~0.55 em per character; 0.62 leaves room for digits and capitals
CHAR_IN = 0.62 * FONT_PT / 72
MARGIN, HEAD, BODY, GAP, PAD = 0.25, 0.34, 0.34, 0.42, 0.3
COLOURS = {"edge": "#4a4a4a", "head": "#dbe7f5", "body": "#ffffff", "label": "#555555", "arrow": "#333333"}


def labels(row: LayerInfo) -> tuple[str, str, str]:
    """The three texts of a layer's box: ``dense (Dense)``, input shape, output shape."""
    return (
        f"{row.name} ({row.class_name})",
        f"Input shape: {format_shape(row.input_shape)}",
        f"Output shape: {format_shape(row.output_shape)}",
    )


def diagram_figure(rows: Sequence[LayerInfo]) -> Any:
    """A matplotlib ``Figure`` sized to its content: every box the same width, the longest label
    deciding it, so shapes line up down the stack."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, Rectangle

    if not rows:
        raise ValueError("the model has no layers to draw")
    texts = [labels(r) for r in rows]
    cell = max(max(len(t[1]), len(t[2])) for t in texts) * CHAR_IN + PAD
    box_w = max(max(len(t[0]) for t in texts) * CHAR_IN * 1.1 + PAD, 2 * cell)
    box_h = HEAD + BODY
    edges = graph_edges(rows)
    skips = sorted((a, b) for a, b in (edges or ()) if b != a + 1)
    lanes: list[int] = []  # overlapping arcs get different distances from the boxes
    for k, (a, b) in enumerate(skips):
        busy = {lanes[m] for m, (c, d) in enumerate(skips[:k]) if c < b and a < d}
        lanes.append(min(set(range(len(skips) + 1)) - busy))
    width = box_w + 2 * MARGIN + (0.25 + 0.18 * max(lanes) if skips else 0.0)  # room for the arcs
    height = 2 * MARGIN + len(rows) * box_h + (len(rows) - 1) * GAP
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    x0, mid = MARGIN, width / 2
    text_kw: dict[str, Any] = {"ha": "center", "va": "center", "fontsize": FONT_PT, "parse_math": False}
    for i, (head, shape_in, shape_out) in enumerate(texts):
        top = height - MARGIN - i * (box_h + GAP)
        ax.add_patch(Rectangle((x0, top - HEAD), box_w, HEAD, fc=COLOURS["head"], ec=COLOURS["edge"], lw=1))
        ax.add_patch(Rectangle((x0, top - box_h), box_w, BODY, fc=COLOURS["body"], ec=COLOURS["edge"], lw=1))
        ax.plot([mid, mid], [top - box_h, top - HEAD], color=COLOURS["edge"], lw=0.8)
        ax.text(mid, top - HEAD / 2, head, fontweight="bold", **text_kw)
        y = top - HEAD - BODY / 2
        ax.text(x0 + box_w / 4, y, shape_in, color=COLOURS["label"], **text_kw)
        ax.text(x0 + 3 * box_w / 4, y, shape_out, color=COLOURS["label"], **text_kw)
        if i + 1 < len(texts) and (edges is None or (i, i + 1) in edges):
            arrow = FancyArrowPatch(
                (mid, top - box_h),
                (mid, top - box_h - GAP),
                arrowstyle="-|>",
                mutation_scale=12,
                color=COLOURS["arrow"],
                lw=1.2,
                shrinkA=0,
                shrinkB=0,
            )
            ax.add_patch(arrow)
    for (a, b), lane in zip(skips, lanes, strict=True):  # an edge that skips boxes: an arc on the right
        ya = height - MARGIN - a * (box_h + GAP) - box_h / 2
        yb = height - MARGIN - b * (box_h + GAP) - HEAD / 2
        depth = 0.15 + 0.18 * lane
        arm = depth * 72  # points
        arc = FancyArrowPatch(
            (x0 + box_w, ya), (x0 + box_w, yb),
            connectionstyle=f"arc,angleA=0,angleB=0,armA={arm},armB={arm},rad=6",
            arrowstyle="-|>", mutation_scale=12, color=COLOURS["arrow"], lw=1.0, shrinkA=0, shrinkB=0,
        )  # fmt: skip
        ax.add_patch(arc)
    return fig


def graph_edges(rows: Sequence[LayerInfo]) -> set[tuple[int, int]] | None:
    """(producer row, consumer row) pairs from the "Connected to" cells of a Functional summary;
    None for a plain stack (each box feeds the one below)."""
    if not any(getattr(r, "connected", None) is not None for r in rows):
        return None
    index = {r.name: i for i, r in enumerate(rows)}
    edges: set[tuple[int, int]] = set()
    for j, row in enumerate(rows):
        for ref in (getattr(row, "connected", None) or "-").split(", "):
            source = ref.split("[", 1)[0]
            if source in index:
                edges.add((index[source], j))
    return edges


def render_diagram(rows: Sequence[LayerInfo], fmt: str = "svg") -> bytes:
    """The diagram as ``svg``, ``png`` or ``pdf`` bytes; the same rows give the same bytes."""
    import matplotlib

    if fmt not in FORMATS:
        raise ValueError(f"expected one of {', '.join(FORMATS)}, received {fmt!r}")
    fig = diagram_figure(rows)
    buf = io.BytesIO()
    # text as text (not glyph paths) and fixed ids, no timestamps: diffable, searchable output
    settings: dict[Any, Any] = {"svg.fonttype": "none", "svg.hashsalt": "trainctl", "pdf.fonttype": 42}
    metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    with matplotlib.rc_context(settings):
        fig.savefig(buf, format=fmt, dpi=150 if fmt == "png" else 100, metadata=metadata)
    return buf.getvalue()


def write_diagram(rows: Sequence[LayerInfo], target: Path) -> Path:
    """Render and write atomically; the format follows the file's suffix."""
    from trainctl.atomic import atomic_write_bytes

    target = Path(target)
    data = render_diagram(rows, target.suffix[1:].lower())
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, data)
    return target
