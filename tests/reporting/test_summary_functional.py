"""Functional summaries against real Keras 3.15: ``model.summary()`` captured with stdout not a
terminal (76 columns), byte for byte, for every graph test model; and the ``--plot`` edges."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest

from tests.model.graphhelp import build_keras, build_ours
from tests.model.test_graph import MODELS, RESIDUAL, TWO_IN_TWO_OUT
from trainctl.api import render_summary
from trainctl.config.schema import ModelSpec
from trainctl.model.shapes_graph import build_graph, summary_rows
from trainctl.reporting.diagram import graph_edges, render_diagram

CHAIN = {
    "name": "chain_like",
    "inputs": [{"name": "pixels", "shape": [784]}],
    "layers": [
        {"name": "d1", "type": "Dense", "units": 256, "activation": "relu"},
        {"name": "d2", "type": "Dense", "units": 10},
    ],
}


@pytest.mark.keras
@pytest.mark.parametrize("case", [*MODELS, "chain"])
def test_summary_is_byte_identical_to_keras(case: str, keras: Any) -> None:
    cfg = CHAIN if case == "chain" else MODELS[case]
    theirs = build_keras(keras, cfg)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        theirs.summary()
    assert render_summary(build_ours(cfg)) == buf.getvalue()


def test_connected_to_and_layouts() -> None:
    rows = summary_rows(build_graph(ModelSpec.model_validate(MODELS["shared"])))
    assert [(r.name, r.class_name, getattr(r, "connected", None)) for r in rows] == [
        ("left", "InputLayer", "-"),
        ("right", "InputLayer", "-"),
        ("encode", "Dense", "left[0][0], right[0][0]"),
        ("diff", "Subtract", "encode[0][0], encode[1][0]"),
    ]
    chain = summary_rows(build_graph(ModelSpec.model_validate(CHAIN)))  # sequential-like: 3 columns
    assert [r.class_name for r in chain] == ["InputLayer", "Dense", "Dense"]
    assert all(getattr(r, "connected", None) is None for r in chain)


def test_plot_draws_the_graph_edges() -> None:
    rows = summary_rows(build_graph(ModelSpec.model_validate(RESIDUAL)))
    names = [r.name for r in rows]
    edges = {(names[a], names[b]) for a, b in graph_edges(rows) or ()}
    assert ("stem", "res") in edges and ("c2", "res") in edges and ("stem", "c1") in edges
    svg = render_diagram(summary_rows(build_graph(ModelSpec.model_validate(TWO_IN_TWO_OUT))), "svg").decode()
    assert "features (InputLayer)" in svg and "merge (Concatenate)" in svg


@pytest.mark.keras
@pytest.mark.parametrize("name", ["fashion_mnist_resnet", "wine_wide_deep", "wine_two_heads"])
def test_shipped_functional_configs_summarize_as_keras(name: str, keras: Any) -> None:
    from tests.clihelp import CONFIGS
    from trainctl.config import load_config

    loaded = load_config(CONFIGS / f"{name}.yaml")
    model_cfg = loaded.raw["model"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        build_keras(keras, model_cfg).summary()
    rows = summary_rows(build_graph(loaded.config.model))
    from trainctl.reporting.summary import summary_text

    assert summary_text(loaded.config.model.name, rows) == buf.getvalue()
