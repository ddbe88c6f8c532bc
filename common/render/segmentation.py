"""Segmentation-ready variants, rendered from records only: ``results/segmentation.md``.

A segmentation head consumes a backbone whose last stages are dilated instead of
strided (``--output-stride 16`` or ``8``): the same weights, feature maps 2x or 4x
larger per side in the last stages, so more compute and memory. This page puts
each model's output-stride variants beside its plain (OS32) form, per device and
input: latency (eager fp32, batch 1, the device's default clock), spread between
repeats, GFLOPs, parameters, peak memory of one inference where a memory record
exists, and the per-unit file.

A model appears when it has a timing (or per-unit) record at an output stride other
than 32; its OS32 row is its plain record at the same input. Per (model, input,
output stride) the publishing rule picks the record (``common.render.publish.rank``);
a superseded one only when nothing else exists, and then marked.
"""
from __future__ import annotations

from pathlib import Path

from common.render import publish, select
from common.render.evidence import budget_text
from common.render.markdown import md_table

PAGE = "segmentation.md"
STRIDES = (32, 16, 8)


def _eager_default(rec: dict) -> bool:
    """Eager fp32 as given, batch 1, the device's default clock, no features: the
    variant's latency row (the catalogue tables' default mode, output stride aside)."""
    req = rec["request"]
    return (select.variant(rec) == "" and req.get("search", "as-given") == "as-given"
            and req["input"]["batch"] == 1 and not req.get("features") and select.default_clock(rec))


def collect(recs: list[dict]) -> dict[tuple[str, str], dict[str, dict[int, dict]]]:
    """{(device tag, input): {model: {output stride: {"timing": rec, "layers": rec, "memory": rec}}}}."""
    cells: dict[tuple[str, str, str, int, str], dict] = {}
    for rec in recs:
        if rec.get("_history") or rec.get("kind") not in ("timing", "layers", "memory"):
            continue
        try:
            req = rec["request"]
            if rec["kind"] != "memory" and not _eager_default(rec):
                continue
            if rec["kind"] == "memory" and (req["input"]["batch"] != 1 or req.get("features")):
                continue
            key = (rec["device_tag"], req["input"]["name"], req["model"], int(req.get("output_stride", 32)),
                   rec["kind"])
            if rec["kind"] == "layers" and req.get("depth", 1) != 1:
                continue
        except (KeyError, TypeError, ValueError):
            continue
        if key not in cells or publish.rank(rec) > publish.rank(cells[key]):
            cells[key] = rec
    dilated = {(tag, inp, model) for (tag, inp, model, os_, _k) in cells if os_ != 32}
    out: dict[tuple[str, str], dict[str, dict[int, dict]]] = {}
    for (tag, inp, model, os_, kind), rec in sorted(cells.items(), key=lambda kv: kv[0][:4]):
        if (tag, inp, model) in dilated:
            out.setdefault((tag, inp), {}).setdefault(model, {}).setdefault(os_, {})[kind] = rec
    return out


def _latency(rec: dict) -> tuple[str, str]:
    res = rec["result"]
    rep = res.get("repeats") or {}
    ms = rep.get("median_of_medians_ms", res["timing"]["stats"]["median_ms"])
    spread = rep.get("spread")
    mark = " (superseded)" if rec.get("superseded") else ""
    mark += f" ({budget_text(rec)})" if budget_text(rec) else ""
    return f"{ms:.2f}{mark}", "-" if spread is None else f"{spread:.1%}"


def _link(rec: dict | None, root: Path, results_dir: Path) -> str:
    if rec is None:
        return "-"
    from common.render import txt

    path = txt.path_for(rec, root)
    rel = Path("..") / path.relative_to(root) if results_dir.resolve().parent == root.resolve() else path
    return f"[{path.name}]({rel.as_posix()})"


def rows_for(models: dict[str, dict[int, dict]], root: Path, results_dir: Path) -> list[list[str]]:
    rows = []
    for model, by_os in models.items():
        for os_ in STRIDES:
            kinds = by_os.get(os_)
            if not kinds:
                continue
            timed = kinds.get("timing") or kinds.get("layers")
            mem = kinds.get("memory")
            cost = (timed or mem or {}).get("result", {}).get("cost") or {}
            lat, spread = _latency(timed) if timed else ("-", "-")
            peak = (mem or {}).get("result", {}).get("peak") or {}
            peak_mib = peak.get("peak_allocated_mib")  # weights + input + the inference's peak
            rows.append([model, str(os_), lat, spread,
                         f"{cost['flops'] * 1e-9:,.0f}" if cost.get("flops") else "-",
                         f"{cost['params'] / 1e6:.1f}" if cost.get("params") else "-",
                         f"{peak_mib:,.0f}" if isinstance(peak_mib, (int, float)) else "-",
                         _link(kinds.get("layers"), root, results_dir)])
    return rows


def markdown(recs: list[dict], root: Path, results_dir: Path) -> str:
    lines = ["# Segmentation-ready variants: output stride 32, 16 and 8", "",
             "Generated by `python -m common.render` from the records; do not edit. A segmentation head takes a "
             "backbone whose last stages are dilated instead of strided (`--output-stride 16|8`: torchvision's "
             "`replace_stride_with_dilation` for ResNets, timm's `output_stride` elsewhere): same parameters, "
             "larger feature maps in the last stages. Latency: eager fp32, batch 1, median (of the repeats' "
             "medians where repeated), the device's default clock; spread = (max - min) / median of the repeats' "
             "medians; peak: allocated memory at the peak of one inference (weights, input and activations), from the memory "
             "record where one exists.", ""]
    groups = collect(recs)
    if not groups:
        lines.append("No output-stride records yet (`timer.py --output-stride 8 --layers`).")
    headers = ["model", "output stride", "latency (ms)", "spread", "GFLOPs", "params (M)", "peak (MiB)",
               "per-unit file"]
    for (tag, inp), models in sorted(groups.items()):
        lines += [f"## {tag}, {inp}", "", md_table(headers, rows_for(models, root, results_dir), 1)]
    return "\n".join(lines).rstrip("\n") + "\n"


def outputs(results_dir: Path, root: Path, recs: list[dict]) -> dict[Path, str]:
    return {Path(results_dir) / PAGE: markdown(recs, Path(root), Path(results_dir))}
