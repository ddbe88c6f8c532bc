"""common.render: pages, README block and .txt files from the fixture records;
selection rules (newest, default mode, clock, superseded, modes), bad records,
--check on the committed repository.

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
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import records  # noqa: E402
from common.render import markdown, pages, readme, select, tables, txt  # noqa: E402
from common.render import figures as figs  # noqa: E402
from common.render.__main__ import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = FIXTURES / "golden_tables.md"
H100, CPU = "nvidia-h100-80gb-hbm3", "cpu-amd-epyc"
BAD = {  # fixture file -> why load_records / collect must skip it
    "cpu-amd-epyc/timing/resnet34_cityscapes.json": "unreadable",
    "cpu-amd-epyc/timing/resnet34_pascal.json": "schema 1",
    "cpu-amd-epyc/memory/resnet101_pascal.json": "missing field 'static'",
}


@pytest.fixture(scope="module")
def res() -> select.Results:
    return select.collect(FIXTURES)


@pytest.fixture(scope="module")
def seeds() -> tables.Seeds:
    return tables.Seeds.load(tables.SEEDS)


def document(res: select.Results, seeds: tables.Seeds) -> str:
    """Every page and README's block, as one text (what the golden file holds)."""
    plan = figs.plan(res)
    parts = [f"<!-- {p.name} -->\n{text}" for p, text in pages.outputs(res, seeds, Path("results"), plan).items()]
    return "\n".join(parts + ["<!-- README block -->\n" + readme.block(res, seeds, "results", plan)])


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A writable root: fixture records under results/, a README with empty markers."""
    shutil.copytree(FIXTURES / "records", tmp_path / "results" / "records")
    (tmp_path / "README.md").write_text(f"{readme.BEGIN}\n{readme.END}\n")
    return tmp_path


@pytest.fixture(scope="module")
def rendered_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture records rendered once (figures are the slow part); tests copy it."""
    root = tmp_path_factory.mktemp("rendered")
    shutil.copytree(FIXTURES / "records", root / "results" / "records")
    (root / "README.md").write_text(f"{readme.BEGIN}\n{readme.END}\n")
    assert main(_args(root)) == 1  # the bad records are named and left out; everything else is written
    for name in BAD:  # the copies hold good records only: they are clean (no problem) and what was written
        (root / "results" / "records" / name).unlink()  # is up to date (a second build would only redraw figures)
    assert main(_args(root) + ["--check"]) == 0
    return root


@pytest.fixture
def rendered(rendered_once: Path, tmp_path: Path) -> Path:
    shutil.copytree(rendered_once, tmp_path / "root")
    return tmp_path / "root"


def _args(root: Path) -> list[str]:
    return ["--root", str(root)]


def _row_cells(text: str, model: str, n: int = 0) -> list[str]:
    """Cells of the n-th table line whose first cell is the model's bold name."""
    lines = [ln for ln in text.splitlines() if ln.startswith(f"| **{model}**")]
    return [c.strip() for c in lines[n].strip("|").split("|")]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n#", start + len(heading))
    return text[start:] if nxt < 0 else text[start:nxt]


def _fixture(rel: str) -> dict:
    return json.loads((FIXTURES / "records" / rel).read_text())


def _put(root: Path, rel: str, rec: dict) -> None:
    path = root / "records" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))


# --------------------------------------------------------------------------- golden


def test_pages_match_golden(res: select.Results, seeds: tables.Seeds) -> None:
    text = document(res, seeds)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
        pytest.skip(f"regenerated {GOLDEN}; review the diff")
    assert text == GOLDEN.read_text(encoding="utf-8"), "pages changed: regenerate deliberately (see module doc)"


def test_output_is_ascii_and_deterministic(res: select.Results, seeds: tables.Seeds) -> None:
    text = document(res, seeds)
    text.encode("ascii")
    assert text == document(select.collect(FIXTURES), seeds)


# --------------------------------------------------------------------------- selection


def test_newest_record_wins_in_fixtures(res: select.Results, seeds: tables.Seeds) -> None:
    # resnet18_cityscapes_old.json (7.481 ms, 2026-11-21) sorts after the newer file: date must decide.
    row = res.get("timing", H100, "resnet18", "cityscapes")
    assert row.values["mean_ms"] == 6.214 and row.day == "2026-11-22"
    h100 = _section(pages.latency(res, seeds, []), "### NVIDIA H100 80GB HBM3")
    cells = _row_cells(h100, "ResNet-18", 0)
    assert cells[5] == "6.214" and cells[-2] == "2026-11-22"
    assert "7.481" not in h100


@pytest.mark.parametrize("older_first", [True, False])
def test_newest_wins_whatever_the_file_order(tmp_path: Path, older_first: bool) -> None:
    src = _fixture(f"{CPU}/timing/resnet18_pascal.json")
    old, new = copy.deepcopy(src), copy.deepcopy(src)
    old["env"]["date"], old["result"]["timing"]["stats"]["mean_ms"] = "2026-01-02T00:00:00+00:00", 111.0
    # Dates compare in UTC: 09:00+05:00 is 04:00Z, newer than 00:00Z.
    new["env"]["date"], new["result"]["timing"]["stats"]["mean_ms"] = "2026-01-02T09:00:00+05:00", 222.0
    first, second = (old, new) if older_first else (new, old)
    _put(tmp_path, f"{CPU}/timing/a_resnet18_pascal.json", first)
    _put(tmp_path, f"{CPU}/timing/b_resnet18_pascal.json", second)
    row = select.collect(tmp_path).get("timing", CPU, "resnet18", "pascal")
    assert row.values["mean_ms"] == 222.0 and row.day == "2026-01-02"


def test_only_default_mode_records_are_used(res: select.Results) -> None:
    # fp16 variant, perf_counter clock on a GPU, custom 64x64 size, a fastest search: all ignored.
    assert res.get("timing", H100, "resnet50", "pascal").values["mean_ms"] == 1.884
    assert res.get("timing", H100, "resnet50", "cityscapes").values["mean_ms"] == 17.385
    assert not any(k[3] not in markdown.PRESETS for k in res.rows)
    assert {k[0] for k in res.rows} == {"timing", "memory", "layers"}


def test_superseded_record_loses_to_a_current_one_and_is_marked_alone(tmp_path: Path) -> None:
    cur = _fixture(f"{CPU}/timing/resnet18_pascal.json")
    old = copy.deepcopy(cur)
    old["superseded"] = "timer fixed after this run"
    old["env"]["date"] = "2027-01-01T00:00:00+00:00"  # newer, but superseded
    old["result"]["timing"]["stats"]["mean_ms"] = 999.0
    _put(tmp_path, f"{CPU}/timing/resnet18_pascal.json", cur)
    _put(tmp_path, f"{CPU}/timing/resnet18_pascal_old.json", old)
    assert select.collect(tmp_path).get("timing", CPU, "resnet18", "pascal").values["mean_ms"] != 999.0
    (tmp_path / "records" / CPU / "timing" / "resnet18_pascal.json").unlink()
    res = select.collect(tmp_path)
    assert res.get("timing", CPU, "resnet18", "pascal").superseded == "timer fixed after this run"
    dev = res.devices[0]
    text = tables.latency_table(res, dev)
    assert "**ResNet-18** (superseded)" in text and "timer fixed after this run" in text
    rec = json.loads((tmp_path / "records" / CPU / "timing" / "resnet18_pascal_old.json").read_text())
    rec["_path"] = str(tmp_path / "records" / CPU / "timing" / "resnet18_pascal_old.json")
    assert txt.text_for(rec).startswith("# SUPERSEDED: timer fixed after this run")


# --------------------------------------------------------------------------- defects of issue 11, point 8


def test_modes_full_protocol_record_beats_a_newer_search_sample(res: select.Results) -> None:
    # The bf16 channels-last record (full protocol, 14:19) is older than the fastest search (16:38)
    # that sampled the same mode for about 1 s: the full record must be shown.
    full = _fixture(f"{H100}/timing/resnet50_cityscapes_bf16-cl.json")
    search = _fixture(f"{H100}/timing/resnet50_cityscapes_fastest.json")
    assert markdown.utc(full["env"]["date"]) < markdown.utc(search["env"]["date"])
    sample = next(c for c in search["result"]["fastest"]["candidates"] if c["variant"] == "bf16-cl")
    entry = res.modes[(H100, "resnet50", "cityscapes", "bf16-cl")]
    assert entry.median_ms == full["result"]["timing"]["stats"]["median_ms"] != sample["median_ms"]
    assert entry.search_iters is None
    row = next(ln for ln in tables.modes_table(res, H100).splitlines() if "| eager bf16 channels-last " in ln)
    assert "search sample" not in row and f"{sample['median_ms']:.3f}" not in row


def test_modes_search_sample_only_where_no_full_record(res: select.Results) -> None:
    entry = res.modes[(H100, "resnet50", "cityscapes", "fp16-cl")]  # only the search sampled it
    assert entry.search_iters and "(search sample:" in tables.modes_table(res, H100)
    picked = res.modes[(H100, "resnet50", "cityscapes", "bf16-cl-cudnnbench-graph")]
    assert picked.fastest and picked.search_iters is None


def test_malformed_training_record_is_a_problem_and_the_build_goes_on(
        rendered: Path, seeds: tables.Seeds, capsys: pytest.CaptureFixture) -> None:
    rel = f"{CPU}/train-timing/resnet18_imagenet_b8_train.json"
    rec = _fixture(rel)
    del rec["result"]["train"]["total"]
    _put(rendered / "results", rel, rec)
    capsys.readouterr()
    assert main(_args(rendered) + ["--check"]) == 1  # no traceback: the page would change, nothing else
    err = capsys.readouterr().err
    assert re.search(rf"skipped \S*{re.escape(rel)}: malformed \(missing field 'total'\)", err)
    assert "training.md is not up to date" in err
    training = pages.training(select.collect(rendered / "results"), seeds)
    assert "## NVIDIA H100 80GB HBM3" in training  # the other device's rows are still there
    assert "## AMD EPYC" not in training


def test_training_tables_use_the_default_clock_only(tmp_path: Path, seeds: tables.Seeds) -> None:
    rel = f"{H100}/train-timing/resnet18_imagenet_b8_train.json"
    rec = _fixture(rel)
    check = copy.deepcopy(rec)
    check["request"]["clock"] = "perf_counter"  # a GPU cross-check run, newer
    check["env"]["date"] = "2027-01-01T00:00:00+00:00"
    check["result"]["train"]["total"]["stats"]["mean_ms"] = 999.0
    _put(tmp_path, rel, rec)
    _put(tmp_path, f"{H100}/train-timing/resnet18_imagenet_b8_train_perfcounter.json", check)
    res = select.collect(tmp_path)
    assert res.train[(H100, "resnet18", "imagenet_b8")]["request"]["clock"] == "cuda-event"
    assert "999.00" not in pages.training(res, seeds)


def test_summary_shows_mean_median_std_and_fps_from_the_mean(res: select.Results) -> None:
    text = tables.summary_table(res, "cityscapes")
    header = [c.strip() for c in text.splitlines()[0].strip("|").split("|")]
    dev = "H100 80GB HBM3"
    assert header[1:5] == [f"Mean (ms) [{dev}]", f"Median (ms) [{dev}]", f"Std (ms) [{dev}]",
                           f"FPS (from mean) [{dev}]"]
    row = res.get("timing", H100, "resnet18", "cityscapes").values
    cells = _row_cells(text, "ResNet-18")
    assert cells[1:5] == [f"{row['mean_ms']:.3f}", f"{row['median_ms']:.3f}", f"{row['std_ms']:.3f}",
                          f"{1000 / row['mean_ms']:.2f}"]
    assert "FPS = 1000 / mean latency" in tables.SUMMARY_NOTE


def test_protocol_lists_numbers_as_numbers() -> None:
    assert markdown.distinct(["300", "5", "25", "5"]) == "5, 25, 300"


# --------------------------------------------------------------------------- bad records


def test_bad_records_are_reported_and_skipped(res: select.Results, seeds: tables.Seeds) -> None:
    for name, why in BAD.items():
        assert any(p.startswith(str(FIXTURES / "records" / name)) and why in p for p in res.problems), name
    assert len(res.problems) == len(BAD)
    text = document(res, seeds)
    assert "222.222" not in text  # the schema-1 record's mean
    assert res.get("timing", CPU, "resnet34", "pascal") is None
    assert res.get("memory", CPU, "resnet101", "pascal") is None
    summary = _section(pages.latency(res, seeds, []), "### Cityscapes")
    assert set(_row_cells(summary, "ResNet-34")[1:]) == {markdown.MISSING}


def test_non_numeric_field_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    rec = _fixture(f"{CPU}/timing/resnet18_pascal.json")
    rec["result"]["timing"]["stats"]["mean_ms"] = "fast"
    _put(tmp_path, f"{CPU}/timing/resnet18_pascal.json", rec)
    res = select.collect(tmp_path)
    assert not res.rows and len(res.problems) == 1 and "mean_ms is 'fast', not a number" in res.problems[0]


def test_same_device_model_in_two_folders_gets_distinct_labels(tmp_path: Path) -> None:
    rec = _fixture(f"{H100}/timing/resnet18_pascal.json")
    for tag in ("h100-a", "h100-b"):
        _put(tmp_path, f"{tag}/timing/resnet18_pascal.json", {**rec, "device_tag": tag})
    labels = [d.short for d in select.collect(tmp_path).devices]
    assert labels == ["H100 80GB HBM3 (h100-a)", "H100 80GB HBM3 (h100-b)"]


def test_main_names_bad_records_on_stderr(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(_args(workdir) + ["--check"]) == 1
    err = capsys.readouterr().err
    for name in BAD:
        assert re.search(rf"^common\.render: skipped \S*{re.escape(name)}: ", err, re.M), name


# --------------------------------------------------------------------------- the command


def test_render_writes_everything_then_check_passes(rendered: Path, capsys: pytest.CaptureFixture) -> None:
    for page in ("latency", "memory", "modes", "training"):
        assert (rendered / "results" / f"{page}.md").is_file()
    timing_txt = rendered / "resnet_profiler" / "resnet18_stats" / CPU / "resnet18_pascal.txt"
    assert timing_txt.read_text().startswith("# Inference time, whole model")
    head = "# Project \u2208 caf\u00e9\r\nintro line with CRLF\r\n\n## Results\n\n".encode()
    tail = "\n\nafter the section, no final newline \u2713".encode()
    rd = rendered / "README.md"
    rd.write_bytes(head + f"{readme.BEGIN}\nstale tables\n{readme.END}".encode() + tail)
    os.chmod(rd, 0o644)
    capsys.readouterr()
    assert main(_args(rendered) + ["--check"]) == 1
    mtime = timing_txt.stat().st_mtime_ns
    assert main(_args(rendered)) == 0
    assert timing_txt.stat().st_mtime_ns == mtime  # unchanged files are not rewritten
    assert re.search(r"^common\.render: 1 of \d+ files written", capsys.readouterr().err, re.M)
    data = rd.read_bytes()
    assert data.startswith(head + readme.BEGIN.encode()) and data.endswith(readme.END.encode() + tail)
    assert b"stale tables" not in data and b"| **ResNet-18**" in data
    assert rd.stat().st_mode & 0o777 == 0o644  # the temp file's 0600 is not carried over
    links = re.findall(r"\]\(([^)]+\.png)\)", data.decode())
    assert links and all((rd.parent / link).is_file() for link in links)
    assert main(_args(rendered) + ["--check"]) == 0
    rd.write_bytes(b"new first line\n" + data)  # text outside the markers is the user's
    assert main(_args(rendered) + ["--check"]) == 0
    edited = rd.read_bytes().replace(b"| **ResNet-18**", b"| **ResNet-81**", 1)
    rd.write_bytes(edited)
    capsys.readouterr()
    assert main(_args(rendered) + ["--check"]) == 1 and rd.read_bytes() == edited
    assert "README.md is not up to date" in capsys.readouterr().err


def test_check_names_a_stale_page_a_stale_txt_and_a_missing_figure(rendered: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    workdir = rendered
    (workdir / "results" / "modes.md").write_text("old\n")
    structure = next((workdir / "resnet_profiler" / "memory_reports" / CPU).glob("*.txt"))
    structure.write_text("edited\n")
    figure = next((workdir / "results" / "figures").glob("*.png"))
    figure.unlink()
    capsys.readouterr()
    assert main(_args(workdir) + ["--check"]) == 1
    err = capsys.readouterr().err
    for path in ("modes.md", structure.name, figure.name):
        assert f"{path} is not up to date" in err


def test_txt_write_is_what_render_writes(rendered: Path, tmp_path: Path) -> None:
    workdir = rendered
    recs, _ = records.load_records(workdir / "results")
    other = tmp_path / "other"
    kinds = set()
    for rec in recs:
        if rec["kind"] in txt.TXT_KINDS and txt.path_for(rec, workdir).exists():  # malformed ones: no .txt
            path = txt.write(rec, other)
            assert path == txt.path_for(rec, other)
            assert path.read_bytes() == txt.path_for(rec, workdir).read_bytes()
            kinds.add(rec["kind"])
    assert {"timing", "layers", "memory", "train-timing"} <= kinds


def test_txt_paths_per_kind() -> None:
    def rec(kind: str, model: str = "resnet50", tag: str = H100, stem: str = "s") -> dict:
        return {"kind": kind, "device_tag": tag, "request": {"model": model}, "_path": f"/x/{stem}.json"}

    root = Path("/r")
    assert txt.path_for(rec("timing"), root) == root / f"resnet_profiler/resnet50_stats/{H100}/s.txt"
    assert txt.path_for(rec("train-timing"), root) == root / f"resnet_profiler/resnet50_stats/{H100}/s.txt"
    assert txt.path_for(rec("layers"), root) == root / f"resnet_profiler/resnet50_stats/{H100}/layers/s.txt"
    assert txt.path_for(rec("train-layers", "vgg16"), root) == root / f"vgg_profiler/vgg16_stats/{H100}/layers/s.txt"
    assert txt.path_for(rec("memory", "xception"), root) == root / f"xception_profiler/memory_reports/{H100}/s.txt"
    assert txt.path_for(rec("structure", "mobilenet_v2", "any"), root) == root / "mobilenetv2_profiler/model_structures/s.txt"
    assert txt.path_for(rec("layer-bench", "layers", CPU, "large"), root) == root / f"layer_profiler/layer_stats/{CPU}/large.txt"


@pytest.mark.parametrize("text", [
    "# no markers at all\n",
    f"only the end {readme.END}\n",
    f"{readme.END}\nreversed\n{readme.BEGIN}\n",
    f"{readme.BEGIN}\n{readme.BEGIN}\n{readme.END}\n",
])
def test_bad_markers_one_error_line(workdir: Path, capsys: pytest.CaptureFixture, text: str) -> None:
    rd = workdir / "README.md"
    rd.write_text(text)
    assert main(_args(workdir)) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("common.render: skipped")]
    assert len(err) == 1 and err[0].startswith("common.render: error:") and readme.BEGIN in err[0]
    assert rd.read_text() == text
    assert not (workdir / "results" / "latency.md").exists()


def test_missing_records_folder_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(_args(tmp_path)) == 2
    assert capsys.readouterr().err.count("\n") == 1


# --------------------------------------------------------------------------- the committed repository


def _tracked_outputs() -> list[str]:
    out = subprocess.run(["git", "ls-files", "README.md", "results", "*_profiler/*.txt"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def test_committed_outputs_are_up_to_date_and_an_altered_one_is_named(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """What CI runs: the committed tables, .txt files and README match the committed records.
    A copy of every tracked output and record, one table altered and one figure removed:
    --check names those two and nothing else, so the rest of what is committed is up to date
    (one full render: this check and the committed tree's own are the same work)."""
    for rel in _tracked_outputs():
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst)
    page = tmp_path / "results" / "latency.md"
    page.write_text(page.read_text().replace("| **ResNet-50**", "| **ResNet-05**", 1))
    pareto = next((tmp_path / "results" / "figures").glob("zoo_pareto_*.png"))  # --check lists them undrawn
    pareto.unlink()
    assert main(_args(tmp_path) + ["--check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"common.render: {path} is not up to date; run python -m common.render" for path in (page, pareto)]


# --------------------------------------------------------------------------- reference figures


def test_seed_reference_is_complete_and_consistent(seeds: tables.Seeds) -> None:
    from common import registry

    assert set(seeds.devices) == {"rtx-2080-ti", "titan-xp", "xeon-gold-5218"}
    for dev in seeds.devices:
        for model in registry.BACKBONES:
            for preset in markdown.PRESETS:
                row = seeds.latency[(dev, model, preset)]
                # A transcription check: the seeds' FPS is 1000 / mean, truncated or rounded to 2 decimals.
                assert abs(row["fps"] - 1000 / row["mean_ms"]) <= max(0.011, 0.01 * row["fps"]), (dev, model, preset)
                assert row["sources"] and set(row["sources"]) <= set(seeds.sources)
    assert len(seeds.memory) == len(registry.BACKBONES) * len(markdown.PRESETS)


def test_cudnn_version_formats() -> None:
    assert markdown.cudnn(91300) == "9.13.0"
    assert markdown.cudnn(8902) == "8.9.2"
    assert markdown.cudnn(None) == "none"


def test_segmentation_variants_never_take_the_backbone_row():
    from common.render import select

    rec = {"kind": "timing", "request": {"model": "resnet50", "input": {"batch": 1, "name": "cityscapes"},
                                         "variant": "", "depth": 1, "clock": "cuda-event", "output_stride": 8},
           "env": {"device_type": "cuda"}, "result": {}}
    assert not select.is_default_mode(rec)
    assert select.is_default_mode({**rec, "request": {**rec["request"], "output_stride": 32}})


def test_a_zoo_model_is_on_the_zoo_page_not_in_the_catalogue_tables():
    from common.render import select

    rec = {"kind": "timing", "request": {"model": "efficientnet_b0", "input": {"batch": 1, "name": "cityscapes"},
                                         "variant": "", "depth": 1, "clock": "cuda-event"},
           "env": {"device_type": "cuda"}, "result": {}}
    assert not select.is_default_mode(rec)
    assert select.is_default_mode({**rec, "request": {**rec["request"], "model": "resnet50"}})


def test_committed_txt_files_are_readable():
    """Every .txt fits 160 columns; memory reports lead with their summary (memlab's
    listing last); CPU files name no CUDA/cuDNN versions or cuDNN flags."""
    root = Path(__file__).resolve().parent.parent
    files = [p for p in root.glob("*_profiler/**/*.txt")]
    assert files
    for p in files:
        text = p.read_text()
        assert max(len(line) for line in text.splitlines()) <= 160, p
        if "/memory_reports/" in str(p):
            assert text.index("## Summary") < text.index("## Tensors alive before inference"), p
        if "[cpu]" in text.split("\n# date:")[0]:
            head = text.split("\n# date:")[0]
            assert "cuDNN" not in head and "cudnn." not in head, p
