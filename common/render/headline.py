"""The headline latency tables, one per preset, from the records and the seeds'
published figures: the compact one README shows (rows: model; columns: median ms
per device, then the seeds' mean ms) and the full rows (mean / median / std, spread,
FPS, memory, parameters, flags) that ``results/latency.md`` shows."""
from __future__ import annotations

from common import catalogue
from common.derive import LAUNCH_BOUND_BUSY, UNSTABLE_SPREAD
from common.render import tables
from common.render.markdown import MISSING, display, md_table, num
from common.render.select import Results

FULL_NOTE = ("Mean, median and std of the latency at batch 1, FPS = 1000 / mean (the seeds' FPS, likewise). Static "
             "memory = weights + buffers + input; peak inference = what one inference adds on top (GPU: allocator "
             "peak; CPU: peak RSS growth); MiB = 2^20 bytes. The seeds' rows are their published figures "
             "(`results/reference/seeds.json`; they published no median and no peak); their static memory is "
             "memlab's 'allocated'. Spread = (max - min) / median of the medians of the repeated runs (`--repeats`; "
             "- for one run). Flags: NOISY, interquartile range above 10% of the median; unstable, spread above "
             f"{UNSTABLE_SPREAD:.0%}; launch-bound, GPU busy below {LAUNCH_BOUND_BUSY:.0%} of the wall time; reduced "
             "protocol, below the stated protocol.\n")
COMPACT_NOTE = ("Median latency (ms) at batch 1 per device we measured, then the seeds' published mean (ms; they "
                "published no median). Every column of these rows (mean, std, spread, FPS, memory, parameters, "
                "flags): results/latency.md.\n")


def _backbones(res: Results) -> list[str]:
    """The seeds' six backbones: the other catalogue models are in results/latency.md."""
    return [m for m in res.models() if m in catalogue.BACKBONES]


def compact_table(res: Results, seeds: tables.Seeds, preset: str) -> str:
    """One row per model: the median per device, then the seeds' mean per seed device."""
    timed = res.devices_with("timing")
    seed_ids = [sid for sid in seeds.devices if any(seeds.latency.get((sid, m, preset)) for m in _backbones(res))]
    headers = ["Model", *(f"{d.short}" for d in timed), *(f"{seeds.devices[s]['short']} (seed, mean)" for s in seed_ids)]
    body, used = [], []
    for model in _backbones(res):
        cells = []
        for d in timed:
            t = res.get("timing", d.tag, model, preset)
            used += [t] if t else []
            cell = num(t.values.get("median_ms") if t else None, ".3f")
            cells.append(cell + (" *" if t and (t.superseded or t.reduced) else ""))
        for sid in seed_ids:
            lat = seeds.latency.get((sid, model, preset))
            cells.append(num(lat.get("mean_ms") if lat else None, ".3f"))
        body.append([display(model), *cells])
    marked = [r for r in used if r.superseded or r.reduced]
    note = ("\n\\* superseded or below the stated protocol: see results/latency.md.\n" if marked else "")
    return md_table(headers, body, numeric_from=1) + note


def full_table(res: Results, seeds: tables.Seeds, preset: str) -> str:
    """Every row: per model, each device's figures, then the seeds' rows."""
    headers = ["Model", "Input", "Device", "Mean (ms)", "Median (ms)", "Std (ms)", "Spread", "FPS (from mean)",
               "Static (MiB)", "Peak inference (MiB)", "# Params (M)", "Flag"]
    timed = res.devices_with("timing")
    body, used = [], []
    for model in _backbones(res):
        static = tables.static_source(res, model, preset)
        params = tables.params_m(res, model, preset)
        for d in timed:
            t, m = res.get("timing", d.tag, model, preset), res.get("memory", d.tag, model, preset)
            used += [r for r in (t, m) if r]
            v = t.values if t else {}
            body.append([display(model, any(r and r.superseded for r in (t, m))), preset, d.short,
                         num(v.get("mean_ms"), ".3f"), num(v.get("median_ms"), ".3f"), num(v.get("std_ms"), ".3f"),
                         num(v.get("spread"), ".1%"), num(v.get("fps"), ".2f"),
                         num(static.values["static_mib"] if static else None, ".2f"),
                         num(m.values["peak_inference_mib"] if m else None, ".2f"), num(params, ".3f"),
                         t.flags if t else ""])
        seed_mem = seeds.memory.get((model, preset)) or {}
        for sid, s in seeds.devices.items():
            lat = seeds.latency.get((sid, model, preset))
            if lat is None:
                continue
            body.append([display(model), preset, f"{s['short']} (seed)", num(lat.get("mean_ms"), ".3f"), MISSING,
                         num(lat.get("std_ms"), ".3f"), MISSING, num(lat.get("fps"), ".2f"),
                         num(seed_mem.get("allocated_mib"), ".2f"), MISSING, num(seed_mem.get("params_m"), ".3f"),
                         ""])
    return md_table(headers, body, numeric_from=3) + tables.row_notes(sorted(set(used), key=lambda r: r.path))
