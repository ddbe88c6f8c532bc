"""Execution modes: the measured-peak arithmetic, the per-unit roofline and
--mode fastest's search (on the CPU, with a short candidate list)."""
import json

import pytest
import torch

from common import cli, inputs
from common.measure import execution, peak
from common.spec import RunSpec

PEAKS = {"matmul_tflops": {"fp32": 100.0}, "copy_gbs": 1000.0, "env": {"date": "2026-11-23"}}


def test_roofline_memory_bound_unit_by_hand():
    # 1 GFLOP over 100 MB: 10 FLOP/B, below the ridge of 100e12 / 1000e9 = 100 FLOP/B.
    row = peak.roofline(10**9, 10**8, 1.0, PEAKS, "fp32")
    assert row["intensity"] == pytest.approx(10.0)
    assert row["achieved_tflops"] == pytest.approx(1.0)
    assert row["bound"] == "memory"
    # Attainable at 10 FLOP/B: 1000 GB/s x 10 = 10 TFLOP/s; achieved 1 -> 10%.
    assert row["fraction_of_roof"] == pytest.approx(0.1)


def test_roofline_compute_bound_unit_by_hand():
    row = peak.roofline(10**12, 10**9, 20.0, PEAKS, "fp32")  # 1000 FLOP/B, 50 TFLOP/s
    assert row["bound"] == "compute"
    assert row["fraction_of_roof"] == pytest.approx(0.5)


def test_roofline_without_peaks_has_no_bound():
    row = peak.roofline(10**9, 10**8, 1.0, None, "fp32")
    assert "bound" not in row and row["intensity"] == pytest.approx(10.0)


def test_fraction_of_peak_per_precision():
    assert peak.fraction(PEAKS, "fp32", 25.0) == pytest.approx(0.25)
    assert peak.fraction(PEAKS, "bf16", 25.0) is None  # never measured: no made-up figure
    assert peak.fraction(None, "fp32", 25.0) is None


def test_peak_cli_writes_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(peak, "MATMUL_N", {"cpu": 64, "cuda": 64})
    monkeypatch.setattr(peak, "COPY_BYTES", {"cpu": 2**20, "cuda": 2**20})
    assert peak.main(["--device", "cpu", "--results", str(tmp_path)]) == 0
    (path,) = (tmp_path / "peaks").glob("*.json")
    data = json.loads(path.read_text())
    assert set(data["matmul_tflops"]) == {"fp32"} and data["matmul_tflops"]["fp32"] > 0
    assert data["copy_gbs"] > 0
    assert peak.load(path.stem, tmp_path) == data


def _spec(**kw) -> RunSpec:
    return RunSpec("resnet18", inputs.resolve(None, "32x32"), "cpu", clock="perf_counter", iters=20, **kw)


def test_search_fastest_times_supported_and_names_skipped(monkeypatch):
    monkeypatch.setattr(execution, "FASTEST_CANDIDATES", (
        {"precision": "fp32"},
        {"precision": "fp32", "channels_last": True},
        {"precision": "tf32"},  # CUDA-only: skipped with the reason
        {"precision": "bf16", "channels_last": True, "cuda_graph": True},
    ))
    monkeypatch.setattr(execution, "SEARCH_SECONDS", 0.05)
    picked, info = execution.search_fastest(_spec(), torch.device("cpu"), eager_only=False)
    timed = [c for c in info["candidates"] if "median_ms" in c]
    skipped = {c["mode"]: c["skipped"] for c in info["candidates"] if "skipped" in c}
    assert len(timed) == 2
    assert "tf32" in skipped["eager tf32"] and "CUDA" in skipped["bf16 channels-last + CUDA graph"]
    best = min(timed, key=lambda c: c["median_ms"])
    assert picked.mode == best["mode"] == info["picked"]


def test_search_fastest_with_layers_skips_graphs(monkeypatch):
    monkeypatch.setattr(execution, "FASTEST_CANDIDATES", (
        {"precision": "fp32"}, {"precision": "fp32", "compile": "default"}))
    monkeypatch.setattr(execution, "SEARCH_SECONDS", 0.05)
    picked, info = execution.search_fastest(_spec(), torch.device("cpu"), eager_only=True)
    assert picked.compile is None
    assert "hooks" in info["candidates"][1]["skipped"]


def test_fastest_and_roofline_reach_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(execution, "FASTEST_CANDIDATES", ({"precision": "fp32"},))
    monkeypatch.setattr(execution, "SEARCH_SECONDS", 0.05)
    (tmp_path / "results" / "peaks").mkdir(parents=True)
    (tmp_path / "results" / "peaks" / "t.json").write_text(json.dumps(PEAKS))
    argv = ["--model", "resnet18", "--size", "32x32", "--iters", "3", "--warmup", "1", "--device", "cpu",
            "--tag", "t", "--out-dir", str(tmp_path), "--mode", "fastest", "--layers"]
    assert cli.main("timer", "resnet", argv) == 0
    rec = json.loads((tmp_path / "results/records/t/layers/resnet18_32x32_fastest.json").read_text())
    assert rec["result"]["fastest"]["picked"] == "eager fp32"
    assert rec["result"]["fraction_of_peak"] == pytest.approx(rec["result"]["achieved_tflops"] / 100.0)
    conv1 = rec["result"]["units"][0]["roofline"]
    # conv1 at 32x32: input 3x32x32 + weights 9408 + output 64x16x16, fp32.
    assert conv1["bytes"] == (3 * 32 * 32 + 9408 + 64 * 16 * 16) * 4
    assert conv1["bound"] in ("compute", "memory")
    text = (tmp_path / "resnet_profiler/resnet18_stats/t/layers/resnet18_32x32_fastest.txt").read_text()
    assert "Of peak" in text and "FLOP/B" in text
