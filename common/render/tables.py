"""The default-mode tables: latency and memory per device, the summary across
devices, the seeds' figures beside ours, and the execution-modes table.
Every function takes the selected rows (``select.Results``) and returns markdown."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from common import catalogue, records
from common.errors import UserError
from common.render.markdown import (CHECK, MISSING, PRESETS, display, distinct, md_table, model_key, num, pct,
                                    reduced_note, superseded_note)
from common.render.select import Device, Results, Row, stated_text

SEEDS = records.RESULTS / "reference" / "seeds.json"


@dataclass(frozen=True)
class Seeds:
    """The seeds' published figures (results/reference/seeds.json)."""

    devices: dict[str, dict]
    latency: dict[tuple[str, str, str], dict]  # (seed device, model, preset) -> row
    memory: dict[tuple[str, str], dict]  # (model, preset) -> row
    sources: dict[str, dict]
    seed004: dict | None = None  # seed 004's training-step and layer figures, as stored

    @classmethod
    def load(cls, path: Path = SEEDS) -> "Seeds":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data["devices"], {(r["device"], r["model"], r["preset"]): r for r in data["latency"]},
                       {(r["model"], r["preset"]): r for r in data["memory"]}, data["sources"], data.get("seed004"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"cannot read the seeds' reference figures {str(path)!r}: {exc}") from None


@dataclass(frozen=True)
class Col:
    title: str  # units in the name
    key: str  # Row.values key
    fmt: str


# The seeds' columns, then this project's additions.
LATENCY_COLS = [
    Col("Inference Time (ms)", "mean_ms", ".3f"), Col("Std (ms)", "std_ms", ".3f"), Col("FPS", "fps", ".2f"),
    Col("Median (ms)", "median_ms", ".3f"), Col("P90 (ms)", "p90_ms", ".3f"), Col("GMACs", "gmacs", ".2f"),
    Col("Achieved TFLOP/s", "achieved_tflops", ".3f"), Col("GPU busy", "busy", ".0%"),
    Col("Spread between repeats", "spread", ".1%"),
]
MEMORY_COLS = [
    Col("Static (MiB)", "static_mib", ".2f"), Col("Peak inference (MiB)", "peak_inference_mib", ".2f"),
    Col("# Params (M)", "params_m", ".3f"), Col("# Tensors (M)", "tensors_m", ".3f"),
]
IDENTITY_HEADERS = ["Model", PRESETS["cityscapes"], PRESETS["pascal"], "BasicBlock", "Bottleneck"]


def _identity(row: Row) -> list[str]:
    """The seeds' check-mark columns: which task, which residual block."""
    block = catalogue.block(row.model)
    mark = lambda cond: CHECK if cond else ""  # noqa: E731
    return [display(row.model, bool(row.superseded)), mark(row.preset == "cityscapes"), mark(row.preset == "pascal"),
            mark(block == "BasicBlock"), mark(block == "Bottleneck")]


def _block_note(rows: list[Row]) -> str:
    """Name the block of models that fit neither check-mark column."""
    others = {r.model: catalogue.block(r.model) for r in rows
              if catalogue.block(r.model) not in ("BasicBlock", "Bottleneck")}
    if not others:
        return ""
    names = "; ".join(f"{catalogue.display(m)}: {b}" for m, b in others.items())
    return f"\nBlocks of the other models: {names}.\n"


def row_notes(rows: list[Row]) -> str:
    return (superseded_note({records.short(r.path): r.superseded for r in rows if r.superseded})
            + reduced_note([records.short(r.path) for r in rows if r.reduced], stated_text()))


def protocol_line() -> str:
    """The minimum protocol every timing table states (``publish.STATED``), and the rule it publishes by."""
    return (f"Stated protocol (what `./profile.sh` runs by default on each device type): {stated_text()}. "
            "Per key the tables publish the newest current record made with at "
            "least this protocol; only when there is none, the newest one, marked reduced protocol. Earlier runs "
            "are kept (`results/records/<device>/<kind>/history/`).\n")


def dates(rows: list[Row]) -> str:
    first, last = min(r.day for r in rows), max(r.day for r in rows)
    return f"{first} (UTC)" if first == last else f"{first} to {last} (UTC)"


def device_header(dev: Device, rows: list[Row]) -> str:
    """What a reader needs to trust the numbers: device, software, mode, protocol, dates."""
    facts = lambda key: [r.facts[key] for r in rows if r.facts.get(key)]  # noqa: E731
    lines = [f"- Device: {dev.name} (`{dev.tag}`)", f"- Software: {distinct(facts('software'))}"]
    if dev.type == "cuda":
        lines.append(f"- Host CPU: {distinct(facts('host'))}")
    mode = f"- Precision/mode: {distinct(facts('mode'))}"
    if facts("flags"):
        mode += f"; backend flags: {' / '.join(sorted(set(facts('flags'))))}"
    lines.append(mode)
    if facts("iters"):
        lines.append(f"- Protocol: batch 1, clock {distinct(facts('clock'))}, warm-up {distinct(facts('warmup'))} "
                     f"iterations, timed iterations {distinct(facts('iters'))}")
    if facts("peak_method"):
        lines.append(f"- Peak inference memory: {distinct(facts('peak_method'))}")
    lines.append(f"- Measured: {dates(rows)}")
    return "\n".join(lines) + "\n"


def latency_table(res: Results, dev: Device) -> str:
    """The seeds' per-device latency table (seed 001), plus median, P90, GMACs, TFLOP/s;
    a run whose interquartile range exceeds 10% of its median is flagged NOISY."""
    rows = res.of("timing", dev.tag)
    body = [_identity(r) + [num(r.values[c.key], c.fmt) for c in LATENCY_COLS] + [r.day, r.flags] for r in rows]
    headers = IDENTITY_HEADERS + [c.title for c in LATENCY_COLS] + ["Measured", "Flag"]
    return md_table(headers, body, numeric_from=len(IDENTITY_HEADERS)) + _block_note(rows) + row_notes(rows)


def memory_table(res: Results, dev: Device) -> str:
    """The seeds' memory report table (seed 001), with static and peak memory apart."""
    rows = res.of("memory", dev.tag)
    body = [_identity(r) + [num(r.values[c.key], c.fmt) for c in MEMORY_COLS] + [r.day] for r in rows]
    headers = IDENTITY_HEADERS + [c.title for c in MEMORY_COLS] + ["Measured"]
    return md_table(headers, body, numeric_from=len(IDENTITY_HEADERS)) + _block_note(rows) + row_notes(rows)


def static_source(res: Results, model: str, preset: str) -> Row | None:
    """Static memory (weights + buffers + input) barely depends on the device:
    take it from the first device (GPUs first) with a memory record."""
    for dev in res.devices_with("memory"):
        if (row := res.get("memory", dev.tag, model, preset)) is not None:
            return row
    return None


def params_m(res: Results, model: str, preset: str) -> float | None:
    for row in sorted(res.rows.values(), key=lambda r: r.key):
        if row.model == model and row.preset == preset and "params_m" in row.values:
            return row.values["params_m"]
    return None


SUMMARY_NOTE = ("Per device: mean, median and std of the latency (batch 1; the seeds published mean and std), and "
                "FPS = 1000 / mean latency. Static memory = weights + buffers + input (pytorch-memlab, corrected); "
                "peak inference = memory one inference adds on top (GPU: allocator peak; CPU: peak RSS growth). "
                "MiB = 2^20 bytes.\n")


def summary_table(res: Results, preset: str) -> str:
    """Seed 000's summary: one row per backbone, every device side by side."""
    timed, mem = res.devices_with("timing"), res.devices_with("memory")
    stats = (("Mean (ms)", "mean_ms", ".3f"), ("Median (ms)", "median_ms", ".3f"), ("Std (ms)", "std_ms", ".3f"),
             ("FPS (from mean)", "fps", ".2f"))
    headers = (["Model"] + [f"{title} [{d.short}]" for d in timed for title, _, _ in stats]
               + ["Static (MiB)"] + [f"Peak inference (MiB) [{d.short}]" for d in mem] + ["# Params (M)"])
    body, used = [], []
    for model in res.models():
        t = [res.get("timing", d.tag, model, preset) for d in timed]
        m = [res.get("memory", d.tag, model, preset) for d in mem]
        static = static_source(res, model, preset)
        used += [r for r in t + m + [static] if r]
        cells = [num(r.values[key] if r else None, fmt) for r in t for _, key, fmt in stats]
        body.append([display(model, any(r and r.superseded for r in t + m), any(r and r.reduced for r in t))] + cells
                    + [num(static.values["static_mib"] if static else None, ".2f")]
                    + [num(r.values["peak_inference_mib"] if r else None, ".2f") for r in m]
                    + [num(params_m(res, model, preset), ".3f")])
    return md_table(headers, body, numeric_from=1) + row_notes(sorted(set(used), key=lambda r: r.path))


def comparison_table(res: Results, seeds: Seeds, preset: str) -> str:
    """Seeds' mean latency beside ours, and speed-ups (seed mean / our mean) of
    each of our devices over each seed device of the same type (GPU vs GPU, CPU vs CPU)."""
    ours = res.devices_with("timing")
    pairs = [(d, sid) for d in ours for sid, s in seeds.devices.items() if s["type"] == d.type]
    headers = (["Model"] + [f"Mean (ms) [{s['short']}, seed]" for s in seeds.devices.values()]
               + [f"Mean (ms) [{d.short}]" for d in ours]
               + [f"Speed-up (x) [{d.short} vs {seeds.devices[sid]['short']}]" for d, sid in pairs])
    body = []
    for model in catalogue.BACKBONES:
        seed_ms = {sid: (seeds.latency.get((sid, model, preset)) or {}).get("mean_ms") for sid in seeds.devices}
        rows = {d.tag: res.get("timing", d.tag, model, preset) for d in ours}
        our_ms = {tag: r.values["mean_ms"] if r else None for tag, r in rows.items()}
        ratios = [seed_ms[sid] / our_ms[d.tag] if seed_ms[sid] and our_ms[d.tag] else None for d, sid in pairs]
        body.append([display(model, reduced=any(r and r.reduced for r in rows.values()))] + [num(v, ".3f") for v in seed_ms.values()]
                    + [num(v, ".3f") for v in our_ms.values()] + [num(v, ".2f") for v in ratios])
    return md_table(headers, body, numeric_from=1)


def seed_memory_table(res: Results, seeds: Seeds, preset: str) -> str:
    """The seeds' memlab figures beside our corrected static memory: the same
    quantity (weights + buffers + input), so they should agree closely."""
    headers = ["Model", "Allocated (MiB) [seed]", "Static (MiB) [ours]", "# Tensors (M) [seed]",
               "# Tensors (M) [ours]", "# Params (M) [seed]", "# Params (M) [ours]"]
    body = []
    for model in catalogue.BACKBONES:
        seed = seeds.memory.get((model, preset)) or {}
        ours = static_source(res, model, preset)
        v = ours.values if ours else {}
        body.append([display(model), num(seed.get("allocated_mib"), ".2f"), num(v.get("static_mib"), ".2f"),
                     num(seed.get("tensors_m"), ".3f"), num(v.get("tensors_m"), ".3f"),
                     num(seed.get("params_m"), ".3f"), num(params_m(res, model, preset), ".3f")])
    return md_table(headers, body, numeric_from=1)


def seed_sources(seeds: Seeds) -> str:
    lines = [f"- `{name}`: {s['document']}" for name, s in sorted(seeds.sources.items())]
    devs = "; ".join(f"{s['short']} = {s['name']}" for s in seeds.devices.values())
    return ("Seed figures as published, copied into `results/reference/seeds.json` from the seed documents:\n\n"
            + "\n".join(lines) + f"\n\nSeed devices: {devs}.\n")


def mode_devices(res: Results) -> list[str]:
    """Devices with a non-default execution mode measured."""
    return sorted({k[0] for k in res.modes if k[3]})


def modes_table(res: Results, tag: str) -> str:
    """One row per model, preset and execution mode measured on this device, fastest first.
    A mode with a full-protocol record shows it; a search's brief sample only stands in
    for a mode never measured in full, and says so."""
    varied = {(k[1], k[2]) for k in res.modes if k[0] == tag and k[3]}
    keys = sorted((k for k in res.modes if k[0] == tag and (k[1], k[2]) in varied),
                  key=lambda k: (model_key(k[1]), list(PRESETS).index(k[2]), res.modes[k].median_ms))
    headers = ["Model", "Input", "Mode", "Mean (ms)", "Median (ms)", "FPS (from mean)", "Achieved TFLOP/s",
               "Of measured peak", "Measured"]
    rows, reduced = [], []
    for k in keys:
        e = res.modes[k]
        mode = e.mode + (" (picked by --mode fastest)" if e.fastest else "") \
            + (f" (search sample: {e.search_iters} iterations)" if e.search_iters else "") \
            + (f" ({e.budget})" if e.budget else "")
        rows.append([display(k[1], bool(e.superseded), e.reduced), k[2], mode, num(e.mean_ms, ".3f"),
                     num(e.median_ms, ".3f"), num(e.fps, ".2f"), num(e.tflops, ".2f"), pct(e.of_peak),
                     e.date.strftime("%Y-%m-%d")])
        reduced += [records.short(e.path)] if e.reduced and e.path else []
    return md_table(headers, rows, numeric_from=3) + reduced_note(reduced, stated_text())


def value_range(vals: list[tuple[str, float]], fmt: str) -> str:
    if not vals:
        return MISSING
    lo, hi = min(vals, key=lambda mv: mv[1]), max(vals, key=lambda mv: mv[1])
    if len(vals) == 1:
        return f"{format(lo[1], fmt)} ({lo[0]})"
    if format(lo[1], fmt) == format(hi[1], fmt):
        return f"{format(lo[1], fmt)} (all {len(vals)})"
    return f"{format(lo[1], fmt)} ({lo[0]}) to {format(hi[1], fmt)} ({hi[0]})"


EVIDENCE_NOTE = ("Per device, mode and preset, over every current record at batch 1 with the device's default "
                 "clock: per-unit coverage from the event spans (sum of unit spans / whole model without hooks: "
                 "includes the host's time between launches) and from kernel time (sum of the units' GPU kernel "
                 "time / the pass's kernel time: host-independent, 1 up to kernels launched outside every unit); "
                 "GPU busy = kernel time per iteration / wall-time median (below {lb:.0%}: launch-bound); spread = "
                 "(max - min) / median of the repeats' medians (above {us:.0%}: unstable across runs). Lowest and "
                 "highest, with the model.\n")


def evidence_table(res: Results) -> str:
    """Coverage ranges (span and kernel), busy fractions and spreads, generated from the records."""
    headers = ["Device", "Mode", "Input", "Span coverage", "Kernel coverage", "GPU busy", "Spread", "Records"]
    body = []
    names = {d.tag: d.short for d in res.devices}
    for (tag, mode, preset), e in sorted(res.evidence.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                               list(PRESETS).index(kv[0][2]))):
        n = max(len(e["span"]), len(e["busy"]), len(e["spread"]))
        body.append([names.get(tag, tag), mode, preset, value_range(e["span"], ".3f"), value_range(e["kernel"], ".3f"),
                     value_range(e["busy"], ".0%"), value_range(e["spread"], ".1%"), str(n)])
    return md_table(headers, body, numeric_from=3)


def mode_device_name(res: Results, tag: str) -> str:
    return next(e.device_name for k, e in sorted(res.modes.items()) if k[0] == tag)

