"""Human-readable .txt files from records (formatting only: no measuring here).

Every ``.txt`` of the family folders is rendered from its record alone, so a run
(``txt.write`` right after the record is saved) and ``python -m common.render``
give byte-identical files. Where each kind goes (``path_for``):

- timing, train-timing: ``<root>/<family>_profiler/<model>_stats/<tag>/<stem>.txt``
- layers, train-layers: ``<root>/<family>_profiler/<model>_stats/<tag>/layers/<stem>.txt``
- memory: ``<root>/<family>_profiler/memory_reports/<tag>/<stem>.txt``
- structure: ``<root>/<family>_profiler/model_structures/<stem>.txt``
- layer-bench: ``<root>/layer_profiler/layer_stats/<tag>/<stem>.txt``

``stem`` is the record file's own stem; ``tag`` its ``device_tag``. A ``.txt``
shows the newest run (the record at the main path; earlier runs kept under
``history/`` have none) and says on its first lines when that run is below the
tables' stated protocol (``select.meets``), naming the run the tables publish
instead, or that they publish this one marked.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from common import catalogue, records
from common.render import select
from common.render.evidence import budget_line
from common.render.txt_kinds import (FORMATTERS, header, layerbench_txt, layers_txt, memory_txt,  # noqa: F401
                                     peak_line, phase_table, runtime_lines, stats_block, structure_txt,
                                     timing_txt, train_txt, unit_cost_table)  # re-exported: one home per kind's text

TXT_KINDS = ("timing", "layers", "train-timing", "train-layers", "memory", "structure", "layer-bench")


def path_for(rec: dict, root: Path) -> Path:
    """Where the ``.txt`` of ``rec`` lives under the repository root ``root``."""
    kind, tag, stem = rec["kind"], rec["device_tag"], Path(rec["_path"]).stem
    if kind == "layer-bench":
        return Path(root) / "layer_profiler" / "layer_stats" / tag / f"{stem}.txt"
    model = rec["request"]["model"]
    family = Path(root) / f"{catalogue.family_of(rec)}_profiler"
    if kind == "structure":
        return family / "model_structures" / f"{stem}.txt"
    if kind == "memory":
        return family / "memory_reports" / tag / f"{stem}.txt"
    stats = family / f"{model}_stats" / tag
    if kind in ("layers", "train-layers"):
        return stats / "layers" / f"{stem}.txt"
    if kind in ("timing", "train-timing"):
        return stats / f"{stem}.txt"
    raise ValueError(f"records of kind {kind!r} have no .txt file")


WIDTH = 160  # every line of a .txt fits a terminal this wide; tables are laid out within it


def text_for(rec: dict) -> str:
    """The ``.txt`` of ``rec``; a superseded record says so on its first line, a
    reduced-protocol one on the next (``reduced_line``)."""
    text = FORMATTERS[rec["kind"]](rec)
    text = reduced_line(rec) + budget_line(rec) + text
    if rec.get("superseded"):
        text = f"# SUPERSEDED: {rec['superseded']} (kept for reference; not current)\n" + text
    return "".join(_fit(line) + "\n" for line in text.split("\n")[:-1]) + text.split("\n")[-1]


def reduced_line(rec: dict) -> str:
    """'# REDUCED PROTOCOL: ...' when ``rec``'s timed loop is below the stated protocol
    of its device type, naming what the tables publish instead (from the earlier runs
    kept beside it, ``records.load_history``); '' otherwise."""
    if "timing" not in rec["result"]:
        return ""
    judge = select.verdict_protocol(rec, catalogue.family(rec["request"]["model"]) == "zoo")
    if judge.met_by(rec["result"]["timing"], rec["request"]):
        return ""
    t = rec["result"]["timing"]
    n = select.samples(t)
    whose = "" if judge.name.startswith("its own") else "the tables' stated protocol "
    line = (f"# REDUCED PROTOCOL: warm-up {t['warmup']}, {n} timed sample{'s' * (n != 1)}: below {whose}"
            f"({judge.text})")
    if not select.tabled(rec):
        return line + "\n"
    best = select.published([rec, *records.load_history(Path(rec["_path"]))]) if rec.get("_path") else rec
    if best is rec:
        return line + "; no run of this request meets it: the tables publish this one, marked reduced protocol\n"
    return (line + f"; the tables publish instead the run of {best['env']['date']} (`{records.short(best['_path'])}`)"
            + (", which meets it" if select.meets(best) else "") + "\n")


def _fit(line: str) -> str:
    """A prose line longer than WIDTH, wrapped at spaces (tables are already narrower)."""
    if len(line) <= WIDTH:
        return line
    indent = "#   " if line.startswith("#") else " " * 17
    return textwrap.fill(line, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def write_saved(path: Path, root: Path) -> Path:
    """Render the .txt of the record saved at ``path`` (read back and validated as
    ``python -m common.render`` reads it), atomically; returns the .txt's path."""
    return write(records.load_record(path), root)


def write(rec: dict, root: Path) -> Path:
    """Render ``rec``'s ``.txt`` at ``path_for(rec, root)``, atomically; returns the path."""
    path = path_for(rec, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    records.write_atomic(path, text_for(rec))
    return path
