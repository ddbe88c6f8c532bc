"""Statistics, the timed loop (fake clocks), per-unit hooks, execution modes."""
from __future__ import annotations

import itertools
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from common import derive, inputs
from common.measure import execution, layerwise, timing
from common.errors import UserError
from common.registry import Unit
from common.spec import Request

# --------------------------------------------------------------------------- statistics

SAMPLES = [12.0, 10.0, 11.0, 30.0, 10.5, 10.2, 9.8, 10.1, 10.4, 10.3]


def test_summarize_fixed_samples():
    s = timing.summarize(SAMPLES, batch=1)
    a = np.array(SAMPLES)
    assert s.n == 10
    assert s.mean_ms == pytest.approx(12.43)
    assert s.mean_ms == pytest.approx(a.mean())
    assert s.median_ms == pytest.approx(10.35)
    assert s.min_ms == 9.8 and s.max_ms == 30.0
    assert s.std_ms == pytest.approx(np.std(a, ddof=1))
    assert s.std_ms != pytest.approx(np.std(a, ddof=0))  # sample std, not population std
    assert s.p90_ms == pytest.approx(np.percentile(a, 90))
    assert s.p99_ms == pytest.approx(np.percentile(a, 99))
    assert s.iqr_ms == pytest.approx(np.percentile(a, 75) - np.percentile(a, 25))
    assert s.fps == pytest.approx(1000.0 / 12.43)


def test_fps_scales_with_batch():
    s = timing.summarize([4.0, 4.0, 6.0, 6.0], batch=8)
    assert s.fps == pytest.approx(1000.0 / 5.0 * 8)


def test_single_sample_has_zero_std():
    s = timing.summarize([7.5])
    assert (s.n, s.mean_ms, s.median_ms, s.std_ms, s.p90_ms) == (1, 7.5, 7.5, 0.0, 7.5)


def test_summarize_refuses_no_samples():
    with pytest.raises(ValueError):
        timing.summarize([])


@pytest.mark.parametrize("samples,noisy", [
    ([1.0, 2.0, 3.0, 4.0, 10.0], True),        # IQR 2.0 > 0.3
    ([10.0, 10.1, 10.2, 10.3, 10.4], False),   # IQR 0.2 < 1.02
    ([9.0, 9.5, 10.0, 10.5, 11.0], False),     # IQR 1.0 == 10% of 10.0: not above
    ([9.0, 9.49, 10.0, 10.51, 11.0], True),    # IQR 1.02 > 1.0
])
def test_noisy_flag_is_iqr_above_ten_percent_of_median(samples, noisy):
    s = timing.summarize(samples)
    assert s.noisy is noisy


def test_measurement_dict_keeps_raw_samples():
    m = timing.Measurement([3.0, 1.0, 2.0], batch=2, clock="perf_counter", warmup=4, requested_iters=3)
    d = m.to_dict()
    assert d["samples_ms"] == [3.0, 1.0, 2.0]
    assert d["iters"] == 3 and d["warmup"] == 4 and d["requested_iters"] == 3 and d["clock"] == "perf_counter"
    assert d["stats"]["median_ms"] == 2.0 and d["stats"]["fps"] == pytest.approx(1000.0)


# --------------------------------------------------------------------------- timed loop, fake clock

class FakeClock:
    """stop() returns preset values; counts start/stop calls."""

    name = "fake"

    def __init__(self, values):
        self.values = iter(values)
        self.starts = 0
        self.stops = 0

    def start(self):
        self.starts += 1
        return self.starts

    def stop(self, token):
        assert token == self.starts, "stop() must get the token of the matching start()"
        self.stops += 1
        return next(self.values)

    def sync(self):
        pass


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


def test_run_loop_counts_and_samples():
    fn, clock = Counter(), FakeClock([5.0, 6.0, 7.0, 8.0])
    m = timing.run_loop(fn, clock, warmup=3, iters=4, batch=2)
    assert fn.calls == 3 + 4
    assert clock.starts == clock.stops == 4  # warm-up is not timed
    assert m.samples_ms == [5.0, 6.0, 7.0, 8.0]
    assert (m.warmup, m.requested_iters, m.batch, m.clock) == (3, 4, 2, "fake")
    assert m.stopped_early is False
    assert m.stats.mean_ms == 6.5 and m.stats.fps == pytest.approx(1000 / 6.5 * 2)


def test_run_loop_without_warmup():
    fn = Counter()
    m = timing.run_loop(fn, FakeClock([1.0, 2.0]), warmup=0, iters=2)
    assert fn.calls == 2 and m.samples_ms == [1.0, 2.0]


def _work_clock(fn: Counter, seconds_per_call: float):
    """A fake ``now``: time advances only when ``fn`` runs."""
    return lambda: fn.calls * seconds_per_call


def test_max_seconds_stops_after_min_iters_once_deadline_passed():
    fn = Counter()
    # Each call "takes" 100 s: the 1 s deadline has passed after the first sample.
    m = timing.run_loop(fn, FakeClock(range(1, 100)), warmup=2, iters=50, max_seconds=1.0, min_iters=4,
                        now=_work_clock(fn, 100.0))
    assert m.samples_ms == [1, 2, 3, 4]
    assert m.stopped_early is True
    assert fn.calls == 2 + 4
    assert m.requested_iters == 50


def test_max_seconds_runs_on_until_deadline():
    fn = Counter()
    # 1 s per call, deadline 10 s after the 2 warm-up calls: stops after 10 samples, not at min_iters.
    m = timing.run_loop(fn, FakeClock(range(1, 100)), warmup=2, iters=50, max_seconds=10.0, min_iters=3,
                        now=_work_clock(fn, 1.0))
    assert len(m.samples_ms) == 10
    assert m.stopped_early is True


@pytest.mark.parametrize("min_iters", [1, 5, 9])
def test_max_seconds_never_fewer_than_min_iters(min_iters):
    fn = Counter()
    m = timing.run_loop(fn, FakeClock(range(100)), warmup=0, iters=20, max_seconds=0.001,
                        min_iters=min_iters, now=_work_clock(fn, 1e6))
    assert len(m.samples_ms) == min_iters
    assert m.stopped_early is True


def test_max_seconds_not_reached_runs_all_iters():
    fn = Counter()
    m = timing.run_loop(fn, FakeClock(range(100)), warmup=0, iters=12, max_seconds=5.0, min_iters=2,
                        now=_work_clock(fn, 0.1))
    assert len(m.samples_ms) == 12 and m.stopped_early is False


def test_deadline_at_last_iteration_is_not_early():
    fn = Counter()
    m = timing.run_loop(fn, FakeClock(range(100)), warmup=0, iters=5, max_seconds=1.0, min_iters=5,
                        now=_work_clock(fn, 50.0))
    assert len(m.samples_ms) == 5 and m.stopped_early is False


class Device:
    """A GPU as the host sees it: a call only queues ``work_s`` of device time after
    ``launch_s`` of host time; waiting for the device (``sync``, or a stop event)
    moves host time to when the queue is empty. The clock is CUDA-event-like: a
    sample is the device time between its start and stop events."""

    name = "fake-events"

    def __init__(self, launch_s: float, work_s: float):
        self.host = self.free = 0.0
        self.launch_s, self.work_s = launch_s, work_s

    def call(self) -> None:
        self.host += self.launch_s
        self.free = max(self.free, self.host) + self.work_s

    def now(self) -> float:
        return self.host

    def sync(self) -> None:
        self.host = max(self.host, self.free)

    def start(self) -> float:
        self.free = max(self.free, self.host)  # the start event runs once the queue before it has
        return self.free

    def stop(self, token: float) -> float:
        self.free = max(self.free, self.host)
        self.host = self.free  # the host waits for the stop event
        return (self.free - token) * 1e3


def test_timed_loop_gets_its_budget_after_a_warmup_that_queued_work():
    """Launches cost 0.1 ms, the work 1 ms: a warm-up ended by host time (1 s) left
    9 s of work queued, and the timed loop's 1 s budget ended while it drained
    (5 samples, 5 ms of 1 s timed). The warm-up now waits for the device."""
    dev = Device(launch_s=1e-4, work_s=1e-3)
    m = timing.run_loop(dev.call, dev, warmup=10, iters=100_000, max_seconds=1.0, min_iters=5, now=dev.now,
                        warmup_s=1.0)
    assert sum(m.samples_ms) >= 0.8 * 1000.0  # at least 80% of the budget timed
    assert m.samples_ms[0] == pytest.approx(1.1)  # its own launch and work, not the queue's
    assert m.extra["warmup_seconds"] >= 1.0 and dev.free <= dev.host


def test_clocks_probe_is_read_with_nothing_queued():
    dev = Device(launch_s=1e-4, work_s=1e-3)
    seen = []
    timing.run_loop(dev.call, dev, warmup=50, iters=3, now=dev.now,
                    probe=lambda: seen.append(dev.free - dev.host) or {})
    assert seen[0] <= 0  # the start reading follows the warm-up's last kernel


def test_deadline_helper_needs_both_min_iters_and_time():
    t = [100.0]
    done = timing.deadline(5.0, 3, now=lambda: t[0])  # ends at t=105
    assert not done(10)
    t[0] = 105.0
    assert not done(2)
    assert done(3) and done(50)
    assert timing.deadline(None, 1)(10**6) is False


def test_perf_counter_clock_on_cpu_measures_the_work_between_start_and_stop():
    clock = timing.make_clock("perf_counter", torch.device("cpu"))
    assert clock.name == "perf_counter"
    token = clock.start()
    time.sleep(0.02)
    assert 20.0 <= clock.stop(token) < 1000.0  # milliseconds, not seconds or microseconds


def test_host_clock_reads_the_end_time_after_synchronizing():
    """The seeds' GPU timer read the end time before synchronizing: it timed the
    launches only. Here the wait inside ``sync`` (the device finishing) is counted."""
    waits = []

    def sync():  # stands in for torch.cuda.synchronize: the device finishes 20 ms of queued work
        if len(waits) == 1:
            time.sleep(0.02)
        waits.append(time.perf_counter())

    clock = timing.MarkClock(timing.HostMarks(sync))
    ms = clock.stop(clock.start())
    assert len(waits) == 2  # one synchronize before each reading
    assert ms >= 20.0


# --------------------------------------------------------------------------- per-unit hooks

class Tiny(nn.Module):
    """conv -> relu -> functional pooling -> fc: three module units and a gap."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.relu(self.conv(x))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


TINY_UNITS = [Unit("conv", "conv"), Unit("relu", "relu"), Unit("pool", None, "functional pooling"), Unit("fc", "fc")]


def _tiny():
    model = Tiny().eval()
    x = torch.randn(2, 3, 12, 10)
    return model, x, (lambda: model(x))


def test_profile_units_on_cpu_records_samples_and_shapes():
    model, x, fn = _tiny()
    with torch.inference_mode():
        profiles, spans = layerwise.profile_units(model, fn, TINY_UNITS, torch.device("cpu"), warmup=1, iters=4)
    assert [p.unit.label for p in profiles] == ["conv", "relu", "pool", "fc"]
    assert [p.module_type for p in profiles] == ["Conv2d", "ReLU", "functional", "Linear"]
    assert all(len(p.samples_ms) == 4 for p in profiles)
    assert len(spans) == 4
    # The units are disjoint parts of the hooked pass, iteration by iteration.
    for i, span in enumerate(spans):
        assert sum(p.samples_ms[i] for p in profiles) <= span * 1.0001
    shapes = {p.unit.label: (p.in_shape, p.out_shape) for p in profiles}
    assert shapes["conv"] == ((2, 3, 12, 10), (2, 8, 12, 10))
    assert shapes["relu"] == ((2, 8, 12, 10), (2, 8, 12, 10))
    assert shapes["fc"] == ((2, 8), (2, 5))
    assert shapes["pool"] == (None, None)
    # Hooks are removed afterwards.
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    row = profiles[0].to_dict(batch=2)
    assert row["label"] == "conv" and row["out_shape"] == [2, 8, 12, 10] and len(row["samples_ms"]) == 4


def test_profile_units_spans_with_fake_marks(monkeypatch):
    """Each mark advances a fake clock by 1 s: every unit spans exactly one step,
    the functional unit spans the gap between its neighbours' marks."""
    ticks = itertools.count()
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    model, x, fn = _tiny()
    with torch.inference_mode():
        profiles, spans = layerwise.profile_units(model, fn, TINY_UNITS, torch.device("cpu"), warmup=2, iters=3)
    # Marks per pass: start, conv pre/post, relu pre/post, fc pre/post, end = 8.
    for p in profiles:
        assert p.samples_ms == [1000.0] * 3, p.unit.label
    assert spans == [7000.0] * 3


class Edges(nn.Module):
    """Functional ops before the first and after the last module."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x * 2).mean()


def test_functional_units_at_both_ends_use_the_pass_marks(monkeypatch):
    ticks = itertools.count()
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    model, x = Edges().eval(), torch.randn(1, 3, 4, 4)
    units = [Unit("head", None, "x * 2"), Unit("conv", "conv"), Unit("tail", None, "mean")]
    with torch.inference_mode():
        profiles, spans = layerwise.profile_units(model, lambda: model(x), units, torch.device("cpu"), 0, 2)
    # Marks per pass: start, conv pre, conv post, end.
    assert [p.samples_ms for p in profiles] == [[1000.0] * 2] * 3
    assert spans == [3000.0] * 2


def test_profile_units_deadline_stops_early():
    model, x, fn = _tiny()
    with torch.inference_mode():
        profiles, spans = layerwise.profile_units(model, fn, TINY_UNITS, torch.device("cpu"), warmup=0, iters=10,
                                                  deadline=lambda n: n >= 2)
    assert len(spans) == 2 and all(len(p.samples_ms) == 2 for p in profiles)


def test_profile_units_rejects_missing_module():
    model, x, fn = _tiny()
    with pytest.raises(UserError, match="nope"):
        layerwise.profile_units(model, fn, [Unit("nope", "nope")], torch.device("cpu"), 0, 1)


def test_profile_units_rejects_unit_that_never_runs():
    model, x, fn = _tiny()
    with pytest.raises(UserError, match="never ran"):
        with torch.inference_mode():
            layerwise.profile_units(model, lambda: model.conv(x), TINY_UNITS, torch.device("cpu"), 0, 1)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_profile_units_rejects_unit_that_runs_twice():
    model, x, fn = _tiny()
    with pytest.raises(UserError, match="twice"):
        with torch.inference_mode():
            layerwise.profile_units(model, lambda: (model(x), model.relu(x)), TINY_UNITS, torch.device("cpu"), 0, 1)


# --------------------------------------------------------------------------- execution modes

def _spec(**kw) -> Request:
    kw.setdefault("clock", "perf_counter")
    return Request.of(kind="timing", model="resnet18", input=inputs.resolve(None, "16x16"), device="cpu", **kw)


def _conv_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 8, 3, stride=2), nn.ReLU()).eval()


def _run(spec):
    model = _conv_model()
    x = inputs.make(spec.input, "cpu")
    with torch.inference_mode(), execution.backend_flags(spec):
        prepared = execution.prepare(model, x, spec)
        return prepared.fn().float()


def _rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_bf16_autocast_close_to_fp32():
    ref = _run(_spec())
    spec = _spec(precision="bf16")
    model = _conv_model()
    x = inputs.make(spec.input, "cpu")
    with torch.inference_mode():
        out = execution.prepare(model, x, spec).fn()
    assert out.dtype == torch.bfloat16  # autocast really ran in bf16
    assert _rel_err(out.float(), ref) < 5e-2


def test_channels_last_close_to_fp32():
    ref = _run(_spec())
    spec = _spec(channels_last=True)
    model = _conv_model()
    x = inputs.make(spec.input, "cpu")
    with torch.inference_mode():
        prepared = execution.prepare(model, x, spec)
        out = prepared.fn()
    assert prepared.x.is_contiguous(memory_format=torch.channels_last)
    assert prepared.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert _rel_err(out, ref) < 1e-4


@pytest.mark.parametrize("kw,word", [
    (dict(cuda_graph=True), "cuda-graph"),
    (dict(cudnn_benchmark=True), "cudnn-benchmark"),
    (dict(precision="tf32"), "tf32"),
    (dict(clock="cuda-event"), "cuda-event"),
])
def test_check_supported_rejects_gpu_modes_on_cpu(kw, word):
    with pytest.raises(UserError, match=word):
        execution.check_supported(_spec(**kw))


@pytest.mark.parametrize("kw", [dict(), dict(precision="bf16"), dict(precision="fp16"), dict(channels_last=True)])
def test_check_supported_accepts_cpu_modes(kw):
    execution.check_supported(_spec(**kw))


def _gpu_spec(**kw) -> Request:
    """A request for a CUDA device: check_supported's GPU branch is plain logic, testable here."""
    return Request.of(kind="timing", model="resnet18", input=inputs.resolve(None, "16x16"), device="cuda:0",
                   clock="cuda-event", **kw)


@pytest.mark.parametrize("kw", [dict(), dict(precision="tf32"), dict(precision="fp16"), dict(cuda_graph=True),
                                dict(cudnn_benchmark=True), dict(channels_last=True)])
def test_check_supported_accepts_gpu_modes_on_a_gpu(kw):
    execution.check_supported(_gpu_spec(**kw))


def test_check_supported_bf16_on_a_gpu_that_has_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    execution.check_supported(_gpu_spec(precision="bf16"))  # accepted, no exception


def test_check_supported_bf16_on_a_gpu_without_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Old GPU")
    with pytest.raises(UserError, match="bf16"):
        execution.check_supported(_gpu_spec(precision="bf16"))


def test_backend_flags_turn_tf32_off_for_fp32_and_restore():
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    with execution.backend_flags(_spec()) as flags:
        assert flags["cudnn.allow_tf32"] is False and flags["matmul.allow_tf32"] is False
        assert cudnn.allow_tf32 is False and matmul.allow_tf32 is False
    assert (cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32) == before


def test_spec_variant_and_mode_names():
    assert _spec().variant == "" and _spec().mode == "eager fp32"
    s = _spec(precision="bf16", channels_last=True)
    assert s.variant == "bf16-cl" and s.mode == "eager bf16 channels-last"
    d = s.to_dict()
    assert d["input"]["shape"] == [1, 3, 16, 16] and d["variant"] == "bf16-cl"


# --------------------------------------------------------------------------- common/check_timer.py

def _check_timer():
    from common import check_timer

    return check_timer


def test_check_timer_compares_the_medians_of_its_own_run(tmp_path, monkeypatch):
    import json

    from torch.utils import benchmark

    from common import records

    ct = _check_timer()
    # A committed-looking record with other numbers: the check must not read it.
    stale = records.record_path(tmp_path, "t", "layers", "resnet18_32x32")
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"schema": 2, "result": {"coverage": 123.0}}))
    ours, refs, units = [], [], []
    real_loop, real_autorange, real_units = timing.run_loop, benchmark.Timer.blocked_autorange, \
        layerwise.profile_units
    monkeypatch.setattr(timing, "run_loop", lambda *a, **k: ours.append(real_loop(*a, **k)) or ours[-1])
    monkeypatch.setattr(benchmark.Timer, "blocked_autorange",
                        lambda self, **k: refs.append(real_autorange(self, **k)) or refs[-1])
    monkeypatch.setattr(layerwise, "profile_units", lambda *a, **k: units.append(real_units(*a, **k)) or units[-1])
    argv = ["--models", "resnet18", "--size", "32x32", "--device", "cpu", "--warmup", "1", "--iters", "3",
            "--min-run-time", "0.02", "--tag", "t", "--results", str(tmp_path)]
    assert ct.main(argv) == 0
    rec = json.loads((tmp_path / "records/t/timer-check/timer_check.json").read_text())
    assert rec["schema"] == records.SCHEMA and rec["kind"] == "timer-check" and rec["device_tag"] == "t"
    assert rec["request"]["models"] == ["resnet18"] and rec["request"]["inputs"] == ["32x32"]
    (row,) = rec["result"]["rows"]
    (m,), (ref,), ((profiles, _),) = ours, refs, units
    assert row["ours_median_ms"] == m.stats.median_ms and row["ours"]["samples_ms"] == m.samples_ms
    assert row["benchmark_median_ms"] == ref.median * 1e3
    assert row["ratio"] == m.stats.median_ms / (ref.median * 1e3)
    assert row["agrees"] is (abs(row["ratio"] - 1) <= ct.AGREEMENT)
    expected = derive.coverage([timing.summarize(p.samples_ms).mean_ms for p in profiles], m.stats.mean_ms)
    assert row["layers_coverage"] == expected != 123.0


def test_check_timer_bad_model_is_one_line(tmp_path, capsys):
    ct = _check_timer()
    assert ct.main(["--models", "resnet19", "--device", "cpu", "--results", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not list(tmp_path.rglob("*.json"))


def test_progress_follows_the_time_budget():
    """--max-seconds 5 with 300 iterations of 2.5 s each: the bar counts to the
    iterations that fit (at least --min-iters), not to 300."""
    from common.measure.timing import expected_iters

    assert expected_iters(1, 2.5, 5.0, 300, 3) == 3  # 2 fit in the budget, but at least 3 run
    assert expected_iters(10, 1.0, 5.0, 300, 3) == 50
    assert expected_iters(10, 0.01, 5.0, 300, 3) == 300  # fast: the iteration count bounds it
    assert expected_iters(40, 5.2, 5.0, 300, 3) == 40  # already past the budget: what ran


def test_check_timer_fresh_process_alternates_the_sides_and_compares_medians_of_medians(tmp_path, monkeypatch):
    """--fresh-process N: ours and benchmark in alternating order, each in its own process
    (stubbed here), compared by the median of each side's medians."""
    import json

    from common import records
    from common.measure import repeats

    ct = _check_timer()
    calls = []
    ours_ms, bench_ms = iter([10.0, 12.0, 11.0]), iter([10.5, 11.2, 30.0])
    monkeypatch.setattr(repeats, "fresh_process_run", lambda request, tag, timeout_s=None: calls.append(
        ("ours", request["threads"])) or {"result": {"timing": {"stats": {"median_ms": next(ours_ms)}}}})
    monkeypatch.setattr(ct, "_fresh_benchmark", lambda req, s: calls.append(("benchmark", req.threads))
                        or {"median_ms": next(bench_ms)})
    argv = ["--models", "resnet18", "--size", "32x32", "--device", "cpu", "--fresh-process", "3", "--threads", "2",
            "--tag", "t", "--results", str(tmp_path)]
    assert ct.main(argv) == 0
    assert [c[0] for c in calls] == ["ours", "benchmark", "benchmark", "ours", "ours", "benchmark"]
    assert {c[1] for c in calls} == {2}
    (row,) = json.loads((tmp_path / "records/t/timer-check/timer_check_fresh.json").read_text())["result"]["rows"]
    assert row["ours_median_ms"] == 11.0 and row["benchmark_median_ms"] == 11.2
    assert row["ratio"] == 11.0 / 11.2 and row["agrees"] is True
    assert row["paired_ratios"] == [10.0 / 10.5, 12.0 / 11.2, 11.0 / 30.0]
    assert records.SCHEMA == 2


def test_samples_are_kept_to_a_nanosecond_and_records_write_number_lists_on_one_line():
    """The records travel to the GPU machine under a size cap: raw samples carry no digits
    below 1 ns (either clock's resolution is coarser), lists of numbers take one line, and
    text that looks like a list is left as it is."""
    import json

    from common import records

    assert timing.HostMarks().elapsed(1.0, 1.000123456789) == 0.123457
    rec = {"samples_ms": [0.068672, 1.25], "shape": [1, 3, 64, 64], "note": "[1,3]", "nested": [[1, 2], [3]]}
    text = records.dumps(rec)
    assert '"samples_ms": [0.068672, 1.25]' in text and '"shape": [1, 3, 64, 64]' in text
    assert '"note": "[1,3]"' in text and json.loads(text) == rec
