"""Nothing lost, nothing written where it does not belong: concurrent writers of one
request, paths built from input, OSErrors while writing, and the smaller bad inputs."""
from __future__ import annotations

import argparse
import errno
import importlib.util
import io
import json
import multiprocessing
import os
import tarfile
import uuid
from pathlib import Path

import pytest

from common import cli, paths, records, run
from common import env as envmod
from common.errors import UserError, WriteFailed
from conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "records" / "cpu-amd-epyc" / "timing" / "resnet18_pascal.json"


def _rec(date: str = "2026-12-01T10:00:00+00:00", run_id: str | None = None, tag: str = "cpu-t") -> dict:
    rec = json.loads(FIXTURE.read_text())
    rec["device_tag"] = tag
    rec["env"] = {**rec["env"], "date": date, "run_id": run_id or uuid.uuid4().hex}
    return rec


def _runs(path: Path) -> list[dict]:
    hist = sorted(records.history_dir(path).glob("*.json")) if records.history_dir(path).is_dir() else []
    return [json.loads(p.read_text()) for p in [path, *hist] if p.exists()]


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".bak"))]


# --------------------------------------------------------------------------- every run keeps its record

def test_concurrent_runs_of_one_request_each_keep_their_record(tmp_path):
    """Seven processes write the same request at once, all dated within one second (as
    env.collect dated them): each run is kept, the last-dated one current, none twice."""
    path = records.record_path(tmp_path, "cpu-t", "timing", "resnet18_pascal")
    recs = [_rec(f"2026-12-01T10:00:00.{i:03d}+00:00" if i % 2 else "2026-12-01T10:00:00+00:00") for i in range(7)]
    # Forked from a fresh single-threaded server: a plain fork of this process (which may hold
    # the threads of torch, OpenVINO or Dask) could copy a lock held by one of them and hang.
    with multiprocessing.get_context("forkserver").Pool(7) as pool:
        pool.starmap(records.write_record, [(path, r) for r in recs])
    kept = _runs(path)
    assert sorted(r["env"]["run_id"] for r in kept) == sorted(r["env"]["run_id"] for r in recs)
    assert kept[0]["env"]["date"] == max(r["env"]["date"] for r in recs)  # the newest is current
    assert not _leftovers(tmp_path)


def test_an_older_run_written_later_goes_to_history_and_is_never_listed_twice(tmp_path):
    path = records.record_path(tmp_path, "cpu-t", "timing", "resnet18_pascal")
    new, old = _rec("2026-12-02T10:00:00+00:00"), _rec("2026-12-01T10:00:00+00:00")
    records.write_record(path, new)
    where = records.write_record(path, old)
    assert records.is_history(where) and json.loads(path.read_text()) == new
    records.write_record(path, old)  # imported again: already kept
    assert len(_runs(path)) == 2


def test_a_kill_between_the_history_link_and_the_write_leaves_nothing_behind(tmp_path):
    """A killed writer leaves the earlier run linked in history and a 0-byte temp file:
    the next write neither lists that run twice nor keeps the temp file."""
    path = records.record_path(tmp_path, "cpu-t", "timing", "resnet18_pascal")
    records.write_record(path, _rec("2026-12-01T10:00:00+00:00"))
    hist = records.history_dir(path)
    hist.mkdir(parents=True)
    os.link(path, hist / "killed.json")  # whatever name the killed writer gave it
    (path.parent / f".{path.name}.k1ll3d00.tmp").write_bytes(b"")
    os.link(path, path.parent / f".{path.name}.b4ckup00.bak.tmp")  # the earlier record's second name
    records.write_record(path, _rec("2026-12-02T10:00:00+00:00"))
    assert len(list(hist.glob("*.json"))) == 1 and len(_runs(path)) == 2
    assert not _leftovers(tmp_path)


# --------------------------------------------------------------------------- OSError while writing

def test_a_full_disk_while_writing_the_txt_puts_the_earlier_record_back(tmp_path):
    path = records.record_path(tmp_path, "cpu-t", "timing", "resnet18_pascal")
    first = _rec("2026-12-01T10:00:00+00:00")
    records.write_record(path, first)

    def disk_full() -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x.txt"))

    with pytest.raises(WriteFailed, match=r"cannot write '.*x\.txt': No space left on device"):
        records.write_record(path, _rec("2026-12-02T10:00:00+00:00"), then=disk_full)
    assert json.loads(path.read_text()) == first  # the record and its .txt: both as before
    assert not records.history_dir(path).exists() and not _leftovers(tmp_path)


def test_an_oserror_in_a_run_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch, keep_threads):
    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "r.json"))

    monkeypatch.setattr(run, "save", full)
    monkeypatch.setattr(run, "measure", lambda *_a: {"kind": "timing"})  # the write is what fails
    argv = ["--model", "resnet18", "--device", "cpu", "--size", "32x32", "--iters", "1", "--warmup", "0",
            "--tag", "t", "--out-dir", str(tmp_path)]
    assert cli.main("timer", "resnet", argv) == WriteFailed.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "r.json" in err and "No space left on device" in err


# --------------------------------------------------------------------------- paths from input

@pytest.mark.parametrize("tag", ["../../escape", "..", ".", " ", "/abs", "a/b", ""])
def test_a_tag_that_is_not_a_plain_name_is_refused_before_any_work(tag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main("timer", "resnet", ["--model", "resnet18", "--device", "cpu", "--tag", tag, "--out-dir", str(tmp_path)])
    assert exc.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    assert not list(tmp_path.iterdir())
    with pytest.raises(UserError):
        records.record_path(tmp_path, tag, "timing", "x")


def test_a_symlink_out_of_the_results_folder_is_refused(tmp_path):
    outside, repo = tmp_path / "outside", tmp_path / "repo"
    outside.mkdir()
    (repo / "results" / "records").mkdir(parents=True)
    (repo / "results" / "records" / "cpu-t").symlink_to(outside)
    with pytest.raises(UserError, match="outside"):
        records.record_path(repo / "results", "cpu-t", "timing", "x")
    with pytest.raises(UserError, match="outside"):
        records.write_record(repo / "results" / "records" / "cpu-t" / "timing" / "x.json", _rec())
    stats = repo / "resnet_profiler" / "resnet18_stats"
    stats.mkdir(parents=True)
    (stats / "cpu-t").symlink_to(outside)
    with pytest.raises(UserError, match="outside"):
        cli.write_txt({**_rec(), "_path": str(repo / "resnet18_pascal.json")}, repo)
    assert not list(outside.iterdir())


def _import(argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location("import_records", ROOT / "scripts" / "import_records.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(argv)


@pytest.mark.parametrize("member", ["results/records/../../x.json", "results/records/../reference/seeds.json",
                                    "/tmp/records/cpu-t/timing/x.json", "results/records/cpu-t/../../../x.json"])
def test_import_refuses_members_that_climb_out(member, tmp_path, capsys):
    data = json.dumps(_rec()).encode()
    tgz = tmp_path / "run.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    assert _import([str(tgz), "--results", str(repo / "results")]) == 1
    assert "refused" in capsys.readouterr().err
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [tgz]


def test_import_refuses_a_record_whose_device_tag_climbs_out_and_a_symlinked_member(tmp_path, capsys):
    src = tmp_path / "src" / "results" / "records" / "cpu-t" / "timing"
    src.mkdir(parents=True)
    (src / "a.json").write_text(json.dumps(_rec(tag="../../../escape")))
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(_rec()))
    (src / "b.json").symlink_to(secret)
    results = tmp_path / "results"
    assert _import([str(tmp_path / "src"), "--results", str(results)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "device_tag '../../../escape'" in err and "outside" in err
    assert not results.exists()


# --------------------------------------------------------------------------- the smaller cases

def test_unknown_zoo_models_are_named_with_close_names_before_any_work():
    from common.zoo import driver

    with pytest.raises(UserError, match="'resnet19'.*resnet18.*'no_such_model'|'no_such_model'.*'resnet19'.*resnet18"):
        driver.check_names(["resnet18", "no_such_model", "resnet19"])
    driver.check_names(["resnet18"])


def test_slurm_memory_threads_and_yaml_sizes(tmp_path):
    from common import argtypes
    from common.sweep import plan

    with pytest.raises(argparse.ArgumentTypeError):
        argtypes.memory_amount("lots")
    assert argtypes.memory_amount("64GB") == "64GB"
    with pytest.raises(UserError, match="--threads 100000 is more than"):
        with envmod.cpu_threads(100000):
            pass
    # Refused while parsing, so in one line by every command that runs them (the zoo's and the
    # drivers' refusals were tracebacks, exit 1: scripts/bad_inputs.py found the zoo's).
    from common.zoo import driver

    with pytest.raises(SystemExit) as exc:
        driver.main(["--device", "cpu", "--models", "resnet18", "--threads", "100000", "--out-dir", str(tmp_path / "zoo")])
    assert exc.value.code == 2 and not (tmp_path / "zoo").exists()
    from common import drive

    with pytest.raises(SystemExit) as exc:  # the drivers' was a traceback too (python -m common stats)
        drive.main(["stats", "--model", "resnet18", "--size", "32x32", "--threads", "100000",
                    "--out-dir", str(tmp_path / "stats")])
    assert exc.value.code == 2 and not (tmp_path / "stats").exists()
    with pytest.raises(argparse.ArgumentTypeError, match=r"^100000 is more than the \d+ core\(s\) this process may use"):
        argtypes.threads("100000")
    assert argtypes.threads("1") == 1
    sweep = tmp_path / "s.yaml"
    sweep.write_text("requests:\n  - model: resnet18\n    input: 0x0\ninputs: [512x1024, 010]\n")
    data = plan.load_file(sweep)
    assert data["requests"][0]["input"] == "0x0" and data["inputs"] == ["512x1024", "010"]
    args = argparse.Namespace(file=sweep, models=None, inputs=None, modes=None, kinds=None)
    with pytest.raises(UserError, match="size '0x0' must have positive height and width"):
        plan.tasks_from(argparse.Namespace(**{**{k: None for k in plan.PROTOCOL}, "search_compile": None,
                                              **vars(args), "inputs": ["pascal"]}))


def test_plain_names():
    assert paths.plain("nvidia-h100_80gb.x", "tag") == "nvidia-h100_80gb.x"
    for bad in ("..", ".", "a b", "a/b", "", "x\n"):
        assert paths.plain_problem(bad)


def test_a_zoo_record_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    from common.zoo import driver

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "zoo.json"))

    monkeypatch.setattr(driver, "sweep_record", full)
    monkeypatch.setattr(driver, "model_steps", lambda *_a: [])  # no measuring: the record is what fails
    code = driver.main(["--device", "cpu", "--models", "resnet18", "--inputs", "32x32", "--what", "memory",
                        "--out-dir", str(tmp_path)])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == WriteFailed.exit_code and len(err) == 1 and "zoo.json" in err[0] and "No space" in err[0]
