"""Burden records: where they live, how a result becomes one, how they are read back.

One model: ``results/records/any/burden/<stem>.json``, kind ``burden``, device tag
``any`` (meta-device costs are the same everywhere; the CPU peak names its device and
method inside ``result.peak``). One full run (``--models all``):
``results/records/any/burden-run/all.json``, kind ``burden-run`` (date, model count,
minutes; burden.md's header).
"""
from __future__ import annotations

from pathlib import Path

from common import records
from common.burden.request import DEVICE_TAG, KIND, RUN_KIND, BurdenRequest

RUN_STEM = "all"


def path(results: Path, req: BurdenRequest) -> Path:
    return records.record_path(results, DEVICE_TAG, KIND, req.stem)


def run_path(results: Path) -> Path:
    return records.record_path(results, DEVICE_TAG, RUN_KIND, RUN_STEM)


def write(results: Path, req: BurdenRequest, env: dict, result: dict) -> dict:
    rec = records.make_record(KIND, DEVICE_TAG, req.to_dict(), env, result)
    records.write_record(path(results, req), rec)
    return rec


def entry(rec: dict) -> dict:
    """A record as the renderer reads it: the result, with the model, request, stem,
    environment and superseded reason beside it."""
    req = rec["request"]
    return {**rec["result"], "model": req["model"], "request": req, "env": rec["env"],
            "stem": BurdenRequest.from_dict(req).stem, "superseded": rec.get("superseded")}


def load(results: Path) -> tuple[list[dict], dict | None, list[str]]:
    """Every burden record under ``results`` as an entry, the newest run record (or
    None), and the problems of records of these kinds that cannot be read."""
    recs, problems = records.load_records(results)
    entries, run, bad = [], None, []
    for rec in recs:
        try:
            if rec["kind"] == KIND:
                entries.append(entry(rec))
            elif rec["kind"] == RUN_KIND and (run is None or rec["env"]["date"] > run["env"]["date"]):
                run = rec
        except (KeyError, TypeError, ValueError) as exc:
            bad.append(f"{rec['_path']}: malformed burden record ({type(exc).__name__}: {exc})")
    return entries, run, bad + [p for p in problems if f"/{KIND}" in p]
