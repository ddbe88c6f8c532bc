"""results/timer_check.md: both kinds of timer cross-check, rendered from their records."""
from common.render import checks


def _rec(rows, fresh=None, tag="gpu", path="/r/a.json"):
    req = {"kind": "timer-check", "warmup": 5, "iters": 30, "max_seconds": None, "clock": "perf_counter",
           "min_run_time_s": 3.0, "threads": 2, "fresh_process_rounds": fresh}
    return {"kind": "timer-check", "device_tag": tag, "request": req, "superseded": None, "_path": path,
            "env": {"date": "2026-12-01T00:00:00+00:00", "device_name": "Box"}, "code_version": {"commit": "abc1234"},
            "result": {"agreement": 0.03, "rows": rows}}


def test_same_process_and_fresh_process_checks_each_get_their_table():
    same = _rec([{"model": "resnet18", "input": "pascal", "ours_median_ms": 100.0, "benchmark_median_ms": 95.0,
                  "ratio": 100 / 95, "agrees": False, "layers_coverage": None}])
    fresh = _rec([{"model": "resnet50", "input": "pascal", "rounds": 4, "ours_median_ms": 200.0,
                   "benchmark_median_ms": 199.0, "ratio": 200 / 199, "agrees": True, "ours_spread": 0.05,
                   "benchmark_spread": 0.07, "paired_ratios": [0.98, 1.02, 1.0, 1.01]}], fresh=4, path="/r/b.json")
    text = checks.markdown([same, fresh, {**fresh, "_history": True}])
    assert text.count("## gpu: same process") == 1 and text.count("## gpu: fresh processes") == 1
    assert "1.053" in text and "NO" in text  # the same-process ratio, outside 3%
    assert "1.005" in text and "0.980 - 1.020" in text and "2 threads" in text
