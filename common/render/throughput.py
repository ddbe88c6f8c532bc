"""The ``.txt`` of a throughput record (kind ``throughput``, written by ``timer.py
--throughput`` and the zoo's throughput slot): images/s at the largest batch that
fits and at the user's batch, eager fp32 and the fastest mode, and the
torch.utils.benchmark cross-check; throughput, never a latency.
"""
from __future__ import annotations

from pathlib import Path

from common import catalogue

def throughput_txt_path(rec: dict, root: Path) -> Path:
    model = rec["request"]["model"]
    family = catalogue.family_of(rec)
    stem = Path(rec["_path"]).stem
    return Path(root) / f"{family}_profiler" / f"{model.replace('/', '__')}_stats" / rec["device_tag"] / \
        "throughput" / f"{stem}.txt"


def search_limit(mode: dict) -> int | None:
    """The largest batch a mode's search could reach: its cap, or without one its ceiling."""
    return mode["search"].get("cap") or mode["search"].get("ceiling")


def throughput_cell(rec: dict | None, name: str) -> str:
    """A table cell: images/s @ batch of the mode ``name`` at its largest batch, '(cap)'
    where the search stopped at its limit; its error, or '-'."""
    if rec is None:
        return "-"
    for m in rec["result"].get("modes", []):
        if m.get("name") == name:
            if m.get("error"):
                return m["error"]
            at = m.get("at_largest") or {}
            ips = at.get("images_per_s")
            limit = search_limit(m)
            capped = " (cap)" if m.get("largest_batch") and limit and m["largest_batch"] >= limit else ""
            return f"{ips:,.0f} @ {at.get('batch')}{capped}" if ips is not None else "-"
    return "-"


def throughput_txt(rec: dict) -> str:
    q, r = rec["request"], rec["result"]
    env = rec.get("env", {})
    text = (f"# Throughput (images/s), eager fp32 and the fastest mode\n"
            f"# model: {q['model']}   input: {q['input']['name']} ({q['input']['height']}x{q['input']['width']}), "
            f"user batch {r['user_batch']}\n"
            f"# device: {env.get('device_name', rec['device_tag'])}   torch {env.get('torch', '?')}\n"
            f"# protocol per batch: {q['warmup']} warm-up + up to {q['iters']} iterations"
            + (f", at most {q['max_seconds']:g} s" if q.get("max_seconds") else "") + "\n"
            f"# date: {env.get('date', '?')}\n"
            "# images/s = 1000 / mean ms x batch. Throughput, not latency: do not compare with the latency files.\n\n")
    for m in r["modes"]:
        text += f"{m['name']}: {m['mode']['mode']}\n"
        cap, ceiling = m["search"].get("cap"), m["search"].get("ceiling")
        limit_batch = search_limit(m)
        capped = m["largest_batch"] is not None and limit_batch is not None and m["largest_batch"] >= limit_batch
        what = (" (the search's cap: it fits, larger batches were not tried)" if capped and cap else
                " (the search's ceiling: it fits, larger batches were not tried)" if capped else "")
        text += f"  largest batch that fits: {m['largest_batch']}{what}\n"
        limit = f"cap {cap}" if cap else f"no cap (doubling until out of memory, ceiling {ceiling})"
        text += f"    search: tried {', '.join(map(str, m['search']['tried']))}; {limit}; {m['search']['method']}\n"
        if m.get("error"):
            text += f"  {m['error']}\n"
            continue
        for key, label in (("at_largest", "at the largest batch"), ("at_user_batch", "at the user batch")):
            at = m.get(key)
            if not at:
                continue
            s = at["timing"]["stats"]
            text += (f"  {label:<22} batch {at['batch']:>5}: {at['images_per_s']:>12,.1f} images/s   "
                     f"mean {s['mean_ms']:.3f} ms  median {s['median_ms']:.3f} ms  std {s['std_ms']:.3f} ms  "
                     f"({at['timing']['iters']} iterations)\n")
            chk = at.get("benchmark_check")
            if chk:
                text += (f"  cross-check: {chk['method']}: {chk['images_per_s']:,.1f} images/s "
                         f"({chk['relative_difference']:+.1%} ours vs it)\n")
    return text
