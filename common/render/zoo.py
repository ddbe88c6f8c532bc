"""The zoo outputs, rendered from records only: ``results/zoo.md`` (one table per
device and input: params, GMACs, feature memory, latency per mode, throughput, peak
memory, ImageNet top-1, failures with their reason; the Pareto frontier of each
mode), ``results/figures/zoo_pareto_<device>_<input>.png`` (top-1 against measured
latency, log x, eager fp32 and fastest mode, the frontier highlighted and labelled),
and (through ``common.render.throughput``) each throughput record's ``.txt``.

    outputs(results, root)   {path: text}: zoo.md and the throughput .txt files
    figures(results)         {path: PNG bytes}
    frontier(points)         the Pareto-optimal points (``common.render.pareto``)

A device's section (GPUs first) opens with its sweep (``common.render.zoo_sweep``: models,
inputs, wall time, failures, protocol), the machine as the sweep's record states it (on a
CPU: its logical CPUs, the sweep's pinning and threads) and what the fastest search timed
there; a CPU's latency protocol names its thread count. A device whose tables hold no
throughput record (the CPU sweep measures none) shows no throughput columns.

The models of a device's table are those of its last zoo sweep (record kind
``zoo-run``, written by ``python -m common zoo`` or by a Dask sweep of kind ``zoo``),
else every zoo-family model with a record there. A model's row takes the newest non-superseded record of each kind:
``timing`` as-given eager fp32 and ``timing`` fastest (batch 1, as published:
output stride 32, no features), ``memory``, ``throughput`` and ``failure``; a
failure newer than the record it would have made is shown with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common import catalogue, records
from common import protocol as protocols
from common.derive import LAUNCH_BOUND_BUSY
from common.render.evidence import HOST_MARK, budget_text, host_bound_text
from common.render import select
from common.render.markdown import md_table
from common.render.pareto import Point, frontier, pareto_png  # noqa: F401 - Point, frontier re-exported
from common.render.throughput import throughput_cell, throughput_txt, throughput_txt_path
from common.render.zoo_sweep import machine_line, search_line, sweep_line

SWEEP_KIND, FAILURE_KIND, THROUGHPUT_KIND = "zoo-run", "failure", "throughput"
INPUT_ORDER = ("imagenet", "cityscapes", "pascal")


# ---------------------------------------------------------------- selection

def _date(rec: dict) -> str:
    return str(rec.get("env", {}).get("date") or rec.get("result", {}).get("date") or "")


def _newest(recs: list[dict]) -> dict | None:
    live = [r for r in recs if not r.get("superseded")] or recs
    return max(live, key=lambda r: (_date(r), r.get("_path", ""))) if live else None


def _plain(req: dict) -> bool:
    return (req.get("output_stride", 32) == 32 and not req.get("features", False)
            and req["input"].get("batch", 1) == 1)


def _slot(rec: dict) -> str | None:
    """Which cell family a record fills: eager, fastest, memory, throughput, failure-<slot>."""
    req, kind = rec["request"], rec["kind"]
    if kind == FAILURE_KIND:
        return "failure-" + str(rec["result"].get("slot", req.get("kind")))
    if kind == THROUGHPUT_KIND:
        return "throughput" if req.get("output_stride", 32) == 32 and not req.get("features") else None
    if not _plain(req) or (kind == "timing" and select.runtimes_page_only(rec)):  # results/runtimes.md's
        return None
    if kind == "memory":
        return "memory"
    if kind == "timing":
        if req.get("search") == "fastest":
            return "fastest"
        return "eager" if req.get("variant", "") == "" and not req.get("compile") else None
    return None


@dataclass
class Table:
    tag: str
    preset: str
    cells: dict[str, dict[str, dict]] = field(default_factory=dict)  # model -> slot -> record


def calls_of(versions: list[dict]) -> tuple[float, int, int]:
    """(wall seconds, calls, calls through a Dask sweep) of one zoo-run record over every version of it (the current
    one and the earlier ones kept under history/). A version adds its call's wall time
    to the version its call started from, which need not be the one before it (two calls
    may start from one tree); so each version counts its total minus its base's: the
    latest earlier version with fewer calls."""
    wall, calls, dask = 0.0, 0, 0
    done: list[dict] = []
    for v in sorted(versions, key=_date):
        r = v["result"]
        fewer = [b for b in done if b.get("calls", 1) < r.get("calls", 1)]
        base = max(fewer, key=lambda b: b.get("calls", 1)) if fewer else {"wall_s": 0.0, "calls": 0}
        wall += r.get("wall_s", 0.0) - base.get("wall_s", 0.0)
        calls += r.get("calls", 1) - base.get("calls", 1)
        dask += bool(r.get("via"))  # a Dask sweep's version is written by the sweep: one call
        done.append(r)
    return wall, calls, dask


def _with_history(rec: dict) -> list[dict]:
    return [rec] + (records.load_history(Path(rec["_path"])) if rec.get("_path") else [])


def collect(recs: list[dict]) -> tuple[dict[str, dict], dict[tuple[str, str], Table]]:
    """(the newest zoo-run record per device, with the wall time and calls of all its
    versions, tables per (device, input))."""
    sweeps: dict[str, dict] = {}
    for r in sorted((r for r in recs if r["kind"] == SWEEP_KIND), key=_date):
        wall, calls, dask = calls_of(_with_history(r))
        cur = sweeps.get(r["device_tag"])
        if cur is None:  # several sweeps of one device (shards, --run-name): their union
            sweeps[r["device_tag"]] = {**r, "result": {**r["result"], "runs": 1, "wall_s": wall, "calls": calls,
                                                       "dask_calls": dask}}
            continue
        a, b = cur["result"], r["result"]
        cur["result"] = {**b, "models": list(dict.fromkeys(a["models"] + b["models"])),
                         "inputs": list(dict.fromkeys(a["inputs"] + b["inputs"])),
                         "failed": a.get("failed", []) + b.get("failed", []),
                         "wall_s": max(a["wall_s"], wall), "calls": a["calls"] + calls,
                         "dask_calls": a["dask_calls"] + dask, "runs": a["runs"] + 1}
    grouped: dict[tuple[str, str, str, str], list[dict]] = {}
    for r in recs:
        if r["kind"] not in ("timing", "memory", THROUGHPUT_KIND, FAILURE_KIND):
            continue
        try:
            slot = _slot(r)
            model, preset = r["request"]["model"], r["request"]["input"]["name"]
        except (KeyError, TypeError):
            continue
        if slot is None:
            continue
        grouped.setdefault((r["device_tag"], preset, model, slot), []).append(r)
    tables: dict[tuple[str, str], Table] = {}
    for (tag, preset, model, slot), group in grouped.items():
        sweep = sweeps.get(tag)
        if sweep is not None:
            if model not in sweep["result"]["models"] or preset not in sweep["result"]["inputs"]:
                continue
        elif catalogue.family_of(group[0]) != catalogue.ZOO_FAMILY:
            continue
        t = tables.setdefault((tag, preset), Table(tag, preset))
        t.cells.setdefault(model, {})[slot] = _newest(group)
    return sweeps, tables


def _failure(cells: dict, slot: str) -> str | None:
    """The reason of a failure that is newer than the slot's record (or without one)."""
    f = cells.get(f"failure-{slot}")
    if f is None:
        return None
    ok = cells.get(slot)
    if ok is not None and _date(ok) >= _date(f):
        return None
    return f["result"].get("reason", "failed")


# ---------------------------------------------------------------- cells

def _ms(rec: dict | None) -> float | None:
    try:
        return float(rec["result"]["timing"]["stats"]["median_ms"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


def _cost(cells: dict) -> dict:
    for slot in ("eager", "fastest", "memory"):
        c = (cells.get(slot) or {}).get("result", {}).get("cost")
        if c:
            return c
    return {}


def _num(v: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def _peak(rec: dict | None) -> float | None:
    p = (rec or {}).get("result", {}).get("peak") or {}
    v = p.get("peak_inference_mib")
    return float(v) if isinstance(v, (int, float)) else None


def _top1(cells: dict) -> float | None:
    """The published top-1 of the model of a row's records (any of them: one model)."""
    return catalogue.top1_of(next(iter(cells.values())))


def _fastest_mode(rec: dict | None) -> str:
    if rec is None:
        return ""
    return str((rec["result"].get("fastest") or {}).get("picked", ""))


def rows_of(table: Table) -> list[list[str]]:
    stated = _protocol(table)
    rows = []
    for model in sorted(table.cells):
        cells = table.cells[model]
        c = _cost(cells)
        reasons: dict[str, list[str]] = {}
        for slot in ("eager", "fastest", "memory", "throughput"):
            if why := _failure(cells, slot):
                reasons.setdefault(why, []).append(slot)
        problems = [f"{'/'.join(slots)}: {why}" for why, slots in reasons.items()]
        top1 = _top1(cells)
        rows.append([
            f"`{model}`",
            "; ".join(problems).replace("|", "/") or "",
            _num(c.get("params") and c["params"] / 1e6, "{:.1f}"),
            _num(c.get("macs") and c["macs"] / 1e9, "{:.2f}"),
            _num(c.get("feature_mib"), "{:.0f}"),
            _num(_ms(cells.get("eager")), "{:.3f}") + _mark(cells.get("eager"), stated),
            _num(_ms(cells.get("fastest")), "{:.3f}") + (f" ({_fastest_mode(cells.get('fastest'))})"
                                                         if cells.get("fastest") else "")
            + _mark(cells.get("fastest"), stated),
            throughput_cell(cells.get("throughput"), "eager fp32"),
            throughput_cell(cells.get("throughput"), "fastest"),
            _num(_peak(cells.get("memory")), "{:.0f}"),
            _num(top1, "{:.1f}"),
        ])
    return rows


def _mark(rec: dict | None, stated: str) -> str:
    short = f" ({budget_text(rec)})" if rec is not None and budget_text(rec) else ""
    return short + host_bound_text(rec) + (" *" if rec is not None and protocol_of(rec) != stated else "")


HEADER = ["model", "failed (reason)", "params (M)", "GMACs", "feature mem (MiB)", "eager fp32 median (ms)",
          "fastest median (ms, mode)", "throughput eager fp32 (img/s @ batch)", "throughput fastest (img/s @ batch)",
          "peak inference (MiB)", "ImageNet top-1 (%)"]
THROUGHPUT_COLUMNS = (7, 8)


def _device_type(tables: dict[tuple[str, str], Table], tag: str) -> str:
    """'cuda' or 'cpu', from the env of a record of the device's tables ('' when none says)."""
    for (g, _), t in tables.items():
        for cells in t.cells.values() if g == tag else ():
            for rec in cells.values():
                if (kind := (rec.get("env") or {}).get("device_type")):
                    return str(kind)
    return ""


def points(table: Table, slot: str) -> list[Point]:
    out = []
    for model, cells in table.cells.items():
        ms, top1 = _ms(cells.get(slot)), _top1(cells)
        if ms is not None and top1 is not None and ms > 0:
            out.append(Point(model, ms, top1))
    return out


def threads_of(rec: dict) -> int | None:
    """The intra-op threads a CPU record ran with (its request's, else its process's); None on a GPU."""
    env = rec.get("env") or {}
    if env.get("device_type") != "cpu":
        return None
    n = rec["request"].get("threads") or env.get("threads")
    return int(n) if n else None


def protocol_of(rec: dict) -> str:
    """A timing record's protocol in words, from the protocol its request carries; on a CPU
    with its thread count, without which two CPU latencies are not comparable."""
    n = threads_of(rec)
    return protocols.from_request(rec["request"]).text + ", batch 1" + (
        f", {n} thread{'s' if n != 1 else ''}" if n else "")


def _timed(table: Table) -> list[tuple[str, str, dict]]:
    return [(model, slot, cells[slot]) for model, cells in sorted(table.cells.items())
            for slot in ("eager", "fastest") if cells.get(slot)]


def _protocol(table: Table) -> str:
    """The table's protocol: that of most of its latency cells (the others are marked)."""
    texts = [protocol_of(rec) for _, _, rec in _timed(table)]
    return max(dict.fromkeys(texts), key=texts.count) if texts else "no timing records"


def other_protocols(table: Table) -> dict[str, list[str]]:
    """Latency cells measured at another protocol than the table's (a catalogue model's own
    records, a per-unit run's): protocol -> ['`model` slot', ...]."""
    stated, out = _protocol(table), {}
    for model, slot, rec in _timed(table):
        if (text := protocol_of(rec)) != stated:
            out.setdefault(text, []).append(f"`{model}` {slot}")
    return out


def figure_name(tag: str, preset: str) -> str:
    return f"zoo_pareto_{tag}_{preset}.png"


def markdown(recs: list[dict]) -> str:
    sweeps, tables = collect(recs)
    lines = ["# Model zoo: latency, throughput, memory and accuracy", "",
             "Generated by `python -m common.render` from the records (`python -m common zoo` measures them). "
             "Random weights; **ImageNet top-1** is the published figure of the same architecture's default weights "
             "(torchvision's weights metadata, timm's results-imagenet.csv: `results/reference/`). "
             "Latency (ms, median of the timed loop, batch 1) and throughput (images/s at the largest batch that "
             "fits, from the mean; `(cap)`: the search's largest batch, which fit: larger ones were not tried) are "
             "separate measurements, never mixed in a column. *fastest*: the mode a short "
             "search picked among precisions, channels-last and CUDA graphs (compile left out when the sweep says "
             "so). Params and GMACs (multiply-accumulates) from a meta-device pass; feature memory in "
             "convnet-burden's convention; peak inference: memory beyond the weights and input during one "
             "inference. `-`: not measured.", ""]
    if not tables:
        return "\n".join(lines + ["No zoo records yet: run `python -m common zoo`.", ""])
    for tag in sorted({t for t, _ in tables}, key=lambda t: (_device_type(tables, t) != "cuda", t)):
        lines += [f"## {tag}", ""]
        sweep = sweeps.get(tag)
        mine = [t for (g, _), t in tables.items() if g == tag]
        if sweep:
            lines += [sweep_line(sweep), "", machine_line(sweep.get("env") or {}), ""]
        fastest = [c["fastest"] for t in mine for c in t.cells.values() if c.get("fastest")]
        if (searched := search_line(fastest)) is not None:
            lines += [searched, ""]
        # A device whose sweep measured no throughput (the CPU's): no columns of dashes.
        keep = [i for i, _ in enumerate(HEADER) if i not in THROUGHPUT_COLUMNS
                or any(s in c for t in mine for c in t.cells.values() for s in ("throughput", "failure-throughput"))]
        for preset in sorted({p for t, p in tables if t == tag}, key=lambda p: (INPUT_ORDER + (p,)).index(p)):
            table = tables[(tag, preset)]
            lines += [f"### {tag}, {preset}", "", f"Protocol: {_protocol(table)}.", ""]
            if sweep:
                timed = sum(1 for c in table.cells.values() if "eager" in c or "fastest" in c)
                without = ("rows without one: throughput only, or not reached" if THROUGHPUT_COLUMNS[0] in keep
                           else "a model without one failed, its reason in its row, or was not reached")
                lines += [f"{timed} of the {len(sweep['result']['models'])} listed models have a latency at this "
                          f"input so far (the sweep resumes where it stopped; {without}).", ""]
            lines += md_table([HEADER[i] for i in keep], [[row[i] for i in keep] for row in rows_of(table)],
                              2).splitlines() + [""]
            others = other_protocols(table)
            lines += [f"\\* Measured at another protocol, {text}: {', '.join(cells)}." for text, cells in others.items()]
            lines += [""] if others else []
            if any(host_bound_text(c.get(s)) for c in table.cells.values() for s in ("eager", "fastest")):
                lines += [f"{HOST_MARK} Host-bound: the kernel profile after the timed loop kept the GPU busy for that "
                          f"fraction of the median (below {LAUNCH_BOUND_BUSY:.0%}): the GPU waited on Python launching "
                          "kernels, so the row measures the host as much as the model.", ""]
            lines += [f"![Pareto: top-1 against latency, {tag} {preset}](figures/{figure_name(tag, preset)})", ""]
            for slot, label in (("eager", "eager fp32"), ("fastest", "fastest mode")):
                best = frontier(points(table, slot))
                if not best:
                    continue
                lines += [f"Pareto frontier, {label} (no model is both faster and more accurate):", ""]
                lines += md_table(["model", "median (ms)", "ImageNet top-1 (%)"],
                                  [[f"`{p.model}`", f"{p.latency_ms:.3f}", f"{p.top1:.1f}"] for p in best], 1).splitlines()
                lines += [""]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- outputs

def outputs(results_dir: Path, root: Path | None = None) -> dict[Path, str]:
    root = Path(root) if root is not None else Path(results_dir).parent
    recs, _ = records.load_records(results_dir)
    out: dict[Path, str] = {Path(results_dir) / "zoo.md": markdown(recs)}
    for rec in recs:
        if rec["kind"] == THROUGHPUT_KIND:
            try:
                out[throughput_txt_path(rec, root)] = throughput_txt(rec)
            except (KeyError, TypeError, ValueError):
                continue
    return out


def _pareto_plots(results_dir: Path) -> dict[Path, tuple[dict, str]]:
    """Each Pareto figure's path -> (its series, its title)."""
    recs, _ = records.load_records(results_dir)
    _, tables = collect(recs)
    out = {}
    for (tag, preset), table in tables.items():
        series = {slot: points(table, slot) for slot in ("eager", "fastest")}
        if any(series.values()):
            out[Path(results_dir) / "figures" / figure_name(tag, preset)] = (series, f"{tag}, {preset}")
    return out


def figure_paths(results_dir: Path) -> list[Path]:
    """Where ``figures`` writes, without drawing (``--check`` asks only that they exist)."""
    return list(_pareto_plots(results_dir))


def figures(results_dir: Path) -> dict[Path, bytes]:
    return {path: pareto_png(series, title) for path, (series, title) in _pareto_plots(results_dir).items()}
