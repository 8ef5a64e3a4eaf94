"""report.html: one self-contained file (inline CSS, images as ``data:`` URIs, no script, no links
out), so it can be attached to a CI job, mailed, or opened offline and still show everything."""

from __future__ import annotations

import base64
import math
from html import escape
from typing import Any

from trainctl.reporting.report import Report

CAPTIONS = {
    "confusion_matrix": "Confusion matrix: rows are the true class, columns the predicted class.",
    "confusion_matrix_normalized": "Confusion matrix normalised per true class: the diagonal is each class's recall.",
    "roc_curves": "ROC curves, one class against the rest, with the area under each.",
    "precision_recall_curves": "Precision-recall curves, with each class's average precision.",
    "samples": "Test samples: predicted class (true class); green when right, red when wrong. "
    "Bars: the model's scores per class (green: true class, red: a wrong prediction).",
    "predicted_vs_true": "Predicted against true values; a perfect model lies on the dashed line.",
    "residuals": "Residuals (true - predicted): look for structure or skew.",
    "iou_per_class": "Intersection over union per class.",
}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}.meta{color:#555}
"""


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return escape(str(value))
    return f"{value:d}" if isinstance(value, int) else f"{value:.4f}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_num(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(report: Report, pngs: dict[str, bytes], *, title: str) -> str:
    """The whole page as a string; every image is embedded, nothing is fetched."""
    d = report.data
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}: evaluation report</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}: {escape(report.task)} report</h1>",
        f'<p class="meta">{_num(d.get("samples"))} samples from {escape(str(d.get("data", "")))}; '
        f"loss {escape(str(d.get('loss', '')))}; written {escape(str(d.get('created', '')))}</p>",
        "<h2>Metrics</h2>",
    ]
    evaluation = d.get("evaluation") or {}
    rows = [[f"{k} (Keras evaluate)", v] for k, v in evaluation.items()]
    rows += [[k, v] for k, v in report.metrics.items()]
    parts.append(_table(["metric", "value"], rows))
    if not report.outputs:
        parts += _details(d, pngs, "", "h2")
    for output, part in report.outputs.items():  # several outputs: one section each
        parts.append(f'<h2 id="output-{escape(output)}">Output {escape(output)}: {escape(part.task)}</h2>')
        parts.append(f'<p class="meta">loss {escape(str(part.data.get("loss", "")))}</p>')
        own = {plot: pngs[f"{output}_{plot}"] for plot in part.data.get("plots", {}) if f"{output}_{plot}" in pngs}
        parts += _details(part.data, own, f"{output}_", "h3")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _details(d: dict[str, Any], pngs: dict[str, bytes], prefix: str, h: str) -> list[str]:
    """The per-class table and the plots of one report (``prefix`` keeps figure ids unique)."""
    parts = []
    per_class = d.get("per_class") or []
    if per_class:
        keys = [k for k in per_class[0] if k != "class"]
        parts.append(f"<{h}>Per class</{h}>")
        parts.append(_table(["class", *keys], [[c["class"], *(c[k] for k in keys)] for c in per_class]))
    if pngs:
        parts.append(f"<{h}>Plots</{h}>")
    for name, png in pngs.items():
        caption = CAPTIONS.get(name, name.replace("_", " "))
        parts.append(
            f'<figure id="{escape(prefix + name)}"><img src="{data_uri(png)}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    return parts


__all__ = ["data_uri", "render_html"]
