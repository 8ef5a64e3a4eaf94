"""report.html is self-contained: every image a ``data:`` URI of the PNG it shows, nothing fetched."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from trainctl.reporting.report import Report, classification_metrics
from trainctl.reporting.report_html import render_html


class Refs(HTMLParser):
    """Every URL-bearing attribute, every tag, and the text of table cells."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_cell = tag == "td"
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "action", "poster") and value is not None:
                self.urls.append((tag, name, value))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells.append(data)


def _png(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def report() -> Report:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    proba = rng.dirichlet(np.ones(3) * 0.5, 90)
    rep = classification_metrics(y, proba, ["<b>cat</b>", "dog", "fox & owl"])
    rep.data.update({"samples": 90, "data": "test split", "loss": "sparse_categorical_crossentropy"})
    rep.data["evaluation"] = {"loss": 1.25, "accuracy": rep.metrics["accuracy"]}
    return rep


def test_images_are_the_given_pngs_as_data_uris(report: Report) -> None:
    pngs = {"confusion_matrix": _png((255, 0, 0)), "roc_curves": _png((0, 0, 255))}
    page = render_html(report, pngs, title="run <1>")
    refs = Refs()
    refs.feed(page)
    srcs = [v for tag, name, v in refs.urls if tag == "img" and name == "src"]
    assert len(srcs) == 2 and all(tag == "img" for tag, _, _ in refs.urls)
    decoded = [base64.b64decode(s.removeprefix("data:image/png;base64,"), validate=True) for s in srcs]
    assert decoded == list(pngs.values())
    assert not {"script", "link", "iframe", "object", "embed"} & set(refs.tags)
    assert "url(" not in page and "http" not in page.replace("http-equiv", "")


def test_tables_hold_the_metrics_and_escape_names(report: Report) -> None:
    page = render_html(report, {}, title="run <1>")
    assert "<b>cat</b>" not in page and "&lt;b&gt;cat&lt;/b&gt;" in page and "fox &amp; owl" in page
    assert "<title>run &lt;1&gt;: evaluation report</title>" in page
    refs = Refs()
    refs.feed(page)
    assert "1.2500" in refs.cells  # the Keras loss, 4 decimals
    assert f"{report.metrics['auc']:.4f}" in refs.cells
    cm = report.confusion
    assert cm is not None
    supports = [str(int(n)) for n in cm.sum(axis=1)]  # per-class support: true samples per class
    assert all(s in refs.cells for s in supports)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_opens_in_headless_chromium(report: Report, tmp_path: Path) -> None:
    from PIL import Image

    from trainctl.reporting.report_plots import render_plots

    page = tmp_path / "report.html"
    page.write_text(render_html(report, render_plots(report), title="chromium check"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={shot}",
            "--window-size=1000,1600",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    with Image.open(shot) as im:
        assert im.size == (1000, 1600)
        colours = im.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # text and plots were drawn, not a blank page
