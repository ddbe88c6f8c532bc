"""Compare the timing medians of two sweeps' outputs, request by request (e.g. the
same list swept on GPU 0 and on GPU 1 into two folders).

    python -m common.sweep.compare DIR_A DIR_B [--within PCT]

Prints one row per request both hold (its stem): median ms of each, the GPU each
ran on, and the difference; exit 1 when a difference exceeds --within.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import records


def medians(root: Path) -> dict[tuple[str, str], dict]:
    recs, _ = records.load_records(Path(root) / "results")
    out = {}
    for rec in recs:
        timing = rec["result"].get("timing") if rec["kind"] == "timing" else None
        if timing and not rec.get("superseded"):
            key = (rec["device_tag"], Path(rec["_path"]).stem)
            out[key] = {"median_ms": timing["stats"]["median_ms"], "gpu": rec["env"].get("gpu_index"),
                        "host": rec["env"].get("host")}
    return out


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
    print(f"{'device/request':<52}{'A ms':>10}{'B ms':>10}{'B/A-1':>9}  GPUs")
    worst = 0.0
    for key in common:
        ra, rb = a[key], b[key]
        diff = (rb["median_ms"] / ra["median_ms"] - 1) * 100 if ra["median_ms"] else float("inf")
        worst = max(worst, abs(diff))
        print(f"{'/'.join(key)[:51]:<52}{ra['median_ms']:>10.3f}{rb['median_ms']:>10.3f}{diff:>+8.2f}%  "
              f"{ra['host']}:{ra['gpu']} vs {rb['host']}:{rb['gpu']}")
    print(f"{len(common)} request(s); largest difference {worst:.2f}% (allowed {args.within:g}%)")
    return 0 if worst <= args.within else 1


if __name__ == "__main__":
    sys.exit(main())
