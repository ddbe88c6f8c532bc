"""Derived figures (common/derive.py), by hand: rates, share of peak, ridge, roofline, coverage."""
import math

import pytest

from common import derive

PEAKS = {"matmul_tflops": {"fp32": 100.0, "bf16": 400.0}, "copy_gbs": 1000.0}


def test_mib_is_two_to_the_twentieth():
    assert derive.MIB == 1_048_576


def test_tflops_by_hand():
    assert derive.tflops(2e12, 1000.0) == pytest.approx(2.0)  # 2 TFLOP in 1 s
    assert derive.tflops(173_408_256, 0.5) == pytest.approx(0.346816512)


def test_gbs_is_decimal_gigabytes_per_second():
    assert derive.gbs(2 * 2**30, 10.0) == pytest.approx(214.7483648)  # 2 GiB in 10 ms
    assert derive.gbs(1e9, 1000.0) == pytest.approx(1.0)


@pytest.mark.parametrize("ms", [0.0, -1.0, float("nan"), float("inf"), None])
def test_rates_without_a_usable_time_are_none(ms):
    assert derive.tflops(1e12, ms) is None
    assert derive.gbs(1e9, ms) is None


def test_fraction_of_peak_per_precision():
    assert derive.fraction_of_peak(PEAKS, "fp32", 25.0) == pytest.approx(0.25)
    assert derive.fraction_of_peak(PEAKS, "bf16", 100.0) == pytest.approx(0.25)
    assert derive.fraction_of_peak(PEAKS, "fp16", 25.0) is None  # never measured: no made-up figure
    assert derive.fraction_of_peak(None, "fp32", 25.0) is None
    assert derive.fraction_of_peak(PEAKS, "fp32", None) is None


def test_ridge_point_by_hand():
    assert derive.ridge_flop_per_byte(PEAKS, "fp32") == pytest.approx(100.0)  # 100e12 / 1000e9
    assert derive.ridge_flop_per_byte(PEAKS, "bf16") == pytest.approx(400.0)
    assert derive.ridge_flop_per_byte(PEAKS, "fp16") is None


def test_roofline_memory_bound_unit_by_hand():
    # 1 GFLOP over 100 MB: 10 FLOP/B, below the ridge of 100 FLOP/B.
    row = derive.roofline(10**9, 10**8, 1.0, PEAKS, "fp32")
    assert row["intensity"] == pytest.approx(10.0)
    assert row["achieved_tflops"] == pytest.approx(1.0)
    assert row["bound"] == "memory"
    # Attainable at 10 FLOP/B: 1000 GB/s x 10 = 10 TFLOP/s; achieved 1 -> 10%.
    assert row["fraction_of_roof"] == pytest.approx(0.1)


def test_roofline_compute_bound_unit_by_hand():
    row = derive.roofline(10**12, 10**9, 20.0, PEAKS, "fp32")  # 1000 FLOP/B, 50 TFLOP/s
    assert row["bound"] == "compute"
    assert row["fraction_of_roof"] == pytest.approx(0.5)


def test_roofline_without_peaks_has_no_bound():
    row = derive.roofline(10**9, 10**8, 1.0, None, "fp32")
    assert "bound" not in row and "fraction_of_roof" not in row and row["intensity"] == pytest.approx(10.0)


def test_roofline_zero_median_gives_none_not_an_exception():
    """A unit timed at 0 ms (below the clock's resolution) used to raise in fraction_of_roof."""
    row = derive.roofline(10**9, 10**8, 0.0, PEAKS, "fp32")
    assert row["achieved_tflops"] is None and row["fraction_of_roof"] is None
    assert row["bound"] == "memory"  # the intensity does not depend on the time


def test_roofline_of_a_unit_without_bytes_or_flops():
    row = derive.roofline(0, 0, 1.0, PEAKS, "fp32")
    assert row["intensity"] is None and "bound" not in row and row["achieved_tflops"] == 0.0


def test_coverage_by_hand():
    assert derive.coverage([1.0, 2.0, 1.5], 5.0) == pytest.approx(0.9)
    assert derive.coverage([3.0, 3.0], 5.0) == pytest.approx(1.2)  # above 1 is reported, not clipped
    assert derive.coverage([1.0], 0.0) is None
    assert math.isclose(derive.coverage([], 2.0), 0.0)


def test_kernel_coverage_is_against_the_unhooked_whole_model():
    result = {"kernels": {"kernel_ms_mean": 2.0}, "kernel_coverage": 1.0,
              "units": [{"kernel_ms": 0.5}, {"kernel_ms": 1.45}]}
    assert derive.kernel_coverage(result) == pytest.approx(0.975)
    result["units"].append({"kernel_ms": None})  # a unit without a kernel time: no figure, not a wrong one
    assert derive.kernel_coverage(result) is None
    assert derive.kernel_coverage({"units": [{"kernel_ms": 1.0}]}) is None  # CPU: no kernel times
