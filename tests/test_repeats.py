"""Repeats and their spread, the warm-up's minimum time, CPU environment facts,
the timer flags, and the kernel attribution on a real (CPU) profiler trace of a
real model with kernels synthesized from its ops. CPU, in process, fast."""
from __future__ import annotations

import json

import pytest
import torch

from common import cli, env, inputs, parsers, registry
from common import run as runmod
from common.measure import kernels, repeats, timing
from common.spec import Request


def _run(median: float, n: int = 5) -> dict:
    return timing.Measurement([median] * n, 1, "perf_counter", 0, n).to_dict()


def test_repeats_ten_percent_apart_are_unstable_even_when_each_is_tight():
    got = repeats.summarize([_run(10.0), _run(11.0), _run(10.5)])
    assert all(not r["stats"]["noisy"] for r in got["runs"])  # each run is tight
    assert got["median_of_medians_ms"] == 10.5 and got["spread"] == pytest.approx(1.0 / 10.5)
    assert got["unstable"] is True and got["representative"] == 2 and got["n"] == 3


def test_close_repeats_are_stable_and_one_repeat_has_no_spread():
    got = repeats.summarize([_run(10.0), _run(10.2), _run(10.1)])
    assert got["unstable"] is False and got["spread"] == pytest.approx(0.2 / 10.1)
    one = repeats.summarize([_run(7.0)])
    assert one["spread"] is None and one["unstable"] is False and one["representative"] == 0
    assert repeats.default_repeats("cuda:0") == 3 and repeats.default_repeats("cpu") == 1


def test_busy_is_against_the_median_of_medians():
    result = {"kernels": {"kernel_ms": 4.0}}
    runmod._finish_repeats([_run(10.0), _run(5.0), _run(6.0)], result)
    runmod.run_kernels.busy(result)
    assert result["timing"]["stats"]["median_ms"] == 6.0  # the representative repeat's samples
    assert result["kernels"]["busy"] == pytest.approx(4 / 6) and result["kernels"]["launch_bound"] is True


def test_warmup_lasts_its_minimum_time_on_a_fake_clock():
    t = [0.0]
    now = lambda: t[0]  # noqa: E731

    def fn():
        t[0] += 0.125  # each call takes 1/8 s of fake time (exact in binary)

    clock = timing.MarkClock(timing.HostMarks())
    m = timing.run_loop(fn, clock, 2, 3, now=now, warmup_s=1.0)
    assert m.extra["warmup_iters_run"] == 8 and m.extra["warmup_seconds"] == pytest.approx(1.0)
    assert len(m.samples_ms) == 3
    m = timing.run_loop(fn, clock, 20, 3, now=now, warmup_s=1.0)  # the count already lasts longer
    assert m.extra["warmup_iters_run"] == 20
    m = timing.run_loop(fn, clock, 0, 3, now=now, warmup_s=1.0)  # --warmup 0: no warm-up at all
    assert "warmup_iters_run" not in m.extra


def test_clock_probe_read_at_start_and_end_of_the_timed_loop():
    reads = []
    m = timing.run_loop(lambda: None, timing.MarkClock(timing.HostMarks()), 1, 2,
                        probe=lambda: reads.append(1) or {"n": len(reads)})
    assert m.to_dict()["clocks"] == {"start": {"n": 1}, "end": {"n": 2}}


def test_cpu_env_facts_present():
    e = env.collect(torch.device("cpu"))
    for key in ("threads", "interop_threads", "cpu_affinity", "cpu_affinity_count", "cpu_governor"):
        assert key in e
    assert e["cpu_affinity_count"] >= 1 and isinstance(e["cpu_governor"], str)


def test_governor_read_where_exposed(tmp_path):
    for c in range(2):
        d = tmp_path / f"cpu{c}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text("performance\n")
    assert env.cpu_governor(str(tmp_path)).startswith("performance")
    assert env.cpu_governor(str(tmp_path / "none")) == "unreadable"


def test_timer_flags_reach_the_request():
    p = parsers.model("timer", None)
    cpu = cli.request_from_args(p.parse_args(["--model", "resnet18", "--size", "32x32"]), "timer",
                                torch.device("cpu"))
    assert (cpu.repeats, cpu.fresh_process, cpu.warmup_s) == (1, False, timing.WARMUP_MIN_S)
    args = p.parse_args(["--model", "resnet18", "--size", "32x32", "--repeats", "4", "--fresh-process",
                         "--warmup-seconds", "0"])
    req = cli.request_from_args(args, "timer", torch.device("cpu"))
    assert (req.repeats, req.fresh_process, req.warmup_s) == (4, True, 0.0)
    assert req.stem == "resnet18_32x32"  # the stem does not name the protocol
    with pytest.raises(cli.UserError):
        cli.request_from_args(p.parse_args(["--model", "resnet18", "--size", "32x32", "--layers",
                                            "--fresh-process"]), "timer", torch.device("cpu"))
    old = {k: v for k, v in req.to_dict().items() if k not in ("repeats", "fresh_process", "warmup_s", "protocol")}
    assert Request.from_dict(old).repeats == 1  # a record made before these fields reads back


def test_layers_on_the_cpu_repeat_and_call_a_short_reference_unreliable(tmp_path):
    req = Request.of("layers", "resnet18", inputs.resolve(None, "32x32", 1), "cpu", clock="perf_counter",
                  warmup=1, iters=3, repeats=2)
    rec = runmod.measure(req, runmod.Session(torch.device("cpu"), tmp_path))
    r = rec["result"]
    assert r["repeats"]["n"] == 2 and [len(x["samples_ms"]) for x in r["repeats"]["runs"]] == [3, 3]
    assert r["coverage_reliable"] is False and r["coverage_min_samples"] == 10
    assert "kernels" not in r and "cpu_affinity" in rec["env"]
    assert "timing" in runmod.timing_record({**rec, "_path": "x"})["result"]


def _synth_trace(fn, device, iters=kernels.PROFILED_ITERS):
    """A real CPU profiler trace of ``fn`` (unit and iteration ranges included), with a
    fake launch + kernel for every compute op, as CUPTI would give on a GPU."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            with torch.autograd.profiler.record_function(kernels.ITERATION):
                fn()
    path = "/tmp/_bp_trace_test.json"
    prof.export_chrome_trace(path)
    with open(path) as f:
        events = json.load(f)["traceEvents"]
    compute = ("aten::conv2d", "aten::batch_norm", "aten::relu_", "aten::max_pool2d", "aten::add_",
               "aten::adaptive_avg_pool2d", "aten::linear")
    out = list(events)
    for i, e in enumerate(e for e in events if e.get("cat") == "cpu_op" and e.get("name") in compute):
        out.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": e["ts"], "dur": 1,
                    "args": {"correlation": i}})
        out.append({"ph": "X", "cat": "kernel", "name": e["name"], "ts": e["ts"] + 5000, "dur": max(e["dur"], 1),
                    "args": {"correlation": i}})
    return out


def test_per_unit_kernel_coverage_on_a_real_model_trace(monkeypatch):
    monkeypatch.setattr(kernels, "trace", _synth_trace)
    model = registry.build("resnet18", "cpu")
    x = torch.randn(1, 3, 32, 32)
    units = registry.units("resnet18", model, 1)
    with torch.inference_mode():
        got = kernels.profile(lambda: model(x), torch.device("cpu"), None, model, units)
    assert got["profiled_iters"] == kernels.PROFILED_ITERS and got["kernel_ms"] > 0
    assert 0.98 <= got["coverage"] <= 1.02
    assert set(got["units_ms"]) == {u.label for u in units} and got["units_ms"]["conv1"] > 0


def _tiny(**kw) -> Request:
    return Request.of("timing", "resnet18", inputs.resolve(None, "32x32", 1), "cpu", clock="perf_counter",
                   warmup=1, iters=3, **kw)


def test_a_fresh_process_repeat_returns_its_childs_record():
    """The process boundary, once: python -m common.run measures into a temp folder."""
    rec = repeats.fresh_process_run(_tiny().to_dict(), "cpu-test")
    assert rec["kind"] == "timing" and rec["device_tag"] == "cpu-test"
    assert len(rec["result"]["timing"]["samples_ms"]) == 3


def test_fresh_process_repeats_assemble_the_record(tmp_path, monkeypatch):
    seen = []

    def in_process(request: dict, tag):  # the child's work, without the process
        seen.append(request)
        req = Request.from_dict(request)
        return runmod.measure(req, runmod.Session(torch.device("cpu"), tmp_path / "child", tag))

    monkeypatch.setattr(repeats, "fresh_process_run", in_process)
    rec = runmod.measure(_tiny(repeats=2, fresh_process=True), runmod.Session(torch.device("cpu"), tmp_path))
    assert len(seen) == 2 and all(s["repeats"] == 1 and not s["fresh_process"] for s in seen)
    assert rec["result"]["repeats"]["n"] == 2 and rec["request"]["fresh_process"] is True
