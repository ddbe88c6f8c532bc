"""scripts/import_records.py: another machine's records come in through write_record,
so the run they replace is kept under history/ and nothing else is taken."""
import importlib.util
import io
import json
import tarfile
from pathlib import Path

from common import records

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("import_records", ROOT / "scripts" / "import_records.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rec(date: str, ms: float, tag: str = "gpu", kind: str = "timing") -> dict:
    return {"schema": records.SCHEMA, "kind": kind, "device_tag": tag, "request": {"model": "m"},
            "env": {"date": date}, "code_version": {"commit": None}, "result": {"ms": ms}, "superseded": None}


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_import_keeps_the_replaced_run_and_skips_what_is_not_a_current_record(tmp_path):
    results = tmp_path / "results"
    main = records.record_path(results, "gpu", "timing", "m_pascal")
    main.parent.mkdir(parents=True)
    main.write_text(records.dumps(_rec("2026-11-30T00:00:00+00:00", 1.0)))
    new = json.dumps(_rec("2026-12-01T00:00:00+00:00", 2.0)).encode()
    tgz = _tar(tmp_path / "run.tgz", {
        "results/records/gpu/timing/m_pascal.json": new,
        "results/records/gpu/timing/m_city.json": new,
        "results/records/gpu/timing/history/m_pascal/20261129T000000Z.json": new,  # the other machine's history
        "results/sweep_copy/records/gpu/timing/x.json": new,
        "results/records/gpu/timing/broken.json": b"{not json"})
    assert _script().main([str(tgz), "--results", str(results)]) == 1  # one unreadable member named
    assert json.loads(main.read_text())["result"]["ms"] == 2.0
    (kept,) = records.history_dir(main).glob("*.json")
    assert json.loads(kept.read_text())["result"]["ms"] == 1.0
    assert (main.parent / "m_city.json").exists() and not (main.parent / "broken.json").exists()
    assert not (results / "sweep_copy").exists()


def test_dry_run_writes_nothing(tmp_path):
    tgz = _tar(tmp_path / "run.tgz", {"results/records/gpu/timing/m.json":
                                      json.dumps(_rec("2026-12-01T00:00:00+00:00", 2.0)).encode()})
    assert _script().main([str(tgz), "--results", str(tmp_path / "r"), "--dry-run"]) == 0
    assert not (tmp_path / "r").exists()


def test_a_results_folder_imports_like_an_archive_of_the_repository(tmp_path):
    other = tmp_path / "other" / "results"
    src = records.record_path(other, "cpu", "job", "profile_quick")
    src.parent.mkdir(parents=True)
    src.write_text(records.dumps(_rec("2026-12-01T00:00:00+00:00", 3.0, "cpu", "job")))
    (records.history_dir(src)).mkdir(parents=True)
    (records.history_dir(src) / "20261130T000000Z.json").write_text(records.dumps(_rec("2026-11-30", 1.0)))
    results = tmp_path / "results"
    assert _script().main([str(other), "--results", str(results)]) == 0
    assert json.loads(records.record_path(results, "cpu", "job", "profile_quick").read_text())["result"]["ms"] == 3.0
    assert not (results / "records" / "cpu" / "job" / "history").exists()


def test_an_unreadable_archive_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "run.tgz"
    bad.write_text("not an archive")
    assert _script().main([str(bad), "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err and not (tmp_path / "r").exists()


def test_compact_records_rounds_samples_and_keeps_everything_else(tmp_path, capsys):
    from common import compact as mod

    rec = _rec("2026-12-01T00:00:00+00:00", 1.5)
    rec["result"] = {"ms": 0.06867200136184692, "samples_ms": [0.06867200136184692, 1.0000004],
                     "units": [{"samples_ms": [2.00000049]}], "shape": [1, 3, 8, 8]}
    path = tmp_path / "records" / "gpu" / "timing" / "m.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec, indent=1))
    assert mod.main([str(tmp_path)]) == 0
    assert "1 record(s) rewritten" in capsys.readouterr().out
    got = json.loads(path.read_text())
    assert got["result"]["samples_ms"] == [0.068672, 1.0] and got["result"]["units"][0]["samples_ms"] == [2.0]
    assert got["result"]["ms"] == 0.06867200136184692  # only samples are rounded
    assert {k: v for k, v in got.items() if k != "result"} == {k: v for k, v in rec.items() if k != "result"}
    assert mod.main([str(tmp_path)]) == 0 and "0 record(s) rewritten" in capsys.readouterr().out
