"""``results/index.html``: the interactive results page, static and offline.

Built from the rendered CSV tables (``common.render.data``), parsed back here so the
page shows exactly the dataset's rows: per device and input the model table
(sortable, filterable by name and numeric ranges), the accuracy-against-latency
Pareto chart, and per model its per-unit breakdown, memory and ``.txt`` files.
The page's own script and style (``page.js``, ``page.css`` beside this module) are
inlined; the charts use plotly's bundled ``plotly.min.js``, copied from the installed
``plotly`` package next to the page (``assets``) so nothing is fetched at view time.
"""
from __future__ import annotations

import collections
import csv
import html
import io
import json
import os
from pathlib import Path

from common.errors import UserError
from common.render.data import MEASUREMENT_COLUMNS, UNIT_COLUMNS

HERE = Path(__file__).resolve().parent
PLOTLY = "plotly.min.js"
NUMERIC = {"height", "width", "median_ms", "p90_ms", "kernel_ms", "gpu_busy", "params_m", "gmacs", "feature_mib",
           "static_mib", "peak_mib", "top1", "throughput_img_s", "throughput_batch", "batch", "depth",
           "output_stride", "mean_ms", "share", "gflop", "gflop_s", "intensity_flop_b", "fraction_of_roof",
           "whole_median_ms", "coverage"}
# Columns the page needs of units.csv (the rest stay in the CSV).
UNIT_FIELDS = ("model", "input", "device", "mode", "depth", "output_stride", "unit", "module", "type", "median_ms",
               "share", "kernel_ms", "gflop", "gflop_s", "bound", "fraction_of_roof", "whole_median_ms", "coverage",
               "record", "txt")


def _value(column: str, text: str) -> object:
    if text == "":
        return None
    if column in NUMERIC:
        return float(text)
    return {"true": True, "false": False}.get(text, text) if column in ("fastest_search", "reduced_protocol") else text


def parse(text: str, fields: tuple[str, ...]) -> list[list]:
    """CSV text -> rows of ``fields`` (numbers as numbers, empty as None)."""
    return [[_value(f, row[f]) for f in fields] for row in csv.DictReader(io.StringIO(text))]


def _span(values: list[str]) -> str:
    values = sorted(v for v in values if v)
    return values[0] if len(set(values)) == 1 else f"{values[0]} to {values[-1]}"


def header_rows(rows: list[dict]) -> list[list[str]]:
    """Per device: what was measured (models, inputs), where (device name), how (the protocol
    most rows share, how many rows were measured at another), when (dates) and from which commits."""
    out = []
    for device in dict.fromkeys(r["device"] for r in rows):
        mine = [r for r in rows if r["device"] == device]
        protocols = collections.Counter(r["protocol"] for r in mine)
        common_protocol, n = protocols.most_common(1)[0]
        others = f" ({len(mine) - n} of {len(mine)} rows at another protocol: see each row's record)" \
            if n < len(mine) else ""
        commits = sorted({(r["commit"] or "")[:10] for r in mine} - {""})
        out.append([device, mine[0]["device_name"], f"{len({r['model'] for r in mine})} models",
                    ", ".join(dict.fromkeys(r["input"] for r in mine)),
                    common_protocol + others, _span([r["date"][:10] for r in mine]),
                    ", ".join(commits[:3]) + (f" and {len(commits) - 3} more" if len(commits) > 3 else "")])
    return out


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='facts'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _json(data: object) -> str:
    # Inside <script>: a "</" in a string would end the element early.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")


def html_page(measurements_csv: str, units_csv: str, base: str) -> str:
    """The page. ``base``: the repository root relative to the page (links to records and .txt files)."""
    rows = list(csv.DictReader(io.StringIO(measurements_csv)))
    payload = {"base": base, "columns": list(MEASUREMENT_COLUMNS),
               "rows": parse(measurements_csv, MEASUREMENT_COLUMNS),
               "unit_columns": list(UNIT_FIELDS), "units": parse(units_csv, UNIT_FIELDS)}
    facts = _table(["device", "name", "models", "inputs", "protocol (latency)", "measured", "commits"],
                   header_rows(rows)) if rows else "<p>No measurements yet: run the profilers.</p>"
    style = (HERE / "page.css").read_text(encoding="utf-8")
    script = (HERE / "page.js").read_text(encoding="utf-8")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>backbone-profile: choose a backbone</title>
<style>
{style}</style>
<script src="{PLOTLY}"></script>
</head>
<body>
<header>
<h1>Choose a backbone</h1>
<p>Generated by <code>python -m common.render</code> from the records under <code>results/records/</code>;
the same rows as <a href="data/measurements.csv">data/measurements.csv</a> and
<a href="data/units.csv">data/units.csv</a>. Latency: median of the timed loop, batch 1, in the mode shown.
Memory: eager fp32 (static: weights, buffers and input; peak: beyond them during one inference).
Top-1: the published ImageNet figure of the architecture's default weights (the models ran with random weights).
Empty cells: not measured.</p>
{facts}
</header>
<section id="controls">
<label>device <select id="device"></select></label>
<label>input <select id="input"></select></label>
<label>mode <select id="mode"></select></label>
<label>name <input id="f-name" type="search" placeholder="substring"></label>
<span id="ranges"></span>
<span id="count"></span>
</section>
<div id="pareto"></div>
<table id="models"><thead></thead><tbody></tbody></table>
<section id="model-view" hidden>
<h2 id="model-title"></h2>
<p id="model-facts"></p>
<p id="model-links"></p>
<label>per-unit record <select id="unit-run"></select></label>
<div id="units-chart"></div>
<p id="units-note"></p>
</section>
<script id="data" type="application/json">{_json(payload)}</script>
<script>
{script}</script>
</body>
</html>
"""


def outputs(results_dir: Path, root: Path, datasets: dict[Path, str]) -> dict[Path, str]:
    """{results/index.html: text} from the rendered CSV texts."""
    folder = Path(results_dir) / "data"
    base = Path(os.path.relpath(Path(root).resolve(), Path(results_dir).resolve())).as_posix()
    text = html_page(datasets[folder / "measurements.csv"], datasets[folder / "units.csv"], base)
    return {Path(results_dir) / "index.html": text}


def assets(results_dir: Path) -> dict[Path, bytes]:
    """{results/plotly.min.js: the installed plotly package's bundled build}."""
    try:
        import plotly
    except ImportError:
        raise UserError("the page needs the plotly package (pip install -r requirements.txt)") from None
    return {Path(results_dir) / PLOTLY: (Path(plotly.__file__).parent / "package_data" / PLOTLY).read_bytes()}
