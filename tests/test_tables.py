"""common.render.tables: tables from the fixture records, README section replacement,
bad records, newest-wins.

The golden file is regenerated deliberately, never by a plain test run:
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_tables.py
then review ``git diff tests/fixtures/golden_tables.md``.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.render import tables  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = FIXTURES / "golden_tables.md"
H100, CPU = "nvidia-h100-80gb-hbm3", "cpu-amd-epyc"
BAD = {  # fixture file -> why load_records / collect must skip it
    "cpu-amd-epyc/timing/resnet34_cityscapes.json": "unreadable",
    "cpu-amd-epyc/timing/resnet34_pascal.json": "schema 2",
    "cpu-amd-epyc/memory/resnet101_pascal.json": "missing field 'static'",
}


@pytest.fixture(scope="module")
def res() -> tables.Results:
    return tables.collect(FIXTURES)


@pytest.fixture(scope="module")
def seeds() -> tables.Seeds:
    return tables.Seeds.load(tables.SEEDS)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A writable copy of the fixture records (main() writes tables.md and figures/ beside them)."""
    shutil.copytree(FIXTURES / "records", tmp_path / "results" / "records")
    return tmp_path


def _row_cells(markdown: str, model: str, n: int = 0) -> list[str]:
    """Cells of the n-th table line whose first cell is the model's bold name."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith(f"| **{model}**")]
    return [c.strip() for c in lines[n].strip("|").split("|")]


def _section(markdown: str, heading: str) -> str:
    start = markdown.index(heading)
    nxt = markdown.find("\n#### ", start + len(heading))
    return markdown[start:] if nxt < 0 else markdown[start:nxt]


# --------------------------------------------------------------------------- golden


def test_tables_match_golden(res: tables.Results, seeds: tables.Seeds) -> None:
    text = tables.tables_document(res, seeds)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
        pytest.skip(f"regenerated {GOLDEN}; review the diff")
    assert text == GOLDEN.read_text(encoding="utf-8"), "tables changed: regenerate deliberately (see module doc)"


def test_output_is_ascii_and_deterministic(res: tables.Results, seeds: tables.Seeds) -> None:
    text = tables.tables_document(res, seeds)
    text.encode("ascii")  # records.write_atomic writes in the locale's encoding
    assert text == tables.tables_document(tables.collect(FIXTURES), seeds)


# --------------------------------------------------------------------------- selection


def test_newest_record_wins_in_fixtures(res: tables.Results, seeds: tables.Seeds) -> None:
    # resnet18_cityscapes_old.json (7.481 ms, 2026-11-21) sorts after the newer file: date must decide.
    row = res.get("timing", H100, "resnet18", "cityscapes")
    assert row.values["mean_ms"] == 6.214 and row.day == "2026-11-22"
    h100 = _section(tables.render(res, seeds, "figures"), "#### NVIDIA H100 80GB HBM3")
    cells = _row_cells(h100, "ResNet-18", 0)
    assert cells[5] == "6.214" and cells[-1] == "2026-11-22"
    assert "7.481" not in h100


@pytest.mark.parametrize("older_first", [True, False])
def test_newest_wins_whatever_the_file_order(tmp_path: Path, older_first: bool) -> None:
    src = json.loads((FIXTURES / "records" / CPU / "timing" / "resnet18_pascal.json").read_text())
    old, new = copy.deepcopy(src), copy.deepcopy(src)
    old["env"]["date"], old["result"]["timing"]["stats"]["mean_ms"] = "2026-01-02T00:00:00+00:00", 111.0
    # Dates compare in UTC: 09:00+05:00 is 04:00Z, newer than 00:00Z.
    new["env"]["date"], new["result"]["timing"]["stats"]["mean_ms"] = "2026-01-02T09:00:00+05:00", 222.0
    folder = tmp_path / "records" / CPU / "timing"
    folder.mkdir(parents=True)
    first, second = (old, new) if older_first else (new, old)
    (folder / "a_resnet18_pascal.json").write_text(json.dumps(first))
    (folder / "b_resnet18_pascal.json").write_text(json.dumps(second))
    row = tables.collect(tmp_path).get("timing", CPU, "resnet18", "pascal")
    assert row.values["mean_ms"] == 222.0  # 04:00Z beats 00:00Z
    assert row.day == "2026-01-02"


def test_only_default_mode_records_are_used(res: tables.Results) -> None:
    keys = set(res.rows)
    # fp16 variant, perf_counter clock on a GPU, custom 64x64 size: all newer or present, all ignored.
    assert res.get("timing", H100, "resnet50", "pascal").values["mean_ms"] == 1.884
    assert res.get("timing", H100, "resnet50", "cityscapes").values["mean_ms"] == 17.385
    assert not any(k[3] not in tables.PRESETS for k in keys)
    assert {k[0] for k in keys} == {"timing", "memory", "layers"}


# --------------------------------------------------------------------------- bad records


def test_bad_records_are_reported_and_skipped(res: tables.Results, seeds: tables.Seeds) -> None:
    for name, why in BAD.items():
        assert any(p.startswith(str(FIXTURES / "records" / name)) and why in p for p in res.problems), name
    assert len(res.problems) == len(BAD)
    text = tables.tables_document(res, seeds)
    assert "222.222" not in text  # the schema-2 record's mean
    assert res.get("timing", CPU, "resnet34", "pascal") is None
    assert res.get("memory", CPU, "resnet101", "pascal") is None
    # ResNet-34 has no usable record on any device: every measured cell of its summary row is empty.
    summary = _section(text, "#### Cityscapes")
    assert set(_row_cells(summary, "ResNet-34")[1:]) == {tables.MISSING}


def test_non_numeric_field_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    rec = json.loads((FIXTURES / "records" / CPU / "timing" / "resnet18_pascal.json").read_text())
    rec["result"]["timing"]["stats"]["mean_ms"] = "fast"
    folder = tmp_path / "records" / CPU / "timing"
    folder.mkdir(parents=True)
    (folder / "resnet18_pascal.json").write_text(json.dumps(rec))
    res = tables.collect(tmp_path)
    assert not res.rows and len(res.problems) == 1 and "mean_ms is 'fast', not a number" in res.problems[0]


def test_same_device_model_in_two_folders_gets_distinct_labels(tmp_path: Path) -> None:
    rec = (FIXTURES / "records" / H100 / "timing" / "resnet18_pascal.json").read_text()
    for tag in ("h100-a", "h100-b"):
        (tmp_path / "records" / tag / "timing").mkdir(parents=True)
        (tmp_path / "records" / tag / "timing" / "resnet18_pascal.json").write_text(rec)
    labels = [d.short for d in tables.collect(tmp_path).devices]
    assert labels == ["H100 80GB HBM3 (h100-a)", "H100 80GB HBM3 (h100-b)"]


def test_main_names_bad_records_on_stderr(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    readme = workdir / "README.md"
    readme.write_text(f"{tables.BEGIN}\n{tables.END}\n")
    assert tables.main(["--results", str(workdir / "results"), "--readme", str(readme), "--check"]) == 1
    err = capsys.readouterr().err
    for name in BAD:
        assert re.search(rf"^common\.tables: skipped \S*{re.escape(name)}: ", err, re.M), name


# --------------------------------------------------------------------------- README and files


def test_readme_section_replaced_rest_byte_identical(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    head = "# Project \u2208 caf\u00e9\r\nintro line with CRLF\r\n\n## Results\n\n".encode()
    tail = "\n\nafter the section, no final newline \u2713".encode()
    readme = workdir / "README.md"
    readme.write_bytes(head + f"{tables.BEGIN}\nstale tables\n{tables.END}".encode() + tail)
    os.chmod(readme, 0o644)
    args = ["--results", str(workdir / "results"), "--readme", str(readme)]

    assert tables.main(args + ["--check"]) == 1  # stale section, no tables.md yet
    assert tables.main(args) == 0
    data = readme.read_bytes()
    assert data.startswith(head + tables.BEGIN.encode()) and data.endswith(tables.END.encode() + tail)
    assert b"stale tables" not in data and b"| **ResNet-18**" in data
    assert readme.stat().st_mode & 0o777 == 0o644  # the temp file's 0600 is not carried over
    # Figure links are relative to the README and point at written PNGs.
    links = re.findall(r"\]\(([^)]+\.png)\)", data.decode())
    assert links and all((readme.parent / link).is_file() for link in links)
    assert (workdir / "results" / "tables.md").read_text() == tables.tables_document(
        tables.collect(workdir / "results"), tables.Seeds.load(tables.SEEDS))

    capsys.readouterr()
    assert tables.main(args + ["--check"]) == 0
    assert tables.main(args) == 0 and readme.read_bytes() == data  # idempotent

    # Text outside the markers is the user's: editing it leaves the tables up to date.
    readme.write_bytes(b"new first line\n" + data)
    assert tables.main(args + ["--check"]) == 0
    # Editing inside the section makes --check fail, without writing anything.
    edited = readme.read_bytes().replace(b"| **ResNet-18**", b"| **ResNet-81**", 1)
    readme.write_bytes(edited)
    assert tables.main(args + ["--check"]) == 1
    assert readme.read_bytes() == edited
    assert "README.md is not up to date" in capsys.readouterr().err


def test_check_fails_when_tables_md_is_stale(workdir: Path) -> None:
    readme = workdir / "README.md"
    readme.write_text(f"{tables.BEGIN}\n{tables.END}\n")
    args = ["--results", str(workdir / "results"), "--readme", str(readme)]
    assert tables.main(args) == 0
    (workdir / "results" / "tables.md").write_text("old\n")
    assert tables.main(args + ["--check"]) == 1


@pytest.mark.parametrize("text", [
    "# no markers at all\n",
    f"only the end {tables.END}\n",
    f"{tables.END}\nreversed\n{tables.BEGIN}\n",
    f"{tables.BEGIN}\n{tables.BEGIN}\n{tables.END}\n",
])
def test_bad_markers_one_error_line(workdir: Path, capsys: pytest.CaptureFixture, text: str) -> None:
    readme = workdir / "README.md"
    readme.write_text(text)
    assert tables.main(["--results", str(workdir / "results"), "--readme", str(readme)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("common.render.tables: skipped")]
    assert len(err) == 1 and err[0].startswith("common.render.tables: error:") and tables.BEGIN in err[0]
    assert readme.read_text() == text
    assert not (workdir / "results" / "tables.md").exists()


def test_missing_records_folder_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert tables.main(["--results", str(tmp_path), "--readme", str(tmp_path / "README.md")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# --------------------------------------------------------------------------- reference figures


def test_seed_reference_is_complete_and_consistent(seeds: tables.Seeds) -> None:
    assert set(seeds.devices) == {"rtx-2080-ti", "titan-xp", "xeon-gold-5218"}
    for dev in seeds.devices:
        for model in tables.models.BACKBONES:
            for preset in tables.PRESETS:
                row = seeds.latency[(dev, model, preset)]
                # A transcription check: the seeds' FPS is 1000 / mean, truncated or rounded to 2 decimals.
                assert abs(row["fps"] - 1000 / row["mean_ms"]) <= max(0.011, 0.01 * row["fps"]), (dev, model, preset)
                assert row["sources"] and set(row["sources"]) <= set(seeds.sources)
    assert len(seeds.memory) == len(tables.models.BACKBONES) * len(tables.PRESETS)


def test_cudnn_version_formats() -> None:
    assert tables._cudnn(91300) == "9.13.0"
    assert tables._cudnn(8902) == "8.9.2"
    assert tables._cudnn(None) == "none"
