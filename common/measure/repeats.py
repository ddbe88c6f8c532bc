"""Run-to-run spread: the protocol repeated on fresh instances (or in fresh processes).

A run can be tight (small interquartile range) and still land 1.5x away from the
next run of the same command (clock state, host scheduling, allocator and cuDNN
choices of one process). ``--repeats N`` runs the whole protocol N times, each on
a freshly built model instance (``--fresh-process``: each in its own process, a
child of the same measuring entry point, ``python -m common.run``), and reports
the median of the repeats' medians and their spread = (max - min) / median of
medians. A spread above ``UNSTABLE_SPREAD`` marks the result *unstable across
runs*, whatever each run's own noise flag says.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common.derive import UNSTABLE_SPREAD  # noqa: F401 - re-exported; the renderer reads it there
from common.errors import UserError

DEFAULT_REPEATS = {"cuda": 3, "cpu": 1}


def default_repeats(device: str) -> int:
    return DEFAULT_REPEATS["cpu" if device.startswith("cpu") else "cuda"]


def summarize(runs: list[dict]) -> dict:
    """``runs``: the timing dicts of every repeat (raw samples kept). Returns the
    record's ``repeats`` block; ``representative`` is the repeat whose median is
    nearest the median of medians (the first on a tie): its samples are the
    record's ``timing``."""
    medians = [r["stats"]["median_ms"] for r in runs]
    mom = statistics.median(medians)
    spread = (max(medians) - min(medians)) / mom if len(medians) > 1 and mom > 0 else None
    rep = min(range(len(medians)), key=lambda i: (abs(medians[i] - mom), i))
    return {"n": len(runs), "medians_ms": medians, "median_of_medians_ms": mom, "spread": spread,
            "unstable": spread is not None and spread > UNSTABLE_SPREAD, "unstable_above": UNSTABLE_SPREAD,
            "representative": rep, "runs": runs}


def fresh_process_run(request: dict, device_tag: str | None, timeout_s: float | None = None) -> dict:
    """One repeat in a fresh process: ``python -m common.run`` measures ``request``
    (a one-repeat timing request) into a temporary folder; returns its record."""
    with tempfile.TemporaryDirectory(prefix="bp-repeat-") as tmp:
        req_path, out = Path(tmp) / "request.json", Path(tmp) / "record.json"
        req_path.write_text(json.dumps(request), encoding="utf-8")
        cmd = [sys.executable, "-m", "common.run", str(req_path), str(out)] + ([device_tag] if device_tag else [])
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)}
        try:
            done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise UserError(f"a --fresh-process repeat ran past {timeout_s:g} s") from None
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise UserError(f"a --fresh-process repeat failed (exit {done.returncode}): {tail[:300]}")
        return json.loads(out.read_text(encoding="utf-8"))
