"""Compare the timing medians of two sweeps' outputs, request by request (e.g. the
same list swept on GPU 0 and on GPU 1 into two folders, or swept and run alone).

    python -m common compare DIR_A DIR_B [--within PCT]

Prints one row per request both hold (its stem): median ms of each, the spread of
each (IQR as a share of its median: the noise a difference is read against), the
device's kernel time of each where the run profiled it (what the GPU did, whatever
the host), whether the GPU waited on the host (launch-bound), the GPU each ran on,
the difference, and whether the two requests are the same (model, input, mode and
protocol: every request field but the device string and the tag). Exit 1 when a
difference exceeds --within or two requests differ (their medians do not measure
the same thing). ``results/sweeps.md`` renders the comparisons kept under
``results/evidence`` from the same rows (``pairs``).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from common import records
from common.parsers import tools

NOT_PROTOCOL = ("device", "tag")  # 'cuda' vs 'cuda:0' names one GPU; the tag is the folder


def _pct(num: float | None, den: float | None) -> float:
    return 100 * num / den if num is not None and den else math.nan


def medians(root: Path) -> dict[tuple[str, str], dict]:
    """Per (device tag, record stem): the current timing record's median, spread, kernel time and request."""
    recs, _ = records.load_records(Path(root) / "results")
    out = {}
    for rec in recs:
        timing = rec["result"].get("timing") if rec["kind"] == "timing" else None
        if timing and not rec.get("superseded"):
            stats, kernels = timing["stats"], rec["result"].get("kernels") or {}
            out[(rec["device_tag"], Path(rec["_path"]).stem)] = {
                "median_ms": stats["median_ms"], "iqr_pct": _pct(stats.get("iqr_ms"), stats["median_ms"]),
                "kernel_ms": kernels.get("kernel_ms"), "launch_bound": kernels.get("launch_bound"),
                "busy": kernels.get("busy"), "gpu": rec["env"].get("gpu_index"), "host": rec["env"].get("host"),
                "uuid": rec["env"].get("gpu_uuid"),
                "request": {k: v for k, v in rec["request"].items() if k not in NOT_PROTOCOL}}
    return out


def differing(qa: dict, qb: dict) -> list[str]:
    """The request fields in which two records differ."""
    return sorted(k for k in set(qa) | set(qb) if qa.get(k) != qb.get(k))


def pairs(a_root: Path, b_root: Path) -> list[dict]:
    """One row per request both folders hold: A and B's facts, the differences in %, the differing fields."""
    a, b = medians(a_root), medians(b_root)
    rows = []
    for key in sorted(set(a) & set(b)):
        ra, rb = a[key], b[key]
        rows.append({"tag": key[0], "stem": key[1], "a": ra, "b": rb,
                     "input": ra["request"].get("input", {}).get("name") or "?",
                     "diff_pct": _pct(rb["median_ms"] - ra["median_ms"], ra["median_ms"]),
                     "kernel_diff_pct": _pct(rb["kernel_ms"] - ra["kernel_ms"], ra["kernel_ms"])
                     if rb["kernel_ms"] is not None and ra["kernel_ms"] is not None else math.nan,
                     "launch_bound": bool(ra["launch_bound"] or rb["launch_bound"]),
                     "fields": differing(ra["request"], rb["request"])})
    return rows


def largest(values: list[float]) -> float:
    """The largest absolute difference (nan-free; 0 for none)."""
    return max((abs(v) for v in values if not math.isnan(v)), default=0.0)


def fmt(v: float | None, spec: str, unit: str = "") -> str:
    """A value as ``spec`` with its unit; '-' where it was not measured (None, nan)."""
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec) + unit


def gpu(r: dict) -> str:
    """host:index and the UUID's first hex digits: two machines' GPU 0 are told apart."""
    uuid = (r.get("uuid") or "").removeprefix("GPU-")[:8]
    return f"{r['host']}:{r['gpu']}" + (f"/{uuid}" if uuid else "")


def gpus(ra: dict, rb: dict) -> str:
    return f"{gpu(ra)} vs {gpu(rb)}"


def main(argv: list[str] | None = None) -> int:
    p = tools.compare(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    rows = pairs(args.a, args.b)
    if not rows:
        sys.stderr.write(f"{p.prog}: error: no timing record in both {args.a} and {args.b}\n")
        return 2
    print(f"{'device/request':<42}{'A ms':>9}{'B ms':>9}{'B/A-1':>9}{'IQR A':>8}{'IQR B':>8}{'kern B/A-1':>11}"
          f"  {'bound':<7}{'GPUs':<36}request")
    same = [r for r in rows if not r["fields"]]
    for r in rows:
        ra, rb = r["a"], r["b"]
        print(f"{(r['tag'] + '/' + r['stem'])[:41]:<42}{ra['median_ms']:>9.3f}{rb['median_ms']:>9.3f}"
              f"{fmt(r['diff_pct'], '+.2f', '%'):>9}{fmt(ra['iqr_pct'], '.2f', '%'):>8}"
              f"{fmt(rb['iqr_pct'], '.2f', '%'):>8}{fmt(r['kernel_diff_pct'], '+.2f', '%'):>11}  {'launch' if r['launch_bound'] else 'device':<7}"
              f"{gpus(ra, rb):<36}{'differs: ' + ', '.join(r['fields']) if r['fields'] else 'same'}")
    worst = largest([r["diff_pct"] for r in same])
    print(f"{len(rows)} request(s), {len(same)} the same request in both; largest difference among those "
          f"{worst:.2f}% (allowed {args.within:g}%)")
    return 0 if worst <= args.within and len(same) == len(rows) else 1

