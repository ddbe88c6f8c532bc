"""Choose a backbone from the published measurements.

    python -m common choose --device nvidia-h200 --input cityscapes --max-ms 10 --min-top1 80
                            [--mode eager|fastest|all|MODE] [--max-peak-mib N] [--max-params-m N]
                            [--sort median_ms|top1|peak_mib|params_m] [--data CSV]

Reads ``results/data/measurements.csv`` (rendered from the records by ``python -m
common.render``; never torch) and prints the models of one device and input that meet
every bound, the Pareto-optimal ones first and marked ``*`` (among those shown, no other
is at least as fast and more accurate), then the rest; each row with the numbers the
bounds were checked on and the path of its record.

``--mode``: ``eager`` (default) the eager fp32 rows; ``fastest`` per model its fastest
measured mode that meets the bounds; ``all`` every measured mode; anything else: that
mode's exact name. A bound on a value a row lacks (no top-1, peak memory not measured)
leaves the row out. A device or input without data is one line on stderr naming those
with data, exit 2.
"""
from __future__ import annotations

import csv
import difflib
import sys
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError
from common.parsers import tools

PROG = "python -m common choose"
DATA = Path(__file__).resolve().parent.parent / "results" / "data" / "measurements.csv"
EAGER = "eager fp32"
NUMBERS = ("median_ms", "p90_ms", "top1", "peak_mib", "static_mib", "params_m", "gmacs")
SORTS = {"median_ms": 1, "top1": -1, "peak_mib": 1, "params_m": 1}  # direction: best first


@dataclass(frozen=True)
class Bounds:
    max_ms: float | None = None
    min_top1: float | None = None
    max_peak_mib: float | None = None
    max_params_m: float | None = None

    def met_by(self, row: dict) -> bool:
        checks = ((self.max_ms, "median_ms", 1), (self.min_top1, "top1", -1),
                  (self.max_peak_mib, "peak_mib", 1), (self.max_params_m, "params_m", 1))
        for bound, col, sign in checks:
            if bound is None:
                continue
            if row[col] is None or sign * row[col] > sign * bound:
                return False
        return True

    def text(self) -> str:
        parts = [f"median <= {self.max_ms:g} ms" if self.max_ms is not None else "",
                 f"top-1 >= {self.min_top1:g} %" if self.min_top1 is not None else "",
                 f"peak <= {self.max_peak_mib:g} MiB" if self.max_peak_mib is not None else "",
                 f"params <= {self.max_params_m:g} M" if self.max_params_m is not None else ""]
        return ", ".join(p for p in parts if p) or "no bounds"


def load(path: Path) -> list[dict]:
    """The dataset's rows, numbers as floats (None where not measured)."""
    if not path.is_file():
        raise UserError(f"no dataset at {str(path)!r}; run python -m common.render")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for col in NUMBERS:
            row[col] = float(row[col]) if row.get(col) not in (None, "") else None
    return rows


def _unknown(what: str, value: str, known: list[str], where: str = "") -> UserError:
    close = difflib.get_close_matches(value, known, n=3, cutoff=0.5)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return UserError(f"no measurements for {what} {value!r}{where}{hint}; {what}s with data: {', '.join(known)}")


def candidates(rows: list[dict], device: str, preset: str, mode: str) -> list[dict]:
    """The rows of one device, input and ``--mode`` choice (before bounds)."""
    devices = list(dict.fromkeys(r["device"] for r in rows))
    if device not in devices:
        raise _unknown("device", device, devices)
    mine = [r for r in rows if r["device"] == device]
    inputs = list(dict.fromkeys(r["input"] for r in mine))
    if preset not in inputs:
        raise _unknown("input", preset, inputs, f" on {device}")
    mine = [r for r in mine if r["input"] == preset]
    if mode in ("fastest", "all"):
        return mine
    name = EAGER if mode == "eager" else mode
    chosen = [r for r in mine if r["mode"] == name]
    if not chosen:
        raise _unknown("mode", name, sorted({r["mode"] for r in mine}) + ["eager", "fastest", "all"],
                       f" on {device} at {preset}")
    return chosen


def fastest_each(rows: list[dict]) -> list[dict]:
    """Per model its row with the lowest median (ties: the mode's name)."""
    best: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: (r["median_ms"], r["mode"])):
        best.setdefault(r["model"], r)
    return list(best.values())


def pareto(rows: list[dict]) -> list[dict]:
    """Rows no other row beats on latency and top-1 (faster and at least as accurate, or as fast and more
    accurate); rows without a top-1 take no part."""
    best, top = [], float("-inf")
    for r in sorted((r for r in rows if r["top1"] is not None), key=lambda r: (r["median_ms"], -r["top1"], r["model"])):
        if r["top1"] > top:
            best.append(r)
            top = r["top1"]
    return best


def choose(rows: list[dict], device: str, preset: str, bounds: Bounds, mode: str = "eager",
           sort: str = "median_ms") -> tuple[list[dict], list[dict], int]:
    """(the rows meeting ``bounds``, Pareto-optimal first, then the rest, each group by ``sort``;
    the Pareto-optimal ones; how many models were considered)."""
    pool = candidates(rows, device, preset, mode)
    met = [r for r in pool if bounds.met_by(r)]
    if mode == "fastest":
        met = fastest_each(met)
    front = pareto(met)
    ids = {id(r) for r in front}
    sign = SORTS[sort]

    def key(r: dict) -> tuple:
        v = r[sort]
        return (id(r) not in ids, v is None, sign * v if v is not None else 0.0, r["median_ms"], r["model"], r["mode"])

    return sorted(met, key=key), front, len({r["model"] for r in pool})


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def report(chosen: list[dict], front: list[dict], considered: int, device: str, preset: str, bounds: Bounds,
           mode: str) -> str:
    ids = {id(r) for r in front}
    first = chosen[0] if chosen else None
    where = f"{device} ({first['device_name']}), {preset} {first['height']}x{first['width']}" if first \
        else f"{device}, {preset}"
    lines = [f"{where}, mode {mode}: {len({r['model'] for r in chosen})} of {considered} models meet "
             f"{bounds.text()}; * = Pareto-optimal among them (no other is at least as fast and more accurate)."]
    if not chosen:
        return "\n".join(lines) + "\n"
    header = ["", "model", "mode", "median ms", "p90 ms", "top-1 %", "peak MiB", "params M", "GMACs", "record"]
    table = [[("*" if id(r) in ids else ""), r["model"], r["mode"], _num(r["median_ms"], ".3f"),
              _num(r["p90_ms"], ".3f"), _num(r["top1"], ".1f"), _num(r["peak_mib"], ".0f"),
              _num(r["params_m"], ".1f"), _num(r["gmacs"], ".2f"), r["record"]] for r in chosen]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    right = {3, 4, 5, 6, 7, 8}
    for row in [header] + table:
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    if any(r["mode"] != EAGER for r in chosen):
        lines.append("Memory (peak) is measured in eager fp32 whatever the row's mode.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    args = tools.choose(prog, __doc__.split("\n\n")[0], sorted(SORTS), DATA).parse_args(argv)
    bounds = Bounds(args.max_ms, args.min_top1, args.max_peak_mib, args.max_params_m)
    try:
        chosen, front, considered = choose(load(args.data), args.device, args.input, bounds, args.mode, args.sort)
    except UserError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return exc.exit_code
    sys.stdout.write(report(chosen, front, considered, args.device, args.input, bounds, args.mode))
    return 0

