"""Records accumulate (issue 15): an earlier run is kept under history/; the set-up's
cost is stamped in .venv. In process, tiny fake records."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from common import bootstrap, records
from conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "records" / "cpu-amd-epyc" / "timing" / "resnet18_pascal.json"
TAG = "cpu-amd-epyc"


def timing(date: str, warmup: int, iters: int, noisy: bool = False) -> dict:
    """A CPU timing record of resnet18 at PASCAL size, measured at ``date`` with this loop."""
    rec = json.loads(FIXTURE.read_text())
    rec["env"]["date"] = date
    rec["request"].update(warmup=warmup, iters=iters)
    t = rec["result"]["timing"]
    t.update(warmup=warmup, iters=iters, requested_iters=iters, stopped_early=False,
             samples_ms=[150.0 + i for i in range(iters)])
    t["stats"] = {**t["stats"], "noisy": noisy}
    return rec


def main_path(results: Path) -> Path:
    return records.record_path(results, TAG, "timing", "resnet18_pascal")


def test_a_new_run_never_destroys_the_older_record(tmp_path, monkeypatch):
    path = main_path(tmp_path)
    old, new = timing("2026-11-01T10:00:00+00:00", 1, 27), timing("2026-12-01T10:00:00+00:00", 1, 3)
    records.write_record(path, old)
    records.write_record(path, new)
    assert json.loads(path.read_text()) == new  # the main path holds the newest run
    (kept,) = records.history_dir(path).glob("*.json")
    assert kept.name == "20261101T100000Z.json" and json.loads(kept.read_text()) == old
    # The same run written again (e.g. marked superseded) is replaced in place, not kept twice.
    records.write_record(path, {**new, "superseded": "a reason"})
    assert len(list(records.history_dir(path).glob("*.json"))) == 1
    # Readers of current records see one; the renderer's selection also sees the earlier run, marked.
    assert [r["env"]["date"] for r in records.load_records(tmp_path)[0]] == [new["env"]["date"]]
    both = records.load_records(tmp_path, history=True)[0]
    assert sorted((r["env"]["date"], bool(r.get("_history"))) for r in both) == [
        (old["env"]["date"], True), (new["env"]["date"], False)]
    # A write that fails leaves the earlier run where it was, and no second copy of it.
    monkeypatch.setattr(records, "write_atomic", lambda *_: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        records.write_record(path, timing("2026-12-02T10:00:00+00:00", 1, 5))
    assert json.loads(path.read_text())["superseded"] == "a reason"
    assert len(list(records.history_dir(path).glob("*.json"))) == 1



def test_setup_stamp_measures_the_folder(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_bytes(b"x" * 1000)
    written = bootstrap.write_setup_stamp(12.5, tmp_path)
    assert written["venv_bytes"] == 1000 and bootstrap.setup_stamp(tmp_path) == written
    (tmp_path / bootstrap.SETUP_STAMP).write_text("{not json")
    assert bootstrap.setup_stamp(tmp_path) is None
