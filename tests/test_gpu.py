"""GPU-only measuring paths: CUDA-event clock, GPU peak memory, CUDA-graph replay,
torch.compile, the OOM probe in channels-last + graph mode.

Marked ``gpu`` and skipped without CUDA; ``scripts/device_suite.sh`` runs them on
the device (``pytest -m gpu``).
"""
from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from common import inputs
from common.derive import MIB
from common.measure import execution, memory, oom, timing
from common.spec import Request

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture
def dev():
    d = torch.device("cuda:0")
    torch.cuda.synchronize(d)
    torch.cuda.empty_cache()
    yield d
    torch.cuda.synchronize(d)
    torch.cuda.empty_cache()


def _req(size: str = "64x64", batch: int = 2, **kw) -> Request:
    return Request.of("timing", "resnet18", inputs.resolve(None, size, batch), "cuda:0",
                   **{"clock": "cuda-event", "warmup": 3, "iters": 10, **kw})


def _conv_model(device) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.Conv2d(32, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 10)).eval().to(device)


# --------------------------------------------------------------------------- clocks

def test_cuda_event_clock_agrees_with_a_synchronized_perf_counter(dev):
    a = torch.randn(4096, 4096, device=dev)
    work = lambda: [a @ a for _ in range(8)]  # noqa: E731 - milliseconds of GPU work per call
    with execution.backend_flags(_req()):
        events = timing.run_loop(work, timing.make_clock("cuda-event", dev), 3, 20).stats.median_ms
        host = timing.run_loop(work, timing.make_clock("perf_counter", dev), 3, 20).stats.median_ms
    assert events > 1.0  # the GPU's work was timed, not the launches (microseconds)
    assert host == pytest.approx(events, rel=0.10)


def test_perf_counter_on_a_gpu_waits_for_the_work(dev):
    """The seeds' bug: the end time read before synchronizing timed only the launches."""
    a = torch.randn(4096, 4096, device=dev)
    clock = timing.make_clock("perf_counter", dev)
    token = clock.start()
    for _ in range(16):
        a @ a
    launched = time.perf_counter()
    ms = clock.stop(token)
    assert ms > (launched - token) * 1e3 * 2  # most of the time is the device finishing, after the launches


# --------------------------------------------------------------------------- peak memory

def test_gpu_peak_of_a_known_allocation(dev):
    resident = torch.empty(64 * MIB, dtype=torch.uint8, device=dev)  # stays allocated: resident, not peak

    def fn():
        t = torch.empty(256 * MIB, dtype=torch.uint8, device=dev)
        t.fill_(1)
        return None  # t freed on return

    got = memory.gpu_peak(fn, dev)
    assert got["peak_inference_mib"] == pytest.approx(256, abs=1)
    assert got["resident_mib"] >= 64
    assert got["peak_allocated_mib"] - got["resident_mib"] == pytest.approx(got["peak_inference_mib"])
    del resident


# --------------------------------------------------------------------------- CUDA graphs, compile

def _eager_out(model, x):
    with torch.inference_mode():
        return model(x).clone()


def test_cuda_graph_replay_equals_eager(dev):
    req = _req(cuda_graph=True)
    model = _conv_model(dev)
    x = inputs.make(req.input, dev)
    ref = _eager_out(model, x)
    with torch.inference_mode(), execution.backend_flags(req):
        prepared = execution.prepare(model, x, req)
        out = prepared.fn().clone()
        assert "graph_capture_s" in prepared.setup
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        # The graph reads the captured input buffer: a new input there gives the new output.
        x2 = torch.randn_like(x)
        prepared.x.copy_(x2)
        torch.testing.assert_close(prepared.fn().clone(), _eager_out(model, x2), rtol=1e-5, atol=1e-5)


def test_compile_default_equals_eager_within_tolerance(dev):
    torch._dynamo.reset()
    req = _req(compile="default")
    model = _conv_model(dev)
    x = inputs.make(req.input, dev)
    ref = _eager_out(model, x)
    with torch.inference_mode(), execution.backend_flags(req):
        prepared = execution.prepare(model, x, req)
        out = prepared.fn()
    assert prepared.setup["compile_s"] > 0 and prepared.setup["inductor_freezing"] is True
    cache = prepared.setup["compile_cache"]
    assert cache["dir"].endswith("inductor") and set(cache) >= set(execution.CACHE_COUNTERS)
    # Freezing folds batch norm into the convolution: not bitwise, but close in fp32 (TF32 off).
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-4)


# --------------------------------------------------------------------------- the OOM probe

def _allocated_without_caches(dev) -> int:
    """Allocated bytes less cuBLAS's workspaces, which PyTorch keeps per stream (each graph capture's
    side stream gets one, about 32 MiB on Hopper): a cache, not something a probe left behind."""
    torch._C._cuda_clearCublasWorkspaces()
    torch.cuda.empty_cache()
    return torch.cuda.memory_allocated(dev)


def test_one_step_fits_with_channels_last_and_a_cuda_graph(dev, monkeypatch):
    seen = []
    real_prepare = execution.prepare

    def spy(model, x, req):
        p = real_prepare(model, x, req)
        seen.append((req.input.batch, x.shape[0], dict(p.setup),
                     p.x.is_contiguous(memory_format=torch.channels_last)))
        return p

    monkeypatch.setattr(execution, "prepare", spy)
    before = _allocated_without_caches(dev)
    req = _req(size="1024x2048", batch=64, channels_last=True, cuda_graph=True, precision="bf16")
    assert oom.one_step_fits(req, 2) is True
    batch, x_batch, setup, channels_last = seen[-1]
    assert (batch, x_batch, channels_last) == (2, 2, True) and "graph_capture_s" in setup
    total = torch.cuda.get_device_properties(dev).total_memory
    torch.cuda.set_per_process_memory_fraction(4 * 2**30 / total, dev)  # a 4 GiB device for this test
    try:
        assert oom.largest_fitting_batch(64, lambda b: oom.one_step_fits(req, b))[0] in range(1, 32)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, dev)
    assert _allocated_without_caches(dev) <= before + MIB  # nothing left behind by the probes, failed or not


def test_one_step_fits_training_step_on_the_gpu(dev):
    req = Request.of("train-timing", "resnet18", inputs.resolve(None, "1024x2048", 64), "cuda:0", clock="cuda-event",
                  channels_last=True, precision="bf16", with_optimizer=True)
    assert oom.one_step_fits(req, 2) is True
    total = torch.cuda.get_device_properties(dev).total_memory
    torch.cuda.set_per_process_memory_fraction(4 * 2**30 / total, dev)
    try:
        assert oom.one_step_fits(req, 64) is False  # ~1.6 GiB of activations per image to keep for backward
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, dev)


# --------------------------------------------------------------------------- kernel time, busy, clocks, repeats

def _measure(tmp_path, **kw) -> dict:
    from dataclasses import replace

    from common import run as runmod

    kind = kw.pop("kind", "timing")
    req = replace(_req(batch=1, **{"warmup": 5, "iters": 20, **kw}), kind=kind)
    session = runmod.Session(torch.device("cuda:0"), tmp_path)
    return runmod.measure(req, session)["result"]


def test_kernel_time_busy_and_per_unit_kernel_coverage_resnet18(dev, tmp_path):
    r = _measure(tmp_path, kind="layers", repeats=2, warmup_s=0.2)
    k = r["kernels"]
    assert k["kernel_ms"] > 0 and k["profiled_iters"] >= 3
    assert 0 < k["busy"] <= 1.05 and isinstance(k["launch_bound"], bool)
    assert 0.98 <= r["kernel_coverage"] <= 1.02  # host-independent by construction
    assert all(u["kernel_ms"] is not None and u["kernel_ms"] >= 0 for u in r["units"])
    assert sum(u["kernel_ms"] > 0 for u in r["units"]) >= 8  # every conv/bn/layer unit launched kernels
    assert r["coverage"] > 0 and r["coverage_reliable"] is True  # the event spans stay beside it
    rep = r["repeats"]
    assert rep["n"] == 2 and len(rep["runs"]) == 2 and all(len(x["samples_ms"]) == 20 for x in rep["runs"])
    clocks = r["timing"]["clocks"]
    assert set(clocks) == {"start", "end"} and clocks["start"]["source"] in ("nvml", "torch.cuda", "unknown")
    assert r["timing"]["warmup_seconds"] >= 0.2


def test_kernel_time_of_a_cuda_graph_replay(dev, tmp_path):
    r = _measure(tmp_path, cuda_graph=True, repeats=1)
    assert r["kernels"]["kernel_ms"] > 0 and 0 < r["kernels"]["busy"] <= 1.05


def test_fresh_process_repeats_collect_each_childs_record(dev, tmp_path):
    r = _measure(tmp_path, repeats=2, fresh_process=True, iters=10)
    assert r["repeats"]["n"] == 2 and all(len(x["samples_ms"]) == 10 for x in r["repeats"]["runs"])
    assert r["kernels"]["kernel_ms"] > 0


def test_a_drivers_records_get_their_deferred_kernel_profiles(dev, tmp_path):
    """Kernel profiles after every timed loop of the driver (a profile slows later
    loops of its process), merged into each saved record with its busy fraction."""
    import json

    from common import drive
    from common.measure import kernels

    code = drive.main(["stats", "--model", "resnet18", "--device", "cuda:0", "--size", "64x64", "--warmup", "3",
                       "--iters", "20", "--max-seconds", "0.2", "--warmup-seconds", "0", "--repeats", "1",
                       "--tag", "t", "--out-dir", str(tmp_path)])
    assert code == 0
    recs = [json.loads(p.read_text()) for p in (tmp_path / "results" / "records" / "t").rglob("*.json")]
    assert sorted(r["kind"] for r in recs) == ["layers", "layers", "timing"]
    for rec in recs:
        r = rec["result"]
        assert r["kernel_profile"]["status"] == "taken" and r["kernels"]["when"] == kernels.WHEN_DEFERRED
        assert r["kernels"]["kernel_ms"] > 0 and 0 < r["kernels"]["busy"] <= 1.05
        if rec["kind"] == "layers":
            assert 0.98 <= r["kernel_coverage"] <= 1.02 and all(u["kernel_ms"] is not None for u in r["units"])
