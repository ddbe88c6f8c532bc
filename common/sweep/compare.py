"""Compare the timing medians of two sweeps' outputs, request by request (e.g. the
same list swept on GPU 0 and on GPU 1 into two folders).

    python -m common.sweep.compare DIR_A DIR_B [--within PCT]

Prints one row per request both hold (its stem): median ms of each, the spread of
each (IQR as a share of its median: the noise a difference is read against), the GPU
each ran on, the difference, and whether the two requests are the same (model,
input, mode and protocol: every request field but the device string and the tag).
Exit 1 when a difference exceeds --within or two requests differ (their medians do
not measure the same thing).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import records


NOT_PROTOCOL = ("device", "tag")  # 'cuda' vs 'cuda:0' names one GPU; the tag is the folder


def medians(root: Path) -> dict[tuple[str, str], dict]:
    recs, _ = records.load_records(Path(root) / "results")
    out = {}
    for rec in recs:
        timing = rec["result"].get("timing") if rec["kind"] == "timing" else None
        if timing and not rec.get("superseded"):
            key = (rec["device_tag"], Path(rec["_path"]).stem)
            stats = timing["stats"]
            out[key] = {"median_ms": stats["median_ms"], "iqr_pct": 100 * stats["iqr_ms"] / stats["median_ms"]
                        if stats.get("iqr_ms") is not None and stats["median_ms"] else float("nan"),
                        "gpu": rec["env"].get("gpu_index"), "host": rec["env"].get("host"),
                        "request": {k: v for k, v in rec["request"].items() if k not in NOT_PROTOCOL}}
    return out


def differing(qa: dict, qb: dict) -> list[str]:
    """The request fields in which two records differ."""
    return sorted(k for k in set(qa) | set(qb) if qa.get(k) != qb.get(k))


def gpus(ra: dict, rb: dict) -> str:
    return f"{ra['host']}:{ra['gpu']} vs {rb['host']}:{rb['gpu']}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m common.sweep.compare", description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path, metavar="DIR_A", help="--out-dir of the first sweep")
    p.add_argument("b", type=Path, metavar="DIR_B", help="--out-dir of the second sweep")
    p.add_argument("--within", type=float, default=3.0, metavar="PCT", help="allowed difference in %% (default: 3)")
    args = p.parse_args(argv)
    a, b = medians(args.a), medians(args.b)
    common = sorted(set(a) & set(b))
    if not common:
        sys.stderr.write(f"{p.prog}: error: no timing record in both {args.a} and {args.b}\n")
        return 2
    print(f"{'device/request':<46}{'A ms':>10}{'B ms':>10}{'B/A-1':>9}{'IQR A':>8}{'IQR B':>8}  "
          f"{'GPUs':<20}request")
    worst, unlike = 0.0, 0
    for key in common:
        ra, rb = a[key], b[key]
        diff = (rb["median_ms"] / ra["median_ms"] - 1) * 100 if ra["median_ms"] else float("inf")
        fields = differing(ra["request"], rb["request"])
        unlike += bool(fields)
        if not fields:
            worst = max(worst, abs(diff))
        print(f"{'/'.join(key)[:45]:<46}{ra['median_ms']:>10.3f}{rb['median_ms']:>10.3f}{diff:>+8.2f}%"
              f"{ra['iqr_pct']:>7.2f}%{rb['iqr_pct']:>7.2f}%  {gpus(ra, rb):<20}"
              f"{'differs: ' + ', '.join(fields) if fields else 'same'}")
    print(f"{len(common)} request(s), {len(common) - unlike} the same request in both; largest difference among "
          f"those {worst:.2f}% (allowed {args.within:g}%)")
    return 0 if worst <= args.within and not unlike else 1


if __name__ == "__main__":
    sys.exit(main())
