"""The published measurements as flat tables: ``results/data/measurements.csv`` and
``results/data/units.csv``, rendered from the records like every page.

``measurements.csv``: one row per model x input x device x mode x runtime (``torch``
for every record so far) of a whole-model latency that a page publishes:

- the modes table's full records (``common.render.select``: the publishing rule's
  choice per device, model, preset and mode; a search's brief sample of a mode is
  not a record and is left out);
- the zoo tables' eager fp32 and fastest cells (``common.render.zoo.collect``) for
  the keys the modes table does not have (ImageNet size, zoo models).

Memory (``static_mib``, ``peak_mib``) is the published memory record of the same
device, model and input, measured in eager fp32 whatever the row's mode
(``memory_mode`` says so); throughput is the zoo's throughput record's figure of the
same mode (eager fp32, or the row of a fastest search), at ``throughput_batch``.
``top1`` is the published ImageNet top-1 of the architecture's default weights
(the stored reference files, ``common.catalogue.top1_of``), not measured here.

``units.csv``: one row per unit of every published per-unit (``layers``) record,
one record per device, model, input, mode, depth and output stride (the publishing
rule's ``published``): time, share of the sum of units, GFLOP, achieved GFLOP/s and
roofline bound where the record has them.

Numbers keep 7 significant digits; an empty cell is "not measured".
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from common import catalogue, records
from common.render import select, txt, zoo

RUNTIME = "torch"
MEASUREMENT_COLUMNS = (
    "model", "input", "height", "width", "device", "device_name", "device_type", "mode", "runtime",
    "fastest_search", "median_ms", "p90_ms", "kernel_ms", "gpu_busy", "params_m", "gmacs", "feature_mib",
    "static_mib", "peak_mib", "memory_mode", "top1", "throughput_img_s", "throughput_batch", "batch",
    "protocol", "reduced_protocol", "flags", "date", "commit", "record", "txt", "memory_record", "memory_txt")
UNIT_COLUMNS = (
    "model", "input", "device", "device_name", "mode", "depth", "output_stride", "unit", "module", "type",
    "median_ms", "mean_ms", "p90_ms", "share", "kernel_ms", "params_m", "gflop", "gflop_s", "intensity_flop_b",
    "bound", "fraction_of_roof", "feature_mib", "whole_median_ms", "coverage", "date", "record", "txt")
FILES = {"measurements.csv": MEASUREMENT_COLUMNS, "units.csv": UNIT_COLUMNS}


def cell(value: object) -> str:
    """A CSV cell: numbers to 7 significant digits, booleans as true/false, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".7g")
    return str(value)


def to_csv(columns: tuple[str, ...], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _rel(path: Path | str, root: Path) -> str:
    """A path relative to the repository root, with forward slashes (the CSV is read on any OS)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(root).resolve())).as_posix()


def _txt_of(rec: dict, root: Path) -> str | None:
    """The record's .txt (relative to the root); none for an earlier run kept under history/."""
    if rec.get("_history") or rec["kind"] not in txt.TXT_KINDS:
        return None
    try:
        return _rel(txt.path_for(rec, root), root)
    except (KeyError, ValueError):
        return None


def _timing_fields(rec: dict, root: Path) -> dict:
    req, env, r = rec["request"], rec["env"], rec["result"]
    s, cost, k = r["timing"]["stats"], r.get("cost") or {}, r.get("kernels") or {}
    return {"model": req["model"], "input": req["input"]["name"], "height": req["input"]["height"],
            "width": req["input"]["width"], "device": rec["device_tag"], "device_name": env["device_name"],
            "device_type": env["device_type"], "mode": records.measured(rec)["mode"], "runtime": RUNTIME,
            "fastest_search": req.get("search") == "fastest", "median_ms": s["median_ms"],
            "p90_ms": s.get("p90_ms"), "kernel_ms": k.get("kernel_ms"), "gpu_busy": k.get("busy"),
            "params_m": cost["params"] / 1e6 if "params" in cost else None,
            "gmacs": cost["macs"] / 1e9 if "macs" in cost else None, "feature_mib": cost.get("feature_mib"),
            "batch": req["input"]["batch"], "protocol": zoo.protocol_of(rec),
            "reduced_protocol": not select.meets(rec), "flags": select.trust_flags(r),
            "date": env["date"], "commit": (rec.get("code_version") or {}).get("commit"),
            "record": _rel(rec["_path"], root), "txt": _txt_of(rec, root)}


def _memory_fields(rec: dict | None, root: Path) -> dict:
    if rec is None:
        return {}
    r = rec["result"]
    peak = (r.get("peak") or {}).get("peak_inference_mib")
    return {"static_mib": r["static"]["static_mib"], "peak_mib": peak if isinstance(peak, (int, float)) else None,
            "memory_mode": records.measured(rec)["mode"], "memory_record": _rel(rec["_path"], root),
            "memory_txt": _txt_of(rec, root)}


def _throughput_fields(rec: dict | None, fastest: bool) -> dict:
    for m in ((rec or {}).get("result") or {}).get("modes", []):
        if m.get("name") == ("fastest" if fastest else "eager fp32") and not m.get("error"):
            at = m.get("at_largest") or {}
            return {"throughput_img_s": at.get("images_per_s"), "throughput_batch": at.get("batch")}
    return {}


def _published_sources(recs: list[dict], res: select.Results) -> tuple[dict, dict, dict]:
    """(timing records per (device, model, input, mode), memory and throughput records per (device, model, input))."""
    by_path = {r["_path"]: r for r in recs}
    timing: dict[tuple, dict] = {}
    for (tag, model, preset, _), m in res.modes.items():
        if m.search_iters is None and m.path in by_path:  # a full record, not a search's sample
            rec = by_path[m.path]
            if select.segmentation_variant(rec["request"]):  # an output-stride build: results/segmentation.md
                continue
            timing[(tag, model, preset, records.measured(rec)["mode"])] = rec
    memory = {(r.tag, r.model, r.preset): by_path[r.path] for r in res.rows.values()
              if r.kind == "memory" and r.path in by_path}
    throughput: dict[tuple, dict] = {}
    _, tables = zoo.collect([r for r in recs if not r.get("_history")])
    for (tag, preset), table in tables.items():
        for model, cells in table.cells.items():
            for slot in ("eager", "fastest"):
                if (rec := cells.get(slot)) is not None:
                    timing.setdefault((tag, model, preset, records.measured(rec)["mode"]), rec)
            if cells.get("memory") is not None:
                memory.setdefault((tag, model, preset), cells["memory"])
            if cells.get("throughput") is not None:
                throughput[(tag, model, preset)] = cells["throughput"]
    return timing, memory, throughput


def measurements(recs: list[dict], res: select.Results, root: Path, problems: list[str]) -> list[dict]:
    """The rows of measurements.csv, by device, input, model, then median latency."""
    timing, memory, throughput = _published_sources(recs, res)
    top1: dict[str, float | None] = {}
    rows = []
    for (tag, model, preset, _), rec in timing.items():
        try:
            row = _timing_fields(rec, root)
            row.update(_memory_fields(memory.get((tag, model, preset)), root))
            row.update(_throughput_fields(throughput.get((tag, model, preset)), row["fastest_search"]))
        except select.ERRORS as exc:
            problems.append(select.problem(rec, exc) + " (not in results/data)")
            continue
        if model not in top1:
            top1[model] = catalogue.top1_of(rec)  # the stored reference files: no torch, no registry
        row["top1"] = top1[model]
        rows.append(row)
    return sorted(rows, key=lambda r: (r["device_type"] != "cuda", r["device"], r["input"], r["model"],
                                       r["median_ms"], r["mode"]))


def _unit_key(rec: dict) -> tuple | None:
    req = rec["request"]
    if rec["kind"] != "layers" or req["input"]["batch"] != 1 or req.get("features") \
            or not select.default_clock(rec):
        return None  # features=True: a segmentation head's view, not the backbone's
    return (rec["device_tag"], req["model"], req["input"]["name"], records.measured(rec)["mode"],
            req.get("depth", 1), req.get("output_stride", 32))


def _unit_rows(rec: dict, root: Path) -> list[dict]:
    req, r = rec["request"], rec["result"]
    costs = {c["label"]: c for c in (r.get("cost") or {}).get("units", [])}
    total = sum(u["stats"]["mean_ms"] for u in r["units"])
    base = {"model": req["model"], "input": req["input"]["name"], "device": rec["device_tag"],
            "device_name": rec["env"]["device_name"], "mode": records.measured(rec)["mode"],
            "depth": req.get("depth", 1), "output_stride": req.get("output_stride", 32),
            "whole_median_ms": r["timing"]["stats"]["median_ms"], "coverage": r.get("coverage"),
            "date": rec["env"]["date"], "record": _rel(rec["_path"], root), "txt": _txt_of(rec, root)}
    out = []
    for u in r["units"]:
        s, c, rf = u["stats"], costs.get(u["label"], {}), u.get("roofline") or {}
        achieved = rf.get("achieved_tflops")
        out.append({**base, "unit": u["label"], "module": u.get("path") or u.get("note"), "type": u.get("type"),
                    "median_ms": s["median_ms"], "mean_ms": s["mean_ms"], "p90_ms": s.get("p90_ms"),
                    "share": s["mean_ms"] / total if total else None, "kernel_ms": u.get("kernel_ms"),
                    "params_m": c["params"] / 1e6 if "params" in c else None,
                    "gflop": c["flops"] / 1e9 if "flops" in c else None,
                    "gflop_s": achieved * 1e3 if isinstance(achieved, (int, float)) else None,
                    "intensity_flop_b": rf.get("intensity"), "bound": rf.get("bound"),
                    "fraction_of_roof": rf.get("fraction_of_roof"), "feature_mib": c.get("feature_mib")})
    return out


def units(recs: list[dict], root: Path, problems: list[str]) -> list[dict]:
    """The rows of units.csv: the published per-unit record of each key, its units in model order."""
    groups: dict[tuple, list[dict]] = {}
    for rec in recs:
        try:
            key = _unit_key(rec)
        except select.ERRORS:
            continue  # the tables name a malformed record already
        if key is not None:
            groups.setdefault(key, []).append(rec)
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[2], k[1], k[3], k[4], k[5])):
        try:
            rec = select.published(groups[key])
            rows += _unit_rows(rec, root)
        except select.ERRORS as exc:
            problems.append(select.problem(groups[key][0], exc) + " (not in results/data)")
    return rows


def outputs(results_dir: Path, root: Path, recs: list[dict], res: select.Results,
            problems: list[str]) -> dict[Path, str]:
    """{results/data/<name>.csv: text}."""
    folder = Path(results_dir) / "data"
    return {folder / "measurements.csv": to_csv(MEASUREMENT_COLUMNS, measurements(recs, res, root, problems)),
            folder / "units.csv": to_csv(UNIT_COLUMNS, units(recs, root, problems))}
