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
