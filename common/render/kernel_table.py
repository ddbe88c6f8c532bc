"""results/kernels.md: which GPU kernels a mode runs, from the records' kernel profiles.

A GPU timing record whose kernel profile names its top kernels
(``result.kernels.top_kernels``: summed device time per kernel name and iteration)
gets a row per mode of its model and input, and a table of its kernels. Where one
model and input has fp16 and bf16 records of the same mode otherwise (memory format,
graph, compile), the page sets their kernel times side by side: the fp16 puzzle (fp16
ran twice as slow as bf16 on Hopper, where both use the same tensor cores).
"""
from __future__ import annotations

from pathlib import Path

from common import records
from common.render.markdown import md_table, num
from common.spec import MODE_FIELDS, mode_name

PAGE = "kernels.md"
NAME_CHARS = 110  # kernel names are C++ signatures; the head names the library routine and tile


def profiled(recs: list[dict]) -> dict[tuple, list[dict]]:
    """(device tag, model, input) -> current timing records with top kernels, by mode name."""
    out: dict[tuple, list[dict]] = {}
    for rec in recs:
        if rec["kind"] != "timing" or rec.get("_history"):
            continue
        if not ((rec["result"].get("kernels") or {}).get("top_kernels")):
            continue
        req = rec["request"]
        out.setdefault((rec["device_tag"], req["model"], req["input"]["name"]), []).append(rec)
    for group in out.values():
        group.sort(key=lambda r: mode_of(r))
    return out


def mode_of(rec: dict) -> str:
    m = records.measured(rec)
    return mode_name({k: m.get(k) for k in MODE_FIELDS})


def wall_ms(rec: dict) -> float:
    r = rec["result"]
    return (r.get("repeats") or {}).get("median_of_medians_ms") or r["timing"]["stats"]["median_ms"]


def short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[:NAME_CHARS - 1] + "…"


def pairs(group: list[dict]) -> list[tuple[dict, dict]]:
    """(fp16 record, bf16 record) of the same mode but for the precision."""
    def rest(rec: dict) -> tuple:
        m = records.measured(rec)
        return tuple(m.get(k) for k in MODE_FIELDS if k != "precision")

    bf16 = {rest(r): r for r in group if records.measured(r)["precision"] == "bf16"}
    return [(r, bf16[rest(r)]) for r in group if records.measured(r)["precision"] == "fp16" and rest(r) in bf16]


def section(key: tuple, group: list[dict]) -> list[str]:
    tag, model, preset = key
    shape = group[0]["request"]["input"]
    lines = [f"## {model}, {preset} (1,3,{shape['height']},{shape['width']}), {tag}", ""]
    rows = []
    for rec in group:
        k = rec["result"]["kernels"]
        top = k["top_kernels"][0]
        rows.append([mode_of(rec), num(wall_ms(rec), ".3f"), num(k.get("kernel_ms"), ".3f"), num(k.get("busy"), ".2f"),
                     num(k.get("kernel_names_per_iter"), ".0f"), f"`{short(top['name'])}` {top['ms_per_iter']:.3f}",
                     f"`{Path(rec['_path']).name}`"])
    lines += [md_table(["mode", "wall median ms", "kernel ms/iter", "busy", "kernels/iter", "top kernel (ms/iter)",
                        "record"], rows, 1), ""]
    for fp16, bf16 in pairs(group):
        a, b = fp16["result"]["kernels"], bf16["result"]["kernels"]
        lines += [f"**fp16 against bf16, {' '.join(mode_of(bf16).replace('bf16', '').split()) or 'eager'}**: wall "
                  f"{wall_ms(fp16) / wall_ms(bf16):.2f}x, kernel time {a['kernel_ms'] / b['kernel_ms']:.2f}x. "
                  "Their five costliest kernels:", ""]
        rows = [[f"`{short(x['name'])}`", num(x["ms_per_iter"], ".3f"), num(x["calls_per_iter"], ".0f"),
                 f"`{short(y['name'])}`", num(y["ms_per_iter"], ".3f"), num(y["calls_per_iter"], ".0f")]
                for x, y in zip(a["top_kernels"][:5], b["top_kernels"][:5])]
        lines += [md_table(["fp16 kernel", "ms/iter", "calls", "bf16 kernel", "ms/iter", "calls"], rows, 1), ""]
    for rec in group:
        k = rec["result"]["kernels"]
        rows = [[f"`{short(x['name'])}`", num(x["ms_per_iter"], ".3f"), num(x["calls_per_iter"], ".1f"),
                 f"{x['ms_per_iter'] / k['kernel_ms']:.0%}" if k.get("kernel_ms") else "-"]
                for x in k["top_kernels"]]
        lines += [f"### {mode_of(rec)}", "", md_table(["kernel", "ms/iter", "calls/iter", "of kernel time"], rows, 1), ""]
    return lines


def outputs(results_dir: Path, recs: list[dict]) -> dict[Path, str]:
    groups = profiled(recs)
    if not groups:
        return {}
    lines = ["# GPU kernels per mode", "",
             "Rendered by `python -m common.render` from the timing records whose kernel profile names its top "
             "kernels (`torch.profiler` with CUDA activity, after the timed loops; per kernel name its summed device "
             "time per profiled iteration, so kernels overlapping on two streams each count in full, while "
             "`kernel ms/iter` is the union). `busy` = kernel time / wall-time median.", ""]
    for key in sorted(groups):
        lines += section(key, groups[key])
    return {results_dir / PAGE: "\n".join(lines).rstrip() + "\n"}
