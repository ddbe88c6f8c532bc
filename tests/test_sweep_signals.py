"""A sweep stopped by Ctrl-C (SIGINT to the terminal's whole process group, Dask's
worker processes and the runs included) or SIGTERM: one line, the summary record
of what finished, no worker traceback, no process left behind. Real local sweeps
of 2 CPU workers (scripts/limit_cases.py runs them, as scripts/bad_inputs.py may)."""
from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

import pytest

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("limit_cases", ROOT / "scripts" / "limit_cases.py")
limit_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(limit_cases)


# Ctrl-C reaches every process of the group: two workers, each with a run to stop. SIGTERM goes
# to the sweep's process alone, whose answer does not depend on how many workers it has: one
# (each worker is a process that imports torch for its first task).
@pytest.mark.parametrize("sig, to_group, workers", [(signal.SIGINT, True, 2), (signal.SIGTERM, False, 1)],
                         ids=["ctrl-c-to-the-group", "sigterm"])
def test_a_stopped_sweep_says_one_line_and_keeps_the_summary_of_what_finished(tmp_path, sig, to_group, workers):
    row = limit_cases.interrupted_sweep(sig, to_group=to_group, out=tmp_path, iters=20, workers=workers)
    assert row["signal_sent"], "the sweep ended before it could be stopped"
    assert row["code"] == (130 if sig == signal.SIGINT else 143)
    assert not row["traceback"] and row["one_line"], row["lines"]
    assert row["line"].startswith("python -m common sweep: interrupted (SIGINT)" if sig == signal.SIGINT else
                                  "python -m common sweep: terminated (SIGTERM)") and "summary record" in row["line"]
    assert row["stdout"] == ""
    assert row["leftover"] == []  # no worker, nanny or run outlives the sweep
    summary = row["summary"]
    assert summary is not None and summary["stopped"] == signal.Signals(sig).name
    tasks = {t["label"]: t for t in summary["tasks"]}
    assert len(tasks) == 6 and sum(summary["counts"].values()) == 6
    done = [t for t in tasks.values() if t["status"] == "done"]
    assert done  # the signal came once a record was written: that task is counted as finished
    written = {t["label"].split()[1] for t in done}
    assert {f"resnet18_{size}.json" for size in written} <= set(row["records"])
    assert summary["counts"].get("not_started", 0) + summary["counts"].get("stopped", 0) >= 1
    assert all(t["attempts"] >= 1 for t in tasks.values() if t["status"] == "stopped")
    assert not list(tmp_path.rglob("*.tmp"))
    assert row["ok"]  # the verdict scripts/bad_inputs.py reads agrees
