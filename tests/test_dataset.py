"""results/data/*.csv and results/index.html: rendered from the records, loadable in one
line, the same numbers as the records, covered by --check; the page offline and small."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import records  # noqa: E402
from common.render import data, page, select  # noqa: E402
from common.render.__main__ import main  # noqa: E402
from tests.test_tables import BAD  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "results" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KEY = ["model", "input", "device", "mode", "runtime"]


def _record(rel: str) -> dict:
    return json.loads((ROOT / rel).read_text())


def test_committed_measurements_load_in_one_line_and_match_their_records() -> None:
    df = pd.read_csv(DATA / "measurements.csv")
    assert not df.duplicated(KEY).any()  # one row per model x input x device x mode x runtime
    assert set(df.runtime) == {"torch"}
    checked = 0
    for device, preset, model in (("nvidia-h200", "cityscapes", "resnet50"), ("nvidia-h200", "imagenet", "convnext_tiny"),
                                  ("cpu-amd-epyc", "pascal", "resnet18")):
        row = df[(df.device == device) & (df.input == preset) & (df.model == model) & (df["mode"] == "eager fp32")]
        assert len(row) == 1, (device, preset, model)
        row = row.iloc[0]
        rec = _record(row.record)
        assert rec["request"]["model"] == model and rec["request"]["input"]["name"] == preset
        assert row.median_ms == pytest.approx(rec["result"]["timing"]["stats"]["median_ms"], rel=1e-6)
        assert row.p90_ms == pytest.approx(rec["result"]["timing"]["stats"]["p90_ms"], rel=1e-6)
        assert row.params_m == pytest.approx(rec["result"]["cost"]["params"] / 1e6, rel=1e-6)
        assert row.gmacs == pytest.approx(rec["result"]["cost"]["macs"] / 1e9, rel=1e-6)
        mem = _record(row.memory_record)
        assert row.static_mib == pytest.approx(mem["result"]["static"]["static_mib"], rel=1e-6)
        if mem["result"]["peak"].get("peak_inference_mib") is not None:
            assert row.peak_mib == pytest.approx(mem["result"]["peak"]["peak_inference_mib"], rel=1e-6)
        assert (ROOT / row.txt).is_file() and (ROOT / row.memory_txt).is_file()
        checked += 1
    assert checked == 3


def test_committed_units_load_in_one_line_and_match_their_record() -> None:
    units = pd.read_csv(DATA / "units.csv")
    mine = units[(units.device == "nvidia-h200") & (units.model == "convnext_tiny") & (units.input == "cityscapes")
                 & (units["mode"] == "eager fp32") & (units.depth == 1)]
    rec = _record(mine.record.iloc[0])
    assert list(mine.unit) == [u["label"] for u in rec["result"]["units"]]
    first = rec["result"]["units"][0]
    assert mine.median_ms.iloc[0] == pytest.approx(first["stats"]["median_ms"], rel=1e-6)
    assert mine.gflop_s.iloc[0] == pytest.approx(first["roofline"]["achieved_tflops"] * 1e3, rel=1e-6)
    assert mine.bound.iloc[0] == first["roofline"]["bound"]
    assert mine.share.sum() == pytest.approx(1.0, rel=1e-5)


def test_fixture_dataset_publishes_the_tables_choice_and_nothing_else() -> None:
    recs, problems = records.load_records(FIXTURES, history=True)
    res = select.select(recs, problems)
    rows = data.measurements(recs, res, ROOT, [])
    full = {k: m for k, m in res.modes.items() if m.search_iters is None}
    assert len(rows) == len(full) > 0
    published = {str(Path(m.path).resolve()) for m in full.values()}
    assert {str((ROOT / r["record"]).resolve()) for r in rows} == published
    # The CSV round-trips: what pandas reads is what the rows hold.
    text = data.to_csv(data.MEASUREMENT_COLUMNS, rows)
    df = pd.read_csv(__import__("io").StringIO(text))
    assert list(df.columns) == list(data.MEASUREMENT_COLUMNS) and len(df) == len(rows)
    assert df.median_ms.tolist() == pytest.approx([r["median_ms"] for r in rows], rel=1e-6)


def test_cells_are_written_plainly() -> None:
    assert [data.cell(v) for v in (None, True, False, 1 / 3, 12, "a,b")] == ["", "true", "false", "0.3333333", "12",
                                                                             "a,b"]


def test_check_reports_a_stale_csv_a_stale_page_and_a_missing_script(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    from common.render import readme

    shutil.copytree(FIXTURES / "records", tmp_path / "results" / "records")
    for name in BAD:  # invalid fixture records make a build exit 1 (test_tables covers that)
        (tmp_path / "results" / "records" / name).unlink()
    (tmp_path / "README.md").write_text(f"{readme.BEGIN}\n{readme.END}\n")
    assert main(["--root", str(tmp_path)]) == 0
    results = tmp_path / "results"
    assert pd.read_csv(results / "data" / "measurements.csv").shape[0] > 0
    assert main(["--root", str(tmp_path), "--check"]) == 0
    csv_path = results / "data" / "measurements.csv"
    csv_path.write_text(re.sub(r",eager fp32,", ",eager fp16,", csv_path.read_text(), count=1))
    (results / "index.html").write_text("<html></html>\n")
    (results / page.PLOTLY).unlink()
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    for name in ("measurements.csv", "index.html", page.PLOTLY):
        assert re.search(rf"{re.escape(name)} is not up to date", err), name
    assert "units.csv" not in err


def test_page_is_offline_small_and_holds_the_csv_rows() -> None:
    html = (ROOT / "results" / "index.html").read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing fetched from elsewhere
    assert re.search(rf"<script src=\"{page.PLOTLY}\"></script>", html)
    payload = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S).group(1))
    df = pd.read_csv(DATA / "measurements.csv")
    assert len(payload["rows"]) == len(df)
    size = sum((ROOT / "results" / f).stat().st_size for f in ("index.html", page.PLOTLY))
    size += sum(p.stat().st_size for p in DATA.glob("*.csv"))
    assert size < 10 * 2 ** 20
    for link in re.findall(r"href=\"([^\"#]+)\"", html):
        assert not link.startswith(("/", "file:")), link


def test_choose_reads_the_dataset_without_torch() -> None:
    code = ("import sys; from common import choose; "
            "rc = choose.main(['--device', 'nvidia-h200', '--input', 'cityscapes', '--max-ms', '10', "
            "'--min-top1', '80', '--mode', 'fastest']); assert rc == 0; assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^\*\s+\S+", out.stdout, re.M)  # at least one Pareto-optimal model, marked


def test_an_output_stride_variant_never_takes_the_backbones_mode_row(tmp_path: Path) -> None:
    """The H200's ResNet-50 eager fp32 row showed the newer output-stride-8 run (64 ms, not 16 ms)."""
    src = FIXTURES / "records" / "nvidia-h100-80gb-hbm3" / "timing" / "resnet50_cityscapes.json"
    backbone = json.loads(src.read_text())
    variant = json.loads(src.read_text())
    variant["request"]["output_stride"] = 8
    variant["env"]["date"] = "2030-01-01T00:00:00+00:00"  # newer: it would win on the date
    variant["result"]["timing"]["stats"]["median_ms"] *= 4
    folder = tmp_path / "records" / "nvidia-h100-80gb-hbm3" / "timing"
    folder.mkdir(parents=True)
    (folder / "resnet50_cityscapes.json").write_text(json.dumps(backbone))
    (folder / "resnet50_cityscapes_os8.json").write_text(json.dumps(variant))
    res = select.collect(tmp_path)
    entry = res.modes[("nvidia-h100-80gb-hbm3", "resnet50", "cityscapes", "")]
    assert entry.path.endswith("resnet50_cityscapes.json")
    assert entry.median_ms == backbone["result"]["timing"]["stats"]["median_ms"]
    recs, _ = records.load_records(tmp_path, history=True)
    rows = data.measurements(recs, res, tmp_path, [])
    assert [r["median_ms"] for r in rows if r["mode"] == "eager fp32"] == [entry.median_ms]
