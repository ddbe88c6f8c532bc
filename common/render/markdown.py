"""Markdown helpers every rendered table uses: the one place numbers are rounded,
the table writer, model/preset labels, dates. Imports nothing else of ``render``."""
from __future__ import annotations

import datetime as dt

from common import catalogue, records
from common.inputs import PRESETS as INPUT_SIZES

PRESETS = {"cityscapes": "Cityscapes", "pascal": "PASCAL-VOC-2012"}  # the seeds' two tasks, their titles
CHECK = ":heavy_check_mark:"
MISSING = "-"
SUPERSEDED = "(superseded)"  # appended to the model cell of a row from a superseded record
REDUCED = "(reduced protocol)"  # ... of a row from a record below the stated protocol, where no Flag column says so
# Every model the registry knows, the seeds' six backbones first and in their order.
MODEL_ORDER = list(catalogue.BACKBONES) + [n for n in catalogue.NAMES if n not in catalogue.BACKBONES]


def num(value: float | None, fmt: str) -> str:
    """The only place numbers are rounded."""
    return MISSING if value is None else format(value, fmt)


def pct(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1%}"


def md_table(headers: list[str], rows: list[list[str]], numeric_from: int) -> str:
    """Markdown table, columns padded for a readable source; columns from
    ``numeric_from`` on are right-aligned."""
    widths = [max(len(h), 3, *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i >= numeric_from else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = ["-" * (w - 1) + ":" if i >= numeric_from else "-" * w for i, w in enumerate(widths)]
    return "\n".join([line(headers), "|" + "|".join(f" {r} " for r in rule) + "|", *map(line, rows)]) + "\n"


def display(model: str, superseded: bool = False, reduced: bool = False) -> str:
    """The model cell: bold display name, marked when its record is superseded
    (or below the stated protocol, in tables without a Flag column)."""
    return f"**{catalogue.display(model)}**" + (f" {SUPERSEDED}" if superseded else "") \
        + (f" {REDUCED}" if reduced else "")


def preset_title(preset: str) -> str:
    h, w = INPUT_SIZES[preset]
    return f"{PRESETS[preset]} (1,3,{h},{w})"


def model_key(model: str) -> tuple[int, str]:
    """The catalogue's order, then any other model by name (never the order records were read in)."""
    return (MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER), model)


utc = records.utc  # a record's date in UTC: one home, common.records_read (re-exported by common.records)


def day(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d")


def distinct(values: list[str]) -> str:
    """Distinct values, joined; numbers sort as numbers ('5, 300', not '300, 5')."""
    def key(v: str) -> tuple:
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)

    return ", ".join(sorted(set(values), key=key))


def short_name(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'H100 80GB HBM3';
    'Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz' -> 'Intel Xeon Gold 5218'."""
    for noise in ("NVIDIA ", "GeForce ", "(R)", "(TM)"):
        name = name.replace(noise, "")
    return " ".join(name.split(" CPU @")[0].split())


def cudnn(version: int | None) -> str:
    """torch reports cuDNN as one integer: 9.x is MMmmpp (91300), 8.x is Mmpp (8902)."""
    if not version:
        return "none"
    if version >= 10000:
        return f"{version // 10000}.{version // 100 % 100}.{version % 100}"
    return f"{version // 1000}.{version // 100 % 10}.{version % 100}"


def reduced_note(paths: list[str], stated: str) -> str:
    """A note under a table naming the reduced-protocol records its marked rows come from."""
    if not paths:
        return ""
    return (f"\nRows marked reduced protocol come from records below the stated protocol ({stated}); no run "
            "of their key meets it, so the newest is shown: " + ", ".join(f"`{p}`" for p in sorted(set(paths)))
            + ".\n")


def superseded_note(reasons: dict[str, str]) -> str:
    """A note under a table naming the superseded records its rows come from."""
    if not reasons:
        return ""
    return (f"\nRows marked {SUPERSEDED} come from records the measuring code has since changed under "
            "(kept until re-measured): " + "; ".join(f"`{p}`: {r}" for p, r in sorted(reasons.items())) + ".\n")
