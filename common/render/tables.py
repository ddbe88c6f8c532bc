"""Results tables and figures, rebuilt from the JSON records alone.

    python -m common.render.tables [--results DIR] [--readme PATH] [--seeds PATH] [--check]

Reads ``<results>/records/<device-tag>/<kind>/*.json`` (see ``common.records``),
keeps the default-mode records (fp32 eager, default clock, batch 1, the
``cityscapes``/``pascal`` presets), and writes

- ``<results>/tables.md``: every table;
- the section of README.md between ``<!-- results:begin -->`` and
  ``<!-- results:end -->`` (the same tables, figure links relative to README);
- ``<results>/figures/*.png``: latency vs GMACs / parameters, per-unit breakdowns.

``--check`` writes nothing and exits 1 when README.md or tables.md differ from
what the records give (figures are not compared: PNG bytes vary with matplotlib).

Flow: records -> ``Row`` (validated, one per record) -> newest row per
(kind, device, model, preset) -> one function per table -> markdown.
Numbers stay unrounded until ``_num`` prints them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from common import registry, records
from common.errors import UserError
from common.inputs import PRESETS as INPUT_SIZES

PROG = "common.render.tables"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
PRESETS = {"cityscapes": "Cityscapes", "pascal": "PASCAL-VOC-2012"}  # the seeds' two tasks, their titles
KINDS = ("timing", "memory", "layers")  # 'structure' records feed no table
DEFAULT_CLOCK = {"cuda": "cuda-event", "cpu": "perf_counter"}
SEEDS = records.RESULTS / "reference" / "seeds.json"
CHECK = ":heavy_check_mark:"
MISSING = "-"
# Every model the registry knows, the seeds' six backbones first and in their order.
MODEL_ORDER = list(registry.BACKBONES) + [n for n in registry.REGISTRY if n not in registry.BACKBONES]


# --------------------------------------------------------------------------- records -> rows


@dataclass(frozen=True)
class Row:
    """One default-mode record, reduced to what the tables print.

    ``values`` holds the numbers (unrounded, units in the key names);
    ``facts`` the header facts (versions, flags, protocol) as strings.
    """

    kind: str
    tag: str  # device folder: results/records/<tag>/...
    model: str
    preset: str
    date: dt.datetime  # UTC
    path: str
    device_name: str
    device_type: str
    values: dict = field(hash=False)
    facts: dict = field(hash=False)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.tag, self.model, self.preset)

    @property
    def day(self) -> str:
        return self.date.strftime("%Y-%m-%d")


def _utc(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    # Records carry an offset; a bare timestamp is taken as UTC, like env.collect writes.
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when.astimezone(dt.timezone.utc)


def is_default_mode(rec: dict) -> bool:
    """The mode the README tables report: the seeds' protocol without options.

    The clock is checked too: a GPU run with ``--clock perf_counter`` (a timer
    cross-check) has an empty variant but is not the number the tables quote.
    Per-unit tables use depth 1 (layers, not ResNet blocks)."""
    spec = rec["spec"]
    if spec["variant"] != "" or spec["input"]["batch"] != 1 or spec["input"]["name"] not in PRESETS:
        return False
    if rec["result"].get("fastest"):  # a search that picked eager fp32 is not the seeds' protocol
        return False
    if rec["kind"] in ("timing", "layers") and spec["clock"] != DEFAULT_CLOCK.get(rec["env"]["device_type"]):
        return False
    return rec["kind"] != "layers" or spec["depth"] == 1


def _software(env: dict) -> str:
    if env["device_type"] != "cuda":
        # A CPU run's env still names the CUDA build of torch; it played no part.
        return f"torch {env['torch']} (CUDA/cuDNN not used), {env['threads']} threads"
    return (f"torch {env['torch']}, CUDA {env['cuda']}, cuDNN {_cudnn(env['cudnn'])}, "
            f"driver {env.get('driver') or 'unknown'}")


def _cudnn(version: int | None) -> str:
    """torch reports cuDNN as one integer: 9.x is MMmmpp (91300), 8.x is Mmpp (8902)."""
    if not version:
        return "none"
    if version >= 10000:
        return f"{version // 10000}.{version // 100 % 100}.{version % 100}"
    return f"{version // 1000}.{version // 100 % 10}.{version % 100}"


def _flags(result: dict) -> str:
    flags = result.get("backend_flags") or {}
    return ", ".join(f"{k}={v}" for k, v in flags.items())


def _timing_values(result: dict) -> dict:
    s = result["timing"]["stats"]
    return {"mean_ms": s["mean_ms"], "std_ms": s["std_ms"], "median_ms": s["median_ms"], "p90_ms": s["p90_ms"],
            "fps": s["fps"], "gmacs": result["cost"]["macs"] / 1e9, "params_m": result["cost"]["params"] / 1e6,
            "achieved_tflops": result["achieved_tflops"]}


def _memory_values(result: dict) -> dict:
    return {"static_mib": result["static"]["static_mib"], "tensors_m": result["static"]["elements"] / 1e6,
            "peak_inference_mib": result["peak"]["peak_inference_mib"],  # None: peak RSS could not be reset
            "params_m": result["cost"]["params"] / 1e6}


def _layers_values(result: dict) -> dict:
    return {"units": [(u["label"], u["stats"]["mean_ms"]) for u in result["units"]],
            "whole_mean_ms": result["timing"]["stats"]["mean_ms"], "coverage": result["coverage"]}


VALUES: dict[str, Callable[[dict], dict]] = {
    "timing": _timing_values, "memory": _memory_values, "layers": _layers_values}
NULLABLE = {"peak_inference_mib"}


def _check_numbers(values: dict) -> dict:
    """Reject a non-numeric field now, as a named problem, not later as a crash while printing."""
    for key, value in values.items():
        for x in ([ms for _, ms in value] if key == "units" else [value]):
            if x is None and key in NULLABLE:
                continue
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise TypeError(f"{key} is {x!r}, not a number")
    return values


def _facts(rec: dict) -> dict:
    spec, env, result = rec["spec"], rec["env"], rec["result"]
    facts = {"software": _software(env), "host": env["host_cpu"], "mode": spec["mode"], "flags": _flags(result)}
    if "timing" in result:
        t = result["timing"]
        facts.update(clock=t["clock"], warmup=str(t["warmup"]), iters=str(t["iters"]))
    if "peak" in result:
        facts["peak_method"] = result["peak"]["method"]
    return facts


def to_row(rec: dict) -> Row | None:
    """The record as a Row; None when it is not a default-mode table record.
    Raises KeyError/TypeError/ValueError/UserError when a needed field is missing or bad."""
    if rec["kind"] not in KINDS or not is_default_mode(rec):
        return None
    registry.get(rec["spec"]["model"])  # an unknown model name is a malformed record here
    path = Path(rec["_path"])
    return Row(
        kind=rec["kind"], tag=path.parent.parent.name, model=rec["spec"]["model"],
        preset=rec["spec"]["input"]["name"], date=_utc(rec["env"]["date"]), path=str(path),
        device_name=rec["env"]["device_name"], device_type=rec["env"]["device_type"],
        values=_check_numbers(VALUES[rec["kind"]](rec["result"])), facts=_facts(rec),
    )


def _problem(rec: dict, exc: Exception) -> str:
    what = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
    return f"{rec.get('_path', '?')}: malformed ({what})"


@dataclass(frozen=True)
class Device:
    tag: str
    name: str
    type: str  # cuda | cpu
    short: str  # column label


def _short_name(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'H100 80GB HBM3';
    'Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz' -> 'Intel Xeon Gold 5218'."""
    for noise in ("NVIDIA ", "GeForce ", "(R)", "(TM)"):
        name = name.replace(noise, "")
    return " ".join(name.split(" CPU @")[0].split())


@dataclass
class Results:
    rows: dict[tuple[str, str, str, str], Row]  # newest row per (kind, tag, model, preset)
    problems: list[str]
    modes: dict[tuple[str, str, str, str], dict] = field(default_factory=dict)  # (tag, model, preset, variant)
    train_recs: list[dict] = field(default_factory=list)  # training-step and layer-set records (seed 004)

    def get(self, kind: str, tag: str, model: str, preset: str) -> Row | None:
        return self.rows.get((kind, tag, model, preset))

    def of(self, kind: str, tag: str | None = None) -> list[Row]:
        """Rows of one kind (and device), in table order: model, then preset."""
        rows = [r for r in self.rows.values() if r.kind == kind and (tag is None or r.tag == tag)]
        return sorted(rows, key=lambda r: (MODEL_ORDER.index(r.model), list(PRESETS).index(r.preset)))

    @property
    def devices(self) -> list[Device]:
        """Every device with a row; GPUs first. Name/type from the device's newest row."""
        newest: dict[str, Row] = {}
        for r in self.rows.values():
            if r.tag not in newest or r.date > newest[r.tag].date:
                newest[r.tag] = r
        shorts = {t: _short_name(r.device_name) for t, r in newest.items()}
        # Two folders of the same model of device (e.g. --tag per machine): label them by folder.
        label = {t: s if list(shorts.values()).count(s) == 1 else f"{s} ({t})" for t, s in shorts.items()}
        devs = [Device(t, r.device_name, r.device_type, label[t]) for t, r in newest.items()]
        return sorted(devs, key=lambda d: (d.type != "cuda", d.tag))

    def devices_with(self, kind: str) -> list[Device]:
        return [d for d in self.devices if self.of(kind, d.tag)]

    def models(self) -> list[str]:
        """The seeds' six backbones always; other models only when measured."""
        seen = {r.model for r in self.rows.values()}
        return [m for m in MODEL_ORDER if m in registry.BACKBONES or m in seen]


def collect(results: Path) -> Results:
    """Load, validate and de-duplicate: the newest measurement (env date) wins."""
    recs, problems = records.load_records(results)
    newest: dict[tuple[str, str, str, str], Row] = {}
    modes: dict[tuple[str, str, str, str], dict] = {}
    train_recs = [rec for rec in recs if rec.get("kind") in ("train-timing", "layer-bench")]
    for rec in recs:
        try:
            _collect_mode(rec, modes)
            row = to_row(rec)
        except (KeyError, TypeError, ValueError, AttributeError, UserError) as exc:
            problems.append(_problem(rec, exc))
            continue
        if row is None:
            continue
        old = newest.get(row.key)
        # Path breaks a tie in date so the choice never depends on file-system order.
        if old is None or (row.date, row.path) > (old.date, old.path):
            newest[row.key] = row
    for rec in recs:  # a search's brief look at each mode, where no full measurement of that mode is newer
        try:
            _collect_candidates(rec, modes)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(_problem(rec, exc))
    return Results(newest, problems, modes, train_recs)


def _collect_mode(rec: dict, modes: dict) -> None:
    """Whole-model timings of every execution mode (the default one included) at
    batch 1 on the presets, newest per (device, model, preset, mode)."""
    spec = rec["spec"]
    if rec["kind"] != "timing" or spec["input"]["batch"] != 1 or spec["input"]["name"] not in PRESETS:
        return
    r = rec["result"]
    entry = {"mode": spec["mode"], "median_ms": float(r["timing"]["stats"]["median_ms"]),
             "fps": float(r["timing"]["stats"]["fps"]), "tflops": r.get("achieved_tflops"),
             "of_peak": r.get("fraction_of_peak"), "fastest": bool(r.get("fastest")),
             "date": _utc(rec["env"]["date"]), "device_name": rec["env"]["device_name"]}
    key = (Path(rec["_path"]).parent.parent.name, spec["model"], spec["input"]["name"], spec["variant"])
    if key not in modes or entry["date"] > modes[key]["date"]:
        modes[key] = entry


def _collect_candidates(rec: dict, modes: dict) -> None:
    spec, r = rec["spec"], rec["result"]
    if rec["kind"] != "timing" or not r.get("fastest") or spec["input"]["batch"] != 1 \
            or spec["input"]["name"] not in PRESETS:
        return
    date = _utc(rec["env"]["date"])
    for c in r["fastest"]["candidates"]:
        if "median_ms" not in c:
            continue
        key = (Path(rec["_path"]).parent.parent.name, spec["model"], spec["input"]["name"], c["variant"])
        if key in modes and modes[key]["date"] >= date:
            continue
        modes[key] = {"mode": c["mode"], "median_ms": float(c["median_ms"]),
                      "fps": float(c["timing"]["stats"]["fps"]), "tflops": c.get("achieved_tflops"),
                      "of_peak": c.get("fraction_of_peak"), "fastest": False, "search": c["timing"]["iters"],
                      "date": date, "device_name": rec["env"]["device_name"]}


def modes_table(res: Results, tag: str) -> str:
    """One row per model, preset and execution mode measured on this device."""
    # Only the model/inputs measured in more than the default mode.
    varied = {(k[1], k[2]) for k in res.modes if k[0] == tag and k[3]}
    keys = sorted((k for k in res.modes if k[0] == tag and (k[1], k[2]) in varied),
                  key=lambda k: (MODEL_ORDER.index(k[1]), list(PRESETS).index(k[2]), res.modes[k]["median_ms"]))
    headers = ["Model", "Input", "Mode", "Median (ms)", "FPS", "Achieved TFLOP/s", "Of measured peak", "Measured"]
    rows = []
    for k in keys:
        e = res.modes[k]
        mode = e["mode"] + (" (picked by --mode fastest)" if e["fastest"] else "") \
            + (f" (search: {e['search']} iterations)" if e.get("search") else "")
        rows.append([_display(k[1]), k[2], mode, _num(e["median_ms"], ".3f"), _num(e["fps"], ".2f"),
                     _num(e["tflops"], ".2f"), MISSING if e["of_peak"] is None else f"{e['of_peak']:.1%}",
                     e["date"].strftime("%Y-%m-%d")])
    return md_table(headers, rows, numeric_from=3)


# --------------------------------------------------------------------------- formatting


def _num(value: float | None, fmt: str) -> str:
    """The only place numbers are rounded."""
    return MISSING if value is None else format(value, fmt)


def md_table(headers: list[str], rows: list[list[str]], numeric_from: int) -> str:
    """Markdown table, columns padded for a readable source; columns from
    ``numeric_from`` on are right-aligned."""
    widths = [max(len(h), 3, *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i >= numeric_from else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = ["-" * (w - 1) + ":" if i >= numeric_from else "-" * w for i, w in enumerate(widths)]
    return "\n".join([line(headers), "|" + "|".join(f" {r} " for r in rule) + "|", *map(line, rows)]) + "\n"


def _display(model: str) -> str:
    return f"**{registry.get(model).display}**"


def _preset_title(preset: str) -> str:
    h, w = INPUT_SIZES[preset]
    return f"{PRESETS[preset]} (1,3,{h},{w})"


def _distinct(values: list[str]) -> str:
    return ", ".join(sorted(set(values)))


def _dates(rows: list[Row]) -> str:
    first, last = min(r.day for r in rows), max(r.day for r in rows)
    return f"{first} (UTC)" if first == last else f"{first} to {last} (UTC)"


@dataclass(frozen=True)
class Col:
    title: str  # units in the name
    key: str  # Row.values key
    fmt: str


# The seeds' columns, then this project's additions.
LATENCY_COLS = [
    Col("Inference Time (ms)", "mean_ms", ".3f"), Col("Std (ms)", "std_ms", ".3f"), Col("FPS", "fps", ".2f"),
    Col("Median (ms)", "median_ms", ".3f"), Col("P90 (ms)", "p90_ms", ".3f"), Col("GMACs", "gmacs", ".2f"),
    Col("Achieved TFLOP/s", "achieved_tflops", ".3f"),
]
MEMORY_COLS = [
    Col("Static (MiB)", "static_mib", ".2f"), Col("Peak inference (MiB)", "peak_inference_mib", ".2f"),
    Col("# Params (M)", "params_m", ".3f"), Col("# Tensors (M)", "tensors_m", ".3f"),
]
IDENTITY_HEADERS = ["Model", PRESETS["cityscapes"], PRESETS["pascal"], "BasicBlock", "Bottleneck"]


def _identity(row: Row) -> list[str]:
    """The seeds' check-mark columns: which task, which residual block."""
    block = registry.get(row.model).block
    mark = lambda cond: CHECK if cond else ""  # noqa: E731
    return [_display(row.model), mark(row.preset == "cityscapes"), mark(row.preset == "pascal"),
            mark(block == "BasicBlock"), mark(block == "Bottleneck")]


def _block_note(rows: list[Row]) -> str:
    """Name the block of models that fit neither check-mark column."""
    others = {r.model: registry.get(r.model).block for r in rows
              if registry.get(r.model).block not in ("BasicBlock", "Bottleneck")}
    if not others:
        return ""
    names = "; ".join(f"{registry.get(m).display}: {b}" for m, b in others.items())
    return f"\nBlocks of the other models: {names}.\n"


# --------------------------------------------------------------------------- tables


def device_header(dev: Device, rows: list[Row]) -> str:
    """What a reader needs to trust the numbers: device, software, mode, protocol, dates."""
    facts = lambda key: [r.facts[key] for r in rows if r.facts.get(key)]  # noqa: E731
    lines = [f"- Device: {dev.name} (`{dev.tag}`)",
             f"- Software: {_distinct(facts('software'))}"]
    if dev.type == "cuda":
        lines.append(f"- Host CPU: {_distinct(facts('host'))}")
    mode = f"- Precision/mode: {_distinct(facts('mode'))}"
    if facts("flags"):
        mode += f"; backend flags: {' / '.join(sorted(set(facts('flags'))))}"
    lines.append(mode)
    if facts("iters"):
        lines.append(f"- Protocol: batch 1, clock {_distinct(facts('clock'))}, warm-up {_distinct(facts('warmup'))} "
                     f"iterations, timed iterations {_distinct(facts('iters'))}")
    if facts("peak_method"):
        lines.append(f"- Peak inference memory: {_distinct(facts('peak_method'))}")
    lines.append(f"- Measured: {_dates(rows)}")
    return "\n".join(lines) + "\n"


def latency_table(res: Results, dev: Device) -> str:
    """The seeds' per-device latency table (seed 001), plus median, P90, GMACs, TFLOP/s."""
    rows = res.of("timing", dev.tag)
    body = [_identity(r) + [_num(r.values[c.key], c.fmt) for c in LATENCY_COLS] + [r.day] for r in rows]
    headers = IDENTITY_HEADERS + [c.title for c in LATENCY_COLS] + ["Measured"]
    return md_table(headers, body, numeric_from=len(IDENTITY_HEADERS)) + _block_note(rows)


def memory_table(res: Results, dev: Device) -> str:
    """The seeds' memory report table (seed 001), with static and peak memory apart."""
    rows = res.of("memory", dev.tag)
    body = [_identity(r) + [_num(r.values[c.key], c.fmt) for c in MEMORY_COLS] + [r.day] for r in rows]
    headers = IDENTITY_HEADERS + [c.title for c in MEMORY_COLS] + ["Measured"]
    return md_table(headers, body, numeric_from=len(IDENTITY_HEADERS)) + _block_note(rows)


def _static_source(res: Results, model: str, preset: str) -> Row | None:
    """Static memory (weights + buffers + input) barely depends on the device:
    take it from the first device (GPUs first) with a memory record."""
    for dev in res.devices_with("memory"):
        if (row := res.get("memory", dev.tag, model, preset)) is not None:
            return row
    return None


def _params_m(res: Results, model: str, preset: str) -> float | None:
    for row in res.rows.values():
        if row.model == model and row.preset == preset and "params_m" in row.values:
            return row.values["params_m"]
    return None


def summary_table(res: Results, preset: str) -> str:
    """Seed 000's summary: one row per backbone, every device side by side."""
    timed, mem = res.devices_with("timing"), res.devices_with("memory")
    headers = (["Model"] + [f"Median (ms) [{d.short}]" for d in timed] + [f"FPS [{d.short}]" for d in timed]
               + ["Static (MiB)"] + [f"Peak inference (MiB) [{d.short}]" for d in mem] + ["# Params (M)"])
    body = []
    for model in res.models():
        t = [res.get("timing", d.tag, model, preset) for d in timed]
        m = [res.get("memory", d.tag, model, preset) for d in mem]
        static = _static_source(res, model, preset)
        body.append([_display(model)]
                    + [_num(r.values["median_ms"] if r else None, ".3f") for r in t]
                    + [_num(r.values["fps"] if r else None, ".2f") for r in t]
                    + [_num(static.values["static_mib"] if static else None, ".2f")]
                    + [_num(r.values["peak_inference_mib"] if r else None, ".2f") for r in m]
                    + [_num(_params_m(res, model, preset), ".3f")])
    return md_table(headers, body, numeric_from=1)


@dataclass(frozen=True)
class Seeds:
    """The seeds' published figures (results/reference/seeds.json)."""

    devices: dict[str, dict]
    latency: dict[tuple[str, str, str], dict]  # (seed device, model, preset) -> row
    memory: dict[tuple[str, str], dict]  # (model, preset) -> row
    sources: dict[str, dict]
    seed004: dict | None = None  # seed 004's training-step and layer figures, as stored

    @classmethod
    def load(cls, path: Path) -> "Seeds":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read the seeds' reference figures {str(path)!r}: {exc}") from None
        return cls(data["devices"], {(r["device"], r["model"], r["preset"]): r for r in data["latency"]},
                   {(r["model"], r["preset"]): r for r in data["memory"]}, data["sources"], data.get("seed004"))


def comparison_table(res: Results, seeds: Seeds, preset: str) -> str:
    """Seeds' mean latency beside ours, and speed-ups (seed mean / our mean) of
    each of our devices over each seed device of the same type (GPU vs GPU, CPU vs CPU)."""
    ours = res.devices_with("timing")
    pairs = [(d, sid) for d in ours for sid, s in seeds.devices.items() if s["type"] == d.type]
    headers = (["Model"] + [f"Mean (ms) [{s['short']}, seed]" for s in seeds.devices.values()]
               + [f"Mean (ms) [{d.short}]" for d in ours]
               + [f"Speed-up (x) [{d.short} vs {seeds.devices[sid]['short']}]" for d, sid in pairs])
    body = []
    for model in registry.BACKBONES:
        seed_ms = {sid: (seeds.latency.get((sid, model, preset)) or {}).get("mean_ms") for sid in seeds.devices}
        our_ms = {d.tag: r.values["mean_ms"] if (r := res.get("timing", d.tag, model, preset)) else None
                  for d in ours}
        ratios = [seed_ms[sid] / our_ms[d.tag] if seed_ms[sid] and our_ms[d.tag] else None for d, sid in pairs]
        body.append([_display(model)] + [_num(v, ".3f") for v in seed_ms.values()]
                    + [_num(v, ".3f") for v in our_ms.values()] + [_num(v, ".2f") for v in ratios])
    return md_table(headers, body, numeric_from=1)


def seed_memory_table(res: Results, seeds: Seeds, preset: str) -> str:
    """The seeds' memlab figures beside our corrected static memory: the same
    quantity (weights + buffers + input), so they should agree closely."""
    headers = ["Model", "Allocated (MiB) [seed]", "Static (MiB) [ours]", "# Tensors (M) [seed]",
               "# Tensors (M) [ours]", "# Params (M) [seed]", "# Params (M) [ours]"]
    body = []
    for model in registry.BACKBONES:
        seed = seeds.memory.get((model, preset)) or {}
        ours = _static_source(res, model, preset)
        v = ours.values if ours else {}
        body.append([_display(model), _num(seed.get("allocated_mib"), ".2f"), _num(v.get("static_mib"), ".2f"),
                     _num(seed.get("tensors_m"), ".3f"), _num(v.get("tensors_m"), ".3f"),
                     _num(seed.get("params_m"), ".3f"), _num(_params_m(res, model, preset), ".3f")])
    return md_table(headers, body, numeric_from=1)


def seed_sources(seeds: Seeds) -> str:
    lines = [f"- `{name}`: {s['document']}" for name, s in sorted(seeds.sources.items())]
    devs = "; ".join(f"{s['short']} = {s['name']}" for s in seeds.devices.values())
    return ("Seed figures as published, copied into `results/reference/seeds.json` from the seed documents:\n\n"
            + "\n".join(lines) + f"\n\nSeed devices: {devs}.\n")


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Figure:
    tag: str  # device
    name: str  # file name under <results>/figures/
    title: str  # link text
    draw: Callable[[Any], None]  # draws on a matplotlib Figure


# Latency scatter plots: (Row.values key, axis label, link text, file-name part).
SCATTERS = (("gmacs", "GMACs", "latency vs GMACs", "gmacs"),
            ("params_m", "parameters (M)", "latency vs parameters", "params"))


def figure_plan(res: Results) -> list[Figure]:
    """Every figure the records allow; the markdown links exactly these."""
    plan = []
    for dev in res.devices_with("timing"):
        for preset in PRESETS:
            rows = [r for r in res.of("timing", dev.tag) if r.preset == preset]
            if not rows:
                continue
            for key, axis, link, slug in SCATTERS:
                plan.append(Figure(dev.tag, f"latency_vs_{slug}_{dev.tag}_{preset}.png", f"{link}, {PRESETS[preset]}",
                                   _scatter(rows, key, axis, f"{dev.name}, {_preset_title(preset)}")))
    for dev in res.devices_with("layers"):
        rows = [r for r in res.of("layers", dev.tag) if r.preset == "cityscapes"]
        if rows:
            plan.append(Figure(dev.tag, f"layers_{dev.tag}_cityscapes.png", "per-unit breakdown, Cityscapes",
                               _breakdown(rows, f"Per-unit mean latency, {dev.name}, {_preset_title('cityscapes')}")))
    for tag in sorted({k[0] for k in res.modes if k[3]}):
        for preset in PRESETS:
            entries = {k: e for k, e in res.modes.items() if k[0] == tag and k[2] == preset}
            if len({k[3] for k in entries}) > 1:
                name = next(iter(entries.values()))["device_name"]
                plan.append(Figure(tag, f"modes_{tag}_{preset}.png", f"latency by execution mode, {PRESETS[preset]}",
                                   _modes_bars(entries, f"Median latency by mode, {name}, {_preset_title(preset)}")))
    return plan


def _modes_bars(entries: dict, title: str) -> Callable[[Any], None]:
    """Grouped bars: one group per model, one bar per execution mode (log scale)."""

    def draw(fig: Any) -> None:
        from matplotlib import colormaps

        ax = fig.add_subplot()
        model_names = [m for m in MODEL_ORDER if any(k[1] == m for k in entries)]
        variants = sorted({k[3] for k in entries},
                          key=lambda v: -max(e["median_ms"] for k, e in entries.items() if k[3] == v))
        width = 0.8 / len(variants)
        cmap = colormaps["tab10"]
        for j, v in enumerate(variants):
            xs, ys = [], []
            for i, m in enumerate(model_names):
                e = next((e for k, e in entries.items() if k[1] == m and k[3] == v), None)
                if e:
                    xs.append(i + (j - (len(variants) - 1) / 2) * width)
                    ys.append(e["median_ms"])
            label = next(e["mode"] for k, e in entries.items() if k[3] == v)
            ax.bar(xs, ys, width=width, color=cmap(j % 10), label=label, zorder=3)
        ax.set_xticks(range(len(model_names)), [registry.get(m).display for m in model_names], fontsize=9)
        ax.set_yscale("log")
        ax.set_ylim(top=8 * max(e["median_ms"] for e in entries.values()))  # room for the legend
        ax.set_ylabel("median latency (ms, log scale)")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left", ncols=2)

    return draw


def _scatter(rows: list[Row], key: str, label: str, title: str) -> Callable[[Any], None]:
    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        xs, ys = [r.values[key] for r in rows], [r.values["median_ms"] for r in rows]
        ax.scatter(xs, ys, color="tab:blue", zorder=3)
        for r, x, y in zip(rows, xs, ys):
            ax.annotate(registry.get(r.model).display, (x, y), xytext=(5, 4), textcoords="offset points", fontsize=9)
        ax.set_xlabel(label)
        ax.set_ylabel("median latency (ms)")
        ax.set_title(title, fontsize=10)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.margins(x=0.15, y=0.15)
        ax.grid(alpha=0.3)

    return draw


def _breakdown(rows: list[Row], title: str) -> Callable[[Any], None]:
    """One horizontal bar per model, stacked by unit in execution order. Models
    have different units, so colour encodes position in the network (input to
    output), and segments large enough are labelled with their unit."""

    def draw(fig: Any) -> None:
        from matplotlib import cm, colormaps, colors

        ax = fig.add_subplot()
        cmap = colormaps["viridis"]
        # A label fits when its segment spans a fixed share of the widest bar.
        min_label_ms = 0.07 * max(sum(ms for _, ms in r.values["units"]) for r in rows)
        for y, r in enumerate(rows):
            units, left = r.values["units"], 0.0
            for i, (label, ms) in enumerate(units):
                ax.barh(y, ms, left=left, color=cmap(i / max(len(units) - 1, 1)), edgecolor="white", linewidth=0.4)
                if ms >= min_label_ms:
                    ax.text(left + ms / 2, y, label, ha="center", va="center", fontsize=7, color="white")
                left += ms
            ax.plot([r.values["whole_mean_ms"]] * 2, [y - 0.45, y + 0.45], color="black", linewidth=1.5)
        ax.set_yticks(range(len(rows)), [registry.get(r.model).display for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel("mean latency (ms); black line: whole model without hooks")
        ax.set_title(title, fontsize=10)
        fig.colorbar(cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap=cmap), ax=ax,
                     label="unit position (0 = first, 1 = last)")

    return draw


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    records.write_atomic(path, text)


def _write_png_atomic(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    path.parent.mkdir(parents=True, exist_ok=True)
    records.write_atomic(path, buf.getvalue())


def write_figures(plan: list[Figure], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on the measuring machines
    from matplotlib.figure import Figure as MplFigure

    for f in plan:
        fig = MplFigure(figsize=(8, 5), layout="constrained")
        f.draw(fig)
        _write_png_atomic(fig, folder / f.name)


def figures_section(res: Results, plan: list[Figure], prefix: str) -> str:
    if not plan:
        return "No figures: no default-mode timing or per-unit records.\n"
    by_dev: dict[str, list[Figure]] = {}
    for f in plan:
        by_dev.setdefault(f.tag, []).append(f)
    names = {d.tag: d.name for d in res.devices}
    return "\n".join(f"- {names[tag]}: " + ", ".join(f"[{f.title}]({prefix}/{f.name})" for f in figs)
                     for tag, figs in by_dev.items()) + "\n"


# --------------------------------------------------------------------------- document


def render(res: Results, seeds: Seeds, figure_prefix: str) -> str:
    """All tables as one markdown section; ``figure_prefix`` is the figures
    folder relative to the document that will hold the section."""
    out = ["_Generated by `python -m common.render.tables` from `results/records/` (default mode: eager fp32, "
           "batch 1, 'cityscapes' and 'pascal' presets; the newest record of each model/preset/device). "
           "Do not edit by hand._\n"]
    out.append("### Summary\n\nMedian latency per device, FPS = 1000 / mean latency (batch 1). Static memory = "
               "weights + buffers + input (pytorch-memlab, corrected); peak inference = memory one inference "
               "adds on top (GPU: allocator peak; CPU: peak RSS growth). MiB = 2^20 bytes.\n")
    for preset in PRESETS:
        out.append(f"#### {_preset_title(preset)}\n\n{summary_table(res, preset)}")
    out.append("### Comparison with the seeds' published figures\n\nMean latency (the seeds' 'Inference Time'). "
               "Speed-up = seed mean / our mean, for every pair of the same kind (GPU vs GPU, CPU vs CPU). "
               "The ratios compare whole setups (hardware, software, and the seeds' missing `eval()`), "
               "not chips alone.\n\n" + seed_sources(seeds))
    for preset in PRESETS:
        out.append(f"#### {_preset_title(preset)}\n\n{comparison_table(res, seeds, preset)}")
    for preset in PRESETS:
        out.append(f"#### Static memory vs the seeds, {_preset_title(preset)}\n\n"
                   f"{seed_memory_table(res, seeds, preset)}")
    out.append("### Inference time per device\n\nInference Time = mean; FPS = 1000 / mean; "
               "Achieved TFLOP/s = FLOPs (2 x MACs) / median latency.\n")
    for dev in res.devices_with("timing"):
        out.append(f"#### {dev.name}\n\n{device_header(dev, res.of('timing', dev.tag))}\n{latency_table(res, dev)}")
    out.append("### Memory per device\n\nMiB = 2^20 bytes. # Tensors = elements of all tensors alive before "
               "inference (weights, buffers, input).\n")
    for dev in res.devices_with("memory"):
        out.append(f"#### {dev.name}\n\n{device_header(dev, res.of('memory', dev.tag))}\n{memory_table(res, dev)}")
    mode_devices = sorted({k[0] for k, e in res.modes.items() if k[3]})  # devices with a non-default mode
    if mode_devices:
        out.append("### Execution modes\n\nWhole-model latency per execution mode (precision, memory format, "
                   "CUDA graph, torch.compile), fastest first. Of measured peak = achieved TFLOP/s / the "
                   "device's matrix rate for that precision, measured by `python -m common.measure.peak`.\n")
        for tag in mode_devices:
            name = next(e["device_name"] for k, e in res.modes.items() if k[0] == tag)
            out.append(f"#### {name}\n\n{modes_table(res, tag)}")
    from common.render import train as tables_train  # it builds on this module's helpers

    train_section = tables_train.section(res.train_recs, seeds.seed004)
    if train_section:
        out.append(train_section)
    out.append("### Figures\n\n" + figures_section(res, figure_plan(res), figure_prefix))
    return "\n".join(out)


def tables_document(res: Results, seeds: Seeds) -> str:
    return "# Results tables\n\n" + render(res, seeds, "figures")


def replace_section(readme: str, section: str, name: str = "README.md") -> str:
    """README with the text between the markers replaced; every other byte kept."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        raise UserError(f"{name} needs exactly one '{BEGIN}' line followed by one '{END}' line")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{section}{END}{tail}"


def _read(path: Path) -> str:
    """Exact text: no newline translation, so untouched README bytes stay identical."""
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=records.RESULTS, metavar="DIR",
                   help="folder holding records/; tables.md and figures/ are written here (default: results/)")
    p.add_argument("--readme", type=Path, default=records.ROOT / "README.md", metavar="PATH",
                   help="README whose marked section is replaced (default: the repository's README.md)")
    p.add_argument("--seeds", type=Path, default=SEEDS, metavar="PATH",
                   help="the seeds' published figures (default: results/reference/seeds.json)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when README.md or tables.md are not up to date")
    args = p.parse_args(argv)
    try:
        if not (args.results / "records").is_dir():
            raise UserError(f"no records folder under {str(args.results)!r}; run the profilers first")
        res = collect(args.results)
        for problem in res.problems:
            sys.stderr.write(f"{PROG}: skipped {problem}\n")
        seeds = Seeds.load(args.seeds)
        figures = args.results / "figures"
        tables_md = tables_document(res, seeds)
        readme = replace_section(_read(args.readme), render(res, seeds, _relative(figures, args.readme.parent)),
                                 str(args.readme))
        targets = {args.readme: readme, args.results / "tables.md": tables_md}
        if args.check:
            stale = [str(path) for path, text in targets.items() if not path.exists() or _read(path) != text]
            for path in stale:
                sys.stderr.write(f"{PROG}: {path} is not up to date; run python -m {PROG}\n")
            return 1 if stale else 0
        write_figures(figure_plan(res), figures)
        for path, text in targets.items():
            write_text(path, text)
    except UserError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
