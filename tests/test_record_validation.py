"""Records are validated in one place when loaded (common.records.Record): a record
with impossible numbers, or a sample count that does not match its stated count, is
named with its path and the reason and never published (no row, no .txt); render and
--check exit 1 on it; import refuses it in one line; a renderer bug is never a
"skipped" line."""
from __future__ import annotations

import copy
import importlib.util
import json
import math
import shutil
from pathlib import Path

import pytest

from common import records
from common.render import readme, select, txt
from common.render.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "records"
H100 = "nvidia-h100-80gb-hbm3"
REL = f"{H100}/timing/resnet18_pascal.json"


def _good() -> dict:
    return json.loads((FIXTURES / REL).read_text())


def _root(tmp_path: Path, rec: dict) -> Path:
    """A repository root holding ``rec`` as its one record and a README with the markers."""
    path = tmp_path / "results" / "records" / REL
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))  # NaN as JSON's non-standard NaN, as Python writes it
    (tmp_path / "README.md").write_text(f"{readme.BEGIN}\n{readme.END}\n")
    return tmp_path


def _with_median(value: float) -> dict:
    rec = _good()
    rec["result"]["timing"]["stats"]["median_ms"] = value
    return rec


@pytest.mark.parametrize("value, why", [(float("nan"), "nan, not a finite number"),
                                        (-5.0, "-5.0, a negative time"),
                                        (float("inf"), "inf, not a finite number")])
def test_an_impossible_median_is_named_and_never_published(tmp_path, capsys, value, why) -> None:
    root = _root(tmp_path, _with_median(value))
    assert main(["--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"result.timing.stats.median_ms is {why}" in err and REL in err
    latency = (root / "results" / "latency.md").read_text()
    assert "H100" not in latency and "nan" not in latency and "-5.000" not in latency  # no row of it
    assert "nan" not in (root / "README.md").read_text()
    assert not list(root.rglob("resnet18_pascal.txt"))  # no .txt
    assert main(["--root", str(root), "--check"]) == 1


def test_a_good_record_renders_and_checks_clean(tmp_path, capsys) -> None:
    root = _root(tmp_path, _good())
    assert main(["--root", str(root)]) == 0
    assert "H100" in (root / "results" / "latency.md").read_text()
    assert list(root.rglob("resnet18_pascal.txt"))
    assert main(["--root", str(root), "--check"]) == 0


def test_samples_that_do_not_match_their_stated_count_are_invalid() -> None:
    rec = _good()
    rec["result"]["timing"].update(samples_ms=[1.0, 1.1], iters=3)
    with pytest.raises(records.InvalidRecord, match=r"result\.timing: \d+ samples_ms but iters \d+"):
        records.Record.from_dict(rec)
    rec["result"]["timing"].update(samples_ms=[-0.5, 1.0, 1.1])
    with pytest.raises(records.InvalidRecord, match=r"samples_ms\[0\] is -0.5, a negative time"):
        records.Record.from_dict(rec)


@pytest.mark.parametrize("change, why", [
    (lambda r: r.pop("result"), "missing result"),
    (lambda r: r.update(schema=1), "schema 1, expected"),
    (lambda r: r.update(request=[]), "request is list"),
    (lambda r: r.update(model="resnet"), "model is str"),
])
def test_layout_is_checked_in_the_one_loader(tmp_path, change, why) -> None:
    rec = _good()
    change(rec)
    root = _root(tmp_path, rec)
    recs, problems = records.load_records(root / "results")
    assert not recs and len(problems) == 1 and why in problems[0] and problems[0].startswith(str(root))
    with pytest.raises(records.InvalidRecord, match=why):
        records.load_record(root / "results" / "records" / REL)


def test_the_record_class_keeps_every_field_and_the_model_metadata() -> None:
    from common import catalogue

    rec = {**_good(), "model": {"family": "resnet", "top1": {"top1": 69.758}}, "run_id": "abc"}
    loaded = records.Record.from_dict(rec, "/x/y.json")
    assert loaded.model["family"] == "resnet" and loaded.extra == {"run_id": "abc"}
    assert loaded.to_dict() == {**rec, "_path": "/x/y.json"}
    assert catalogue.top1_of(loaded.to_dict()) == 69.758  # the stored figure wins


def test_old_records_get_their_metadata_from_the_torch_free_table() -> None:
    from common import catalogue

    old = _good()
    assert "model" not in old and catalogue.family_of(old) == "resnet"
    assert catalogue.family_of({"request": {"model": "convnext_tiny"}}) == "zoo"
    assert catalogue.family_of({"request": {"model": "convnext_tiny"}, "model": {"family": "x"}}) == "x"
    assert catalogue.display("legacy_seresnet50") == "legacy_seresnet50 (timm)"
    assert catalogue.display("timm/resnet18") == "timm/resnet18" and catalogue.display("alexnet") == "alexnet"
    assert catalogue.top1("alexnet")["top1"] == pytest.approx(56.522)
    assert catalogue.top1("xception")["weights"].startswith("legacy_xception")


def test_a_renderer_bug_ends_the_build_instead_of_a_skipped_line(tmp_path, monkeypatch) -> None:
    root = _root(tmp_path, _good())

    def broken(rec: dict) -> str:
        return [][1]  # IndexError: a bug, not a malformed record

    monkeypatch.setattr(txt, "text_for", broken)
    with pytest.raises(IndexError):
        main(["--root", str(root)])
    monkeypatch.undo()
    monkeypatch.setattr(select, "to_row", lambda rec: rec.no_such_attribute)
    with pytest.raises(AttributeError):
        main(["--root", str(root), "--check"])


def _import_script():
    spec = importlib.util.spec_from_file_location("import_records", ROOT / "scripts" / "import_records.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_import_refuses_an_impossible_record_in_one_line(tmp_path, capsys) -> None:
    src = tmp_path / "other" / "results" / "records" / REL
    src.parent.mkdir(parents=True)
    src.write_text(json.dumps(_with_median(float("nan"))))
    good = src.with_name("resnet18_cityscapes.json")
    good.write_text(json.dumps(_good()))
    results = tmp_path / "results"
    assert _import_script().main([str(tmp_path / "other" / "results"), "--results", str(results)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "median_ms is nan" in err and "Traceback" not in err
    assert not (results / "records" / REL).exists() and (results / "records" / good.relative_to(src.parents[3] / "records")).exists()


def test_a_written_record_is_what_the_loader_accepts(tmp_path) -> None:
    """What a run writes (records.dumps) loads back unchanged, numbers and all."""
    rec = copy.deepcopy(_good())
    path = tmp_path / "r.json"
    path.write_text(records.dumps(rec))
    back = records.load_record(path)
    assert back == {**rec, "_path": str(path)}
    assert math.isfinite(back["result"]["timing"]["stats"]["median_ms"])
    shutil.rmtree(tmp_path)


def test_a_record_changed_in_place_is_validated_anew_and_callers_get_their_own_copy(tmp_path) -> None:
    """Loading keeps what it validated (a render loads the same records several times):
    an edit that keeps the file's size and time must still be seen, and what one caller
    changes in its records never reaches the next caller."""
    import os

    path = tmp_path / "records" / REL
    path.parent.mkdir(parents=True)
    good = json.dumps(_with_median(1.5))
    path.write_text(good)
    stat = path.stat()
    (rec,), problems = records.load_records(tmp_path)
    assert not problems and rec["result"]["timing"]["stats"]["median_ms"] == 1.5
    rec["result"]["timing"]["stats"]["median_ms"] = 7.0  # a caller's change to its own copy
    assert records.load_records(tmp_path)[0][0]["result"]["timing"]["stats"]["median_ms"] == 1.5
    path.write_text(good.replace('"median_ms": 1.5', '"median_ms": -15', 1))  # the same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    recs, (problem,) = records.load_records(tmp_path)
    assert not recs and problem.startswith(str(path)) and "median_ms is -15, a negative time" in problem
