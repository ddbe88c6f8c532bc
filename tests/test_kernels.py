"""Kernel-time arithmetic on a fake profiler trace: union of overlapping kernels,
attribution to units by launch time, a functional gap, a kernel outside every unit,
kernel coverage, busy fraction and the launch-bound mark. CPU only, no profiler run."""
from __future__ import annotations

import pytest

from common.measure import kernels
from common.measure.kernels import ITERATION, UNIT_PREFIX, Interval


def _x(cat: str, name: str, ts: float, dur: float, corr: int | None = None) -> dict:
    e = {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur}
    if corr is not None:
        e["args"] = {"correlation": corr}
    return e


def _kernel(ts: float, dur: float, launch_ts: float, corr: int) -> list[dict]:
    return [_x("cuda_runtime", "cudaLaunchKernel", launch_ts, 2, corr), _x("kernel", f"k{corr}", ts, dur, corr)]


def fake_trace(offset: float = 0.0) -> list[dict]:
    """One iteration [0, 1000] us on the host. Units: a [10, 100], gap (functional) between,
    b [200, 300], c [300, 400] (module units). Kernels (device us):
    - launched in a: 100-150 and 140-160 on another stream (overlap: union 60);
    - launched in the gap (t=150): 200-230 (30) -> the functional unit;
    - launched in b: 300-340 (40);  in c: 400-410 (10), memset 410-415 (5);
    - launched at t=5, before a, no functional unit there: 90-95 (5) -> outside every unit.
    Whole iteration union: 90-95, 100-160, 200-230, 300-340, 400-415 = 5+60+30+40+15 = 150."""
    o = offset
    ev = [_x("user_annotation", ITERATION, o + 0, 1000),
          _x("user_annotation", UNIT_PREFIX + "a", o + 10, 90),
          _x("user_annotation", UNIT_PREFIX + "b", o + 200, 100),
          _x("user_annotation", UNIT_PREFIX + "c", o + 300, 100)]
    ev += _kernel(o + 100, 50, o + 20, 1) + _kernel(o + 140, 20, o + 30, 2)
    ev += _kernel(o + 200, 30, o + 150, 3)
    ev += _kernel(o + 300, 40, o + 210, 4) + _kernel(o + 400, 10, o + 310, 5)
    ev += [_x("cuda_runtime", "cudaMemsetAsync", o + 320, 2, 6), _x("gpu_memset", "Memset", o + 410, 5, 6)]
    ev += _kernel(o + 90, 5, o + 5, 7)
    return [{**e, "args": {"correlation": e["args"]["correlation"] + int(offset)}} if "args" in e else e for e in ev]


UNITS = [("a", True), ("gap", False), ("b", True), ("c", True)]


def test_union_counts_overlap_once():
    assert kernels.union_us([Interval(0, 10), Interval(5, 15), Interval(20, 25), Interval(21, 22)]) == 20
    assert kernels.union_us([]) == 0


def test_attribution_units_gap_overlap_and_outside():
    ops, ranges = kernels.parse(fake_trace())
    got = kernels.attribute(ops, ranges, UNITS)
    assert got["iterations"] == [pytest.approx(0.150)]
    units = {k: v[0] for k, v in got["units"].items()}
    assert units == pytest.approx({"a": 0.060, "gap": 0.030, "b": 0.040, "c": 0.015})
    assert got["outside_units"] == [pytest.approx(0.005)]
    s = kernels.summary(got, wall_median_ms=0.300)
    assert s["coverage"] == pytest.approx(145 / 150)  # the kernel outside every unit is the missing 5 us
    assert s["busy"] == pytest.approx(0.5) and s["launch_bound"] is True
    assert s["outside_units_ms"] == pytest.approx(0.005)


def test_a_functional_first_unit_takes_the_launches_before_the_first_module():
    ops, ranges = kernels.parse(fake_trace())
    got = kernels.attribute(ops, ranges, [("stem", False)] + UNITS)
    s = kernels.summary(got, wall_median_ms=0.150)
    assert s["coverage"] == pytest.approx(1.0)
    assert s["units_ms"]["stem"] == pytest.approx(0.005)
    assert s["busy"] == pytest.approx(1.0) and s["launch_bound"] is False


def test_iterations_are_separated_and_whole_model_needs_no_units():
    ops, ranges = kernels.parse(fake_trace() + fake_trace(offset=10_000))
    got = kernels.attribute(ops, ranges, [])
    assert got["iterations"] == [pytest.approx(0.150)] * 2 and got["units"] == {}
    s = kernels.summary(got, wall_median_ms=0.160)
    assert s["profiled_iters"] == 2 and s["kernel_ms"] == pytest.approx(0.150)
    assert s["busy"] == pytest.approx(0.150 / 0.160) and s["launch_bound"] is False
    assert "coverage" not in s


def test_top_kernels_sum_each_name_per_iteration_overlaps_included():
    ops, ranges = kernels.parse(fake_trace() + fake_trace(offset=10_000))
    s = kernels.summary(kernels.attribute(ops, ranges, []), wall_median_ms=0.2)
    top = {k["name"]: k for k in s["top_kernels"]}
    # k1 (50 us) and k2 (20 us) overlap on two streams: each keeps its own duration
    assert [k["name"] for k in s["top_kernels"]][:2] == ["k1", "k4"]
    assert top["k1"]["ms_per_iter"] == pytest.approx(0.050) and top["k2"]["ms_per_iter"] == pytest.approx(0.020)
    assert top["Memset"]["calls_per_iter"] == 1 and len(s["top_kernels"]) == 7
    assert s["kernel_names_per_iter"] == 7


def test_a_device_op_without_its_launch_is_counted_apart():
    ev = fake_trace() + [_x("kernel", "orphan", 500, 100, 999)]
    ops, ranges = kernels.parse(ev)
    got = kernels.attribute(ops, ranges, UNITS)
    assert got["unlaunched"] == 1 and got["iterations"] == [pytest.approx(0.150)]


def test_an_empty_trace_says_so():
    s = kernels.summary(kernels.attribute([], [], []), 1.0)
    assert s["kernel_ms"] is None and s["busy"] is None and s["profiled_iters"] == 0


def test_unit_ranges_reach_a_real_cpu_profiler_trace():
    """The hooks' record_function ranges and the iteration range appear in a real
    trace as user annotations (CPU activity only: no kernels here)."""
    import torch
    from torch import nn
    from common.registry import Unit

    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    units = [Unit("l0", "0"), Unit("act", "1"), Unit("l2", "2")]
    hooks = kernels.UnitRanges(model, units)
    x = torch.randn(1, 4)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with torch.autograd.profiler.record_function(ITERATION):
            model(x)
    hooks.remove()
    names = {e.name for e in prof.events()}
    assert {ITERATION, UNIT_PREFIX + "l0", UNIT_PREFIX + "act", UNIT_PREFIX + "l2"} <= names
    model(x)  # hooks removed: no error, no range left open


def _gpu_records(tmp_path, busy: float, with_graph: bool):
    """A layers-like GPU timing record (and maybe its CUDA-graph sibling) in a records folder."""
    import copy
    import json

    from common import inputs as inp
    from common.measure import timing
    from common.spec import Request

    req = Request.of("timing", "resnet18", inp.resolve("pascal", None), "cuda:0", clock="cuda-event", repeats=3)
    t = timing.Measurement([2.0, 2.0, 2.1], 1, "cuda-event", 25, 3,
                           extra={"clocks": {"start": {"sm_clock_mhz": 1980.0, "mem_clock_mhz": 3201.0,
                                                       "power_w": 120.0, "temperature_c": 40.0, "source": "nvml"},
                                             "end": {"sm_clock_mhz": 1980.0, "mem_clock_mhz": 3201.0,
                                                     "power_w": 150.0, "temperature_c": 42.0, "source": "nvml"}}}
                           ).to_dict()
    from common.measure import repeats

    rep = repeats.summarize([t, {**t, "stats": {**t["stats"], "median_ms": 2.3}}, t])
    result = {"timing": t, "repeats": {**rep, "fresh_process": False},
              "kernels": {"kernel_ms": 2.0 * busy, "busy": busy, "launch_bound": busy < kernels.LAUNCH_BOUND_BUSY,
                          "launch_bound_below": kernels.LAUNCH_BOUND_BUSY, "method": kernels.METHOD},
              "cost": {"macs": 1, "params": 1, "units": []}, "gflops": 1.0, "achieved_tflops": 0.5}
    env = {"device_name": "NVIDIA H200", "device_type": "cuda", "driver": "580", "host_cpu": "x", "threads": 16,
           "torch": "2", "cuda": "13", "cudnn": 9, "python": "3.12", "date": "2026-12-01T00:00:00+00:00"}
    folder = tmp_path / "records" / "nvidia-h200" / "timing"
    folder.mkdir(parents=True)
    rec = {"schema": 2, "kind": "timing", "device_tag": "nvidia-h200", "request": req.to_dict(), "env": env,
           "result": result, "superseded": None}
    (folder / f"{req.stem}.json").write_text(json.dumps(rec))
    if with_graph:
        g = req.with_mode({"cuda_graph": True})
        grec = copy.deepcopy(rec)
        grec["request"] = g.to_dict()
        grec["result"]["timing"]["stats"]["median_ms"] = 0.9
        (folder / f"{g.stem}.json").write_text(json.dumps(grec))
    return {**rec, "_path": str(folder / f"{req.stem}.json")}


def test_txt_of_a_launch_bound_run_quotes_the_measured_graph_latency(tmp_path):
    from common.render import txt

    text = txt.text_for(_gpu_records(tmp_path, busy=0.4, with_graph=True))
    assert "LAUNCH-BOUND" in text and "Busy" in text and "40.0%" in text
    assert "Measured fp32 + CUDA graph: 0.900 ms median (resnet18_pascal_graph)" in text
    assert "SM 1980 -> 1980 MHz" in text and "power 120 -> 150 W" in text
    assert "Repeats   3 on fresh instances" in text and "UNSTABLE ACROSS RUNS" in text


def test_txt_without_a_graph_record_says_so_and_a_busy_run_has_no_remedy(tmp_path):
    from common.render import txt

    assert "No CUDA-graph record" in txt.text_for(_gpu_records(tmp_path / "a", busy=0.5, with_graph=False))
    assert "LAUNCH-BOUND" not in txt.text_for(_gpu_records(tmp_path / "b", busy=0.95, with_graph=False))


def _profiled(precision: str, wall: float, top: list[tuple[str, float]]) -> dict:
    req = {"model": "resnet50", "input": {"name": "cityscapes", "height": 1024, "width": 2048, "batch": 1},
           "precision": precision, "channels_last": True, "cudnn_benchmark": False, "cuda_graph": True,
           "compile": None, "runtime": "torch"}
    kern = {"kernel_ms": sum(ms for _, ms in top), "busy": 0.99, "kernel_names_per_iter": 2,
            "top_kernels": [{"name": n, "ms_per_iter": ms, "calls_per_iter": 1} for n, ms in top]}
    return {"kind": "timing", "device_tag": "nvidia-h200", "_path": f"r/timing/resnet50_{precision}.json",
            "request": req, "result": {"repeats": {"median_of_medians_ms": wall}, "kernels": kern}}


def test_kernels_page_sets_fp16_beside_bf16_of_the_same_mode(tmp_path):
    from common.render import kernel_table

    recs = [_profiled("fp16", 6.0, [("conv_f16_slow", 5.0), ("relu", 0.8)]),
            _profiled("bf16", 3.0, [("conv_bf16_fast", 2.0), ("relu", 0.9)])]
    page = kernel_table.outputs(tmp_path, recs)[tmp_path / kernel_table.PAGE]
    assert "fp16 against bf16, channels-last + CUDA graph**: wall 2.00x, kernel time 2.00x" in page
    side = next(ln for ln in page.splitlines() if "conv_f16_slow" in ln and "conv_bf16_fast" in ln)
    assert [c.strip() for c in side.strip("|").split("|")] == ["`conv_f16_slow`", "5.000", "1", "`conv_bf16_fast`",
                                                               "2.000", "1"]
    assert kernel_table.outputs(tmp_path, [{**recs[0], "_history": True}]) == {}
