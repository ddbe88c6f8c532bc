"""What the zoo writes about its run, beside the measurements: a failure record per
step that failed (removed once the step succeeds), and the zoo-run record (models,
inputs, protocol, wall time, failures) accumulated over calls, whether ``python -m
common.zoo`` or a Dask sweep of kind ``zoo`` made them."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from common import records

SLOTS = ("eager", "fastest", "memory", "throughput")
FAILED_LINE = "zoo: failed: "  # the closing line of each failed step (the Dask sweep reads it)


def failure_path(results: Path, tag: str, model: str, preset: str, slot: str) -> Path:
    return records.record_path(results, tag, "failure", f"{slot}__{model.replace('/', '__')}_{preset}")


def failures_on_disk(results: Path, tag: str, models: list[str], presets: list[str]) -> list[dict]:
    """Every failure record of these models at these inputs (a slot that later
    succeeded has had its failure record removed), so a run record spanning several
    calls lists the failures of all of them."""
    out = []
    for model in models:
        for preset in presets:
            for slot in SLOTS:
                path = failure_path(results, tag, model, preset, slot)
                with contextlib.suppress(OSError, ValueError, KeyError):
                    r = json.loads(path.read_text())["result"]
                    out.append({"step": r.get("step", f"{model} {preset} {slot}"), "reason": r["reason"],
                                "exit_code": r.get("exit_code")})
    return out


def previous_run(results: Path, tag: str, name: str) -> dict:
    """The zoo-run record's result before this call ({} when there is none)."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        return json.loads(records.record_path(results, tag, "zoo-run", name).read_text())["result"]
    return {}


def write_run_record(results: Path, tag: str, env: dict, name: str, prev: dict, models: list[str],
                     presets: list[str], what: list[str], protocol: str, wall_s: float, **counts: object) -> Path:
    """The zoo-run record (the models listed, inputs, protocol, wall time, failures),
    accumulated over calls: ``prev`` is its result before this call (``previous_run``).
    ``python -m common zoo`` writes it after every model, a Dask sweep of kind ``zoo``
    after every task."""
    listed = list(dict.fromkeys(prev.get("models", []) + models))
    presets_all = list(dict.fromkeys(prev.get("inputs", []) + list(presets)))
    result = {"models": listed, "inputs": presets_all, "what": list(what), "protocol": protocol, **counts,
              "failed": failures_on_disk(results, tag, listed, presets_all),
              "wall_s": prev.get("wall_s", 0.0) + wall_s, "calls": prev.get("calls", 0) + 1}
    req = {"model": "zoo", "input": {"name": "+".join(presets)}, "kind": "zoo-run"}
    path = records.record_path(results, tag, "zoo-run", name)
    records.write_record(path, records.make_record("zoo-run", tag, req, env, result))
    return path
