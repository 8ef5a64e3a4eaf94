"""``trainctl summary --plot``: the layer stack drawn as Keras's ``plot_model(show_shapes=True)``.

Expected names and shapes are worked out by hand (Keras's auto names, valid-padding convolution
arithmetic), not taken from trainctl's own shape code.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from trainctl.config.schema import ModelSpec
from trainctl.model.shapes import LayerInfo, infer
from trainctl.reporting.diagram import render_diagram, write_diagram

CNN = [
    {"type": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu", "input_shape": [12, 12, 1]},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "Flatten"},
    {"type": "Dense", "units": 10, "activation": "softmax", "name": "probs"},
]
# (name, class, input shape, output shape): 12-3+1 = 10; 10 // 2 = 5; 5*5*4 = 100
EXPECTED = [
    ("conv2d", "Conv2D", "(None, 12, 12, 1)", "(None, 10, 10, 4)"),
    ("max_pooling2d", "MaxPooling2D", "(None, 10, 10, 4)", "(None, 5, 5, 4)"),
    ("flatten", "Flatten", "(None, 5, 5, 4)", "(None, 100)"),
    ("probs", "Dense", "(None, 100)", "(None, 10)"),
]
SVG = "{http://www.w3.org/2000/svg}"


def rows_of(layers: list[dict[str, Any]]) -> list[LayerInfo]:
    _, rows = infer(list(ModelSpec.model_validate({"layers": layers}).layers))
    return rows


def svg_texts(data: bytes) -> list[tuple[str, float]]:
    """Every ``<text>`` element of the SVG (it must parse as XML) and its y position."""
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg"
    return [("".join(t.itertext()), float(t.attrib["y"])) for t in root.iter(f"{SVG}text")]


def test_svg_has_every_layer_name_and_shape_top_to_bottom() -> None:
    texts = svg_texts(render_diagram(rows_of(CNN), "svg"))
    heads = [(t, y) for t, y in texts if t.endswith(")") and "shape" not in t]
    assert [t for t, _ in heads] == [f"{name} ({cls})" for name, cls, _, _ in EXPECTED]
    ys = [y for _, y in heads]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)  # SVG y grows downwards: first layer on top
    strings = [t for t, _ in texts]
    for _, _, shape_in, shape_out in EXPECTED:
        assert f"Input shape: {shape_in}" in strings
        assert f"Output shape: {shape_out}" in strings


def test_svg_draws_an_arrow_between_consecutive_boxes() -> None:
    root = ET.fromstring(render_diagram(rows_of(CNN), "svg"))
    # matplotlib writes each patch as a group id'd by its kind; arrows are FancyArrowPatch groups
    arrows = [g for g in root.iter(f"{SVG}g") if g.attrib.get("id", "").startswith("patch")]
    boxes = 2 * len(EXPECTED)  # header and shapes rectangles per layer
    background = 1  # the figure face
    assert len(arrows) == background + boxes + (len(EXPECTED) - 1)


def test_png_opens_is_not_blank_and_grows_with_the_stack(tmp_path: Path) -> None:
    short = write_diagram(rows_of(CNN[:2]), tmp_path / "short.png")
    tall = write_diagram(rows_of(CNN), tmp_path / "deep" / "tall.png")
    sizes = []
    for path in (short, tall):
        image = Image.open(path)
        assert image.format == "PNG"
        grey = np.asarray(image.convert("L"), dtype=np.float64)
        assert grey.var() > 0 and grey.min() < 100  # dark text and lines on a light page
        sizes.append(image.size)
    assert sizes[1][1] > sizes[0][1]  # two more layers: a taller picture


def test_long_names_widen_the_boxes() -> None:
    named = [
        dict(CNN[0], name="a_rather_long_convolution_layer_name_that_needs_a_wider_box_than_the_shapes_do"),
        *CNN[1:],
    ]
    narrow = Image.open(io.BytesIO(render_diagram(rows_of(CNN), "png"))).size
    wide = Image.open(io.BytesIO(render_diagram(rows_of(named), "png"))).size
    assert wide[0] > narrow[0]


def test_same_rows_give_the_same_bytes_and_pdf_works() -> None:
    rows = rows_of(CNN)
    assert render_diagram(rows, "svg") == render_diagram(rows, "svg")
    assert render_diagram(rows, "pdf").startswith(b"%PDF")


def test_unknown_format_and_empty_model_are_refused() -> None:
    with pytest.raises(ValueError, match="expected one of svg, png, pdf, received 'gif'"):
        render_diagram(rows_of(CNN), "gif")
    with pytest.raises(ValueError, match="no layers"):
        render_diagram([], "svg")
