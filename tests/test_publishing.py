"""Records accumulate and the tables publish by one rule (issue 15): an earlier run is
kept under history/, a newer reduced-protocol run does not displace an older full one
(and is marked when it is the only one), a .txt says when it is a reduced protocol,
README states the set-up's cost from a job record. In process, tiny fake records."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from common import bootstrap, records
from common.errors import WriteFailed
from common.render import readme, select, tables, txt
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
    with pytest.raises(WriteFailed, match="cannot write .*resnet18_pascal.json.*: disk full"):
        records.write_record(path, timing("2026-12-02T10:00:00+00:00", 1, 5))
    assert json.loads(path.read_text())["superseded"] == "a reason"
    assert len(list(records.history_dir(path).glob("*.json"))) == 1


def test_a_newer_reduced_run_does_not_displace_an_older_full_one_and_is_marked_alone(tmp_path):
    path = main_path(tmp_path)
    full = timing("2026-11-01T10:00:00+00:00", 1, 27)
    reduced = timing("2026-12-01T10:00:00+00:00", 0, 1, noisy=True)  # below CPU_QUICK: no warm-up, one sample
    assert select.meets(full) and not select.meets(reduced)
    records.write_record(path, full)
    records.write_record(path, reduced)
    row = select.collect(tmp_path).get("timing", TAG, "resnet18", "pascal")
    assert row.day == "2026-11-01" and not row.reduced and row.flags == ""
    # Only the reduced run left: it is published, marked, NOISY kept, the stated protocol in a footnote.
    for p in records.history_dir(path).glob("*.json"):
        p.unlink()
    res = select.collect(tmp_path)
    row = res.get("timing", TAG, "resnet18", "pascal")
    assert row.day == "2026-12-01" and row.reduced and row.flags == "NOISY, reduced protocol"
    (dev,) = res.devices_with("timing")
    table = tables.latency_table(res, dev)
    assert "NOISY, reduced protocol" in table
    assert "below the stated protocol (CPU: at least 1 warm-up iteration and at least 2 timed samples" in table
    assert "timing/resnet18_pascal.json" in table.split("Rows marked reduced protocol")[1]
    # Superseded still loses to current, whatever the protocol.
    assert select.rank({**full, "_path": "a", "superseded": "old timer"}) < select.rank({**reduced, "_path": "b"})


def test_txt_of_a_reduced_run_says_so_and_names_what_the_tables_publish(tmp_path):
    path = main_path(tmp_path)
    records.write_record(path, timing("2026-11-01T10:00:00+00:00", 1, 27))
    records.write_record(path, timing("2026-12-01T10:00:00+00:00", 0, 1))
    (newest,), _ = records.load_records(tmp_path)
    first = txt.text_for(newest).splitlines()[0]
    assert first.startswith("# REDUCED PROTOCOL: warm-up 0, 1 timed sample: below the tables' stated protocol (CPU:")
    assert "publish instead the run of 2026-11-01T10:00:00+00:00" in txt.text_for(newest).replace("\n#   ", " ")
    assert "history/resnet18_pascal/20261101T100000Z.json" in txt.text_for(newest).replace("\n#   ", " ")
    for p in records.history_dir(path).glob("*.json"):
        p.unlink()
    assert "the tables publish this one, marked reduced protocol" in txt.text_for(newest).replace("\n#   ", " ")
    # A run at the stated protocol has no such line.
    records.write_record(path, timing("2026-12-02T10:00:00+00:00", 1, 2))
    (newest,), _ = records.load_records(tmp_path)
    assert "REDUCED" not in txt.text_for(newest)


def job(date: str, setup: dict | None) -> dict:
    env = {"date": date, "device_name": "Some CPU", "device_type": "cpu", "host_cpu": "Some CPU"}
    req = {"kind": "job", "command": "profile", "device": "cpu", "protocol": "quick", "models": ["resnet18"],
           "no_seed004": False, "extra": [], "seed004": False}
    return records.make_record("job", "cpu-some", req, env, {"wall_s": 60.0, "steps": 3, "failed": [],
                                                             "setup": setup})


def test_readme_states_the_set_up_cost_from_the_newest_job_record(tmp_path):
    path = records.record_path(tmp_path, "cpu-some", "job", "profile_quick")
    records.write_record(path, job("2026-12-01T10:00:00+00:00", None))
    assert "First set-up: its disk size and install time are not measured yet" in readme.job_lines(tmp_path)
    stamp = {"first_install_s": 312.0, "venv_bytes": 3 * 2**30, "date": "2026-12-02T09:00:00+00:00"}
    records.write_record(path, job("2026-12-02T10:00:00+00:00", stamp))
    line = readme.job_lines(tmp_path).splitlines()[-1]
    assert line.startswith("First set-up (`scripts/setup_venv.sh`, from the job records): .venv takes 3.0 GiB")
    assert "creating it took 5.2 min (Some CPU, 2026-12-02)" in line


def test_setup_stamp_measures_the_folder(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_bytes(b"x" * 1000)
    written = bootstrap.write_setup_stamp(12.5, tmp_path)
    assert written["venv_bytes"] == 1000 and bootstrap.setup_stamp(tmp_path) == written
    (tmp_path / bootstrap.SETUP_STAMP).write_text("{not json")
    assert bootstrap.setup_stamp(tmp_path) is None


def test_an_earlier_run_of_a_superseded_record_is_stale_too(tmp_path):
    """Marking the newest run superseded (a code change made it stale) also covers the
    runs kept under history/, which were measured with code at least as old."""
    from common import records as recmod

    def rec(date, superseded=None):
        return {"schema": recmod.SCHEMA, "kind": "timing", "device_tag": "t", "request": {"model": "m"},
                "env": {"date": date}, "code_version": {}, "result": {}, "superseded": superseded}

    path = recmod.record_path(tmp_path, "t", "timing", "m_pascal")
    path.parent.mkdir(parents=True)
    recmod.write_record(path, rec("2026-11-30T00:00:00+00:00"))
    recmod.write_record(path, rec("2026-12-01T00:00:00+00:00"))
    recmod.write_record(path, rec("2026-12-01T00:00:00+00:00", superseded="profiler bias"))  # same run, marked
    loaded, problems = recmod.load_records(tmp_path, history=True)
    assert not problems and len(loaded) == 2
    (old,) = [r for r in loaded if r.get("_history")]
    assert old["superseded"].startswith("profiler bias (an earlier run of t/timing/m_pascal.json")
    (current,), _ = recmod.load_records(tmp_path)
    assert current["superseded"] == "profiler bias"
    (kept,) = recmod.load_history(path)  # what a .txt header reads: the same mark
    assert kept["superseded"] == old["superseded"]
