"""Render everything from the records.

    python -m common.render [--check] [--results DIR] [--root DIR]

Reads ``<results>/records/<device-tag>/<kind>/*.json`` (and the earlier runs kept
under ``<kind>/history/``, which the tables' selection may publish: see
``common.render.select``) and renders:

- every record's ``.txt`` beside its family (``common.render.txt.path_for``): the
  newest run's, none for an earlier run;
- ``<results>/latency.md``, ``memory.md``, ``modes.md``, ``training.md``, ``segmentation.md``
  (output-stride variants), ``timer_check.md`` (the timer cross-checks), ``sweeps.md`` (the Dask sweeps);
- ``<results>/figures/*.png``;
- ``<results>/data/*.csv`` (every published measurement as flat tables: ``common.render.data``) and
  ``<results>/index.html`` (the interactive page: ``common.render.page``; its vendored
  ``plotly.min.js`` is checked like a figure, only that it exists);
- README.md's generated block (``<root>/README.md``, between the markers);
- ``<results>/burden.md`` and its kin, when ``common.render.burden`` exists.

A file is written (atomically) only when its content changed. ``--check``
writes nothing and exits 1 listing every file that would change (figures: only
that they exist, since PNG bytes vary with matplotlib), 0 when all match.
A record that cannot be read, is invalid (``common.records.Record``: layout, finite
non-negative times, sample counts) or lacks what a table needs is named on stderr
with its path and the reason and never published (no row, no .txt); the build goes
on and exits 1 (``--check`` too). Bad input (no records folder, README without
markers) is one line on stderr, exit 2. Any other exception is a bug of the
renderer: it ends the build with its traceback, exit 1.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from common import records
from common.errors import UserError
from common.parsers import tools
from common.render import figures as figs
from common.render import (checks, data, kernel_table, page, pages, readme, runtimes, segmentation, select, sweeps,
                           tables, txt)
from common.render.evidence import BUDGET_TIMED_AT_LEAST, budget_text, budget_timed

PROG = "common.render"


def txt_outputs(recs: list[dict], root: Path, problems: list[str]) -> dict[Path, str]:
    out: dict[Path, str] = {}
    for rec in recs:
        if rec["kind"] not in txt.TXT_KINDS or rec.get("_history"):
            continue  # an earlier run (history/) has no .txt: the .txt shows the newest run
        try:
            out[txt.path_for(rec, root)] = txt.text_for(rec)
        except (*select.ERRORS, ZeroDivisionError) as exc:
            problems.append(select.problem(rec, exc) + " (no .txt)")
    return out


def burden_outputs(results_dir: Path, problems: list[str]) -> dict[Path, str]:
    """The burden renderer's files, when its module exists (``burden.outputs(results_dir)``).
    A module that exists but cannot be imported is a named problem; its pages are left as they are."""
    if importlib.util.find_spec("common.render.burden") is None:
        return {}
    try:
        module = importlib.import_module("common.render.burden")
    except ImportError as exc:
        problems.append(f"common.render.burden cannot be imported ({exc}): burden pages not rendered")
        return {}
    return module.outputs(results_dir)


def zoo_module(problems: list[str]):
    """``common.render.zoo`` (zoo.md, throughput .txt files, Pareto figures), or None when it cannot load."""
    try:
        return importlib.import_module("common.render.zoo")
    except ImportError as exc:
        problems.append(f"common.render.zoo cannot be imported ({exc}): zoo pages not rendered")
        return None


def text_outputs(results_dir: Path, root: Path, seeds_path: Path = tables.SEEDS):
    """(every text file -> its content, the figure plan, problems)."""
    if not (results_dir / "records").is_dir():
        raise UserError(f"no records folder under {str(results_dir)!r}; run the profilers first")
    recs, problems = records.load_records(results_dir, history=True)  # the tables may publish an earlier run
    res = select.select(recs, problems)
    problems = res.problems
    recs = [r for r in recs if r["_path"] not in res.rejected]  # a malformed record: no row, no .txt
    seeds = tables.Seeds.load(seeds_path)
    plan = figs.plan(res)
    out: dict[Path, str] = txt_outputs(recs, root, problems)
    out.update(pages.outputs(res, seeds, results_dir, plan))
    out.update(readme.output(res, seeds, root / "README.md", results_dir, plan))
    out.update(burden_outputs(results_dir, problems))
    if (zoo := zoo_module(problems)) is not None:
        out.update(zoo.outputs(results_dir, root))
    current = [r for r in recs if not r.get("_history")]
    out.update(segmentation.outputs(results_dir, root, current))
    out.update(checks.outputs(results_dir, current))
    out.update(sweeps.outputs(results_dir, recs))  # earlier calls (history/) are rows too
    datasets = data.outputs(results_dir, root, recs, res, problems)
    out.update(datasets)
    out.update(page.outputs(results_dir, root, datasets))
    out.update(runtimes.outputs(results_dir, current))
    out.update(kernel_table.outputs(results_dir, current))
    return out, plan + runtimes.figures(current), problems


def _differs(path: Path, data: str | bytes) -> bool:
    if not path.is_file():
        return True
    return path.read_bytes() != (data.encode("utf-8") if isinstance(data, str) else data)


def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    records.write_atomic(path, data)


def main(argv: list[str] | None = None, prog: str = f"python -m {PROG}") -> int:
    p = tools.render(prog, __doc__.split("\n\n")[0], BUDGET_TIMED_AT_LEAST)
    args = p.parse_args(argv)
    results_dir = args.results if args.results is not None else args.root / "results"
    if args.short_loops:
        recs, _ = records.load_records(results_dir)
        short = [(records.short(r["_path"]), budget_text(r)) for r in recs if budget_timed(r)]
        for path, text in sorted(short):
            print(f"{path}: {text}")
        sys.stderr.write(f"{PROG}: {len(short)} of {len(recs)} records timed less than "
                         f"{BUDGET_TIMED_AT_LEAST:.0%} of their budget\n")
        return 0
    try:
        out, plan, problems = text_outputs(results_dir, args.root)
        for problem in problems:
            sys.stderr.write(f"{PROG}: skipped {problem}\n")
        figures_dir = results_dir / "figures"
        if args.check:
            stale = [path for path, text in out.items() if _differs(path, text)]
            stale += [figures_dir / f.name for f in plan if not (figures_dir / f.name).is_file()]
            zoo = zoo_module([])
            stale += [p for p in (zoo.figure_paths(results_dir) if zoo else []) if not p.is_file()]
            stale += [p for p in page.assets(results_dir) if not p.is_file()]
            for path in stale:
                sys.stderr.write(f"{PROG}: {path} is not up to date; run python -m {PROG}\n")
            return 1 if stale or problems else 0
        changed = 0
        for path, text in out.items():
            if _differs(path, text):
                _write(path, text)
                changed += 1
        for f in plan:
            png = figs.draw_png(f)
            if _differs(figures_dir / f.name, png):
                _write(figures_dir / f.name, png)
                changed += 1
        zoo = zoo_module([])
        zoo_figs = zoo.figures(results_dir) if zoo else {}
        for path, png in zoo_figs.items():
            if _differs(path, png):
                _write(path, png)
                changed += 1
        assets = page.assets(results_dir)
        for path, blob in assets.items():
            if not path.is_file():  # bytes vary with the installed plotly: like a figure, only its presence is checked
                _write(path, blob)
                changed += 1
        sys.stderr.write(f"{PROG}: {changed} of {len(out) + len(plan) + len(zoo_figs) + len(assets)} files written, "
                         "the rest unchanged" + (f"; {len(problems)} record(s) not published (above)" if problems
                                                 else "") + "\n")
    except UserError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
