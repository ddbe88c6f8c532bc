"""Execution modes: --mode fastest's search (on the CPU, tiny models, short
candidate lists) and how it tells an unsupported mode, an out-of-memory
candidate and a bug apart; the device's measured peaks (peak records)."""
import json

import pytest
import torch
from torch import nn

from common import inputs, records
from common.measure import execution, peak
from common.spec import Request

CPU = torch.device("cpu")


def _req(**kw) -> Request:
    return Request.of("timing", "resnet18", inputs.resolve(None, "8x8"), "cpu", clock="perf_counter", iters=5,
                   search="fastest", **kw)


class Probe(nn.Module):
    """A tiny model whose forward fails the way ``fail(x)`` says for some modes."""

    def __init__(self, fail=lambda x: None):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fail = fail

    def forward(self, x):
        self.fail(x)
        return self.conv(x)


@pytest.fixture
def fast_search(monkeypatch):
    """A search of 0.01 s per candidate over the candidates given, on ``Probe``."""
    def setup(candidates, fail=lambda x: None):
        monkeypatch.setattr(execution, "FASTEST_CANDIDATES", tuple(candidates))
        monkeypatch.setattr(execution, "SEARCH_SECONDS", 0.01)
        monkeypatch.setattr(execution, "SEARCH_WARMUP", 1)
        monkeypatch.setattr(execution.registry, "build", lambda name, device="cpu", options=None: Probe(fail).eval())
    return setup


def _channels_last(x):
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def test_search_times_supported_names_skipped_and_records_the_picked_mode(fast_search):
    fast_search([{"precision": "fp32"}, {"precision": "fp32", "channels_last": True}, {"precision": "tf32"},
                 {"precision": "bf16", "channels_last": True, "cuda_graph": True}])
    picked, info = execution.search_fastest(_req(), CPU, eager_only=False)
    timed = [c for c in info["candidates"] if "median_ms" in c]
    skipped = {c["mode"]: c["skipped"] for c in info["candidates"] if "skipped" in c}
    assert len(timed) == 2 and all(len(c["timing"]["samples_ms"]) >= 3 for c in timed)
    assert "tf32" in skipped["eager tf32"] and "CUDA" in skipped["bf16 channels-last + CUDA graph"]
    best = min(timed, key=lambda c: c["median_ms"])
    assert picked.mode == best["mode"] == info["picked"]
    assert picked.search == "fastest"  # still the request as asked, in the picked mode
    assert info["picked_mode"] == {**picked.mode_dict(), "variant": picked.variant, "mode": picked.mode}
    assert set(info["picked_mode"]) == {"precision", "channels_last", "cudnn_benchmark", "cuda_graph", "compile",
                                        "runtime", "variant", "mode"}
    # records.measured merges it into the request: the numbers' mode, not the mode asked for.
    rec = {"request": _req().to_dict(), "result": {"fastest": info}}
    assert records.measured(rec)["variant"] == picked.variant


def test_search_with_layers_skips_graphs_and_compile(fast_search):
    fast_search([{"precision": "fp32"}, {"precision": "fp32", "compile": "default"}])
    picked, info = execution.search_fastest(_req(), CPU, eager_only=True)
    assert picked.compile is None
    assert "hooks" in info["candidates"][1]["skipped"]


def test_search_leaves_compile_out_when_asked(fast_search):
    fast_search([{"precision": "fp32"}, {"precision": "bf16", "channels_last": True, "compile": "max-autotune"}])
    _, info = execution.search_fastest(_req(), CPU, eager_only=False, with_compile=False)
    assert "left out" in info["candidates"][1]["skipped"]


def test_search_propagates_an_error_that_is_a_bug(fast_search):
    """A RuntimeError that does not say 'unsupported' is a bug: it must not become 'skipped'."""
    def fail(x):
        if _channels_last(x):
            raise RuntimeError("shape '[1, -1]' is invalid for input of size 7")

    fast_search([{"precision": "fp32"}, {"precision": "fp32", "channels_last": True}], fail)
    with pytest.raises(RuntimeError, match="is invalid for input"):
        execution.search_fastest(_req(), CPU, eager_only=False)


def test_search_records_out_of_memory_and_goes_on(fast_search):
    def fail(x):
        if _channels_last(x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    fast_search([{"precision": "fp32", "channels_last": True}, {"precision": "fp32"}], fail)
    picked, info = execution.search_fastest(_req(), CPU, eager_only=False)
    oom, ok = info["candidates"]
    assert oom["skipped"] == "out of memory" and oom["out_of_memory"] is True and "20.00 GiB" in oom["error"]
    assert "median_ms" not in oom and "median_ms" in ok
    assert picked.mode == "eager fp32"


@pytest.mark.parametrize("exc", [
    NotImplementedError("Could not run 'aten::foo' with arguments from the 'CPU' backend"),
    RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'"),
    RuntimeError("CUDA error: no kernel image is available for execution on the device"),
])
def test_search_skips_a_mode_the_build_cannot_run_with_its_reason(fast_search, exc):
    def fail(x):
        if _channels_last(x):
            raise exc

    fast_search([{"precision": "fp32", "channels_last": True}, {"precision": "fp32"}], fail)
    _, info = execution.search_fastest(_req(), CPU, eager_only=False)
    assert info["candidates"][0]["skipped"] == str(exc).splitlines()[0][:160]
    assert "out_of_memory" not in info["candidates"][0]


def test_search_with_no_runnable_candidate_is_one_user_error(fast_search):
    from common.errors import UserError

    fast_search([{"precision": "tf32"}])
    with pytest.raises(UserError, match="no candidate mode could run"):
        execution.search_fastest(_req(), CPU, eager_only=False)


# --------------------------------------------------------------------------- peak record

def test_peak_cli_writes_a_schema_2_record(tmp_path, monkeypatch):
    monkeypatch.setattr(peak, "MATMUL_N", {"cpu": 64, "cuda": 64})
    monkeypatch.setattr(peak, "COPY_BYTES", {"cpu": 2**20, "cuda": 2**20})
    monkeypatch.setattr(peak, "ITERS", 3)
    assert peak.main(["--device", "cpu", "--threads", "1", "--results", str(tmp_path)]) == 0
    (path,) = (tmp_path / "records").glob("*/peak/*.json")
    rec = json.loads(path.read_text())
    assert rec["schema"] == records.SCHEMA and rec["kind"] == "peak"
    assert path.parent.parent.name == rec["device_tag"]
    # A CPU's rates depend on its threads: the record names them, and so does its file.
    assert path.name == "peak_1t.json" and rec["request"]["threads"] == 1 == rec["env"]["threads"]
    result = rec["result"]
    assert {"fp32"} <= set(result["matmul_tflops"]) <= {"fp32", "bf16"}
    assert all(v > 0 for v in result["matmul_tflops"].values()) and result["copy_gbs"] > 0
    # The timer reads only a GPU's peak.json: its CPU runs' threads vary per request.
    assert peak.load(rec["device_tag"], tmp_path) is None
    gpu = {**rec, "env": {**rec["env"], "device_type": "cuda"}}
    assert peak.stem(gpu) == "peak"
    records.write_record(peak.path_for(rec["device_tag"], tmp_path), gpu)
    assert peak.load(rec["device_tag"], tmp_path) == {**result, "measured": rec["env"]["date"]}
    assert peak.load("no-such-device", tmp_path) is None


def test_peak_threads_beyond_the_cores_are_one_line_and_nothing_written(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:  # refused while parsing (argtypes.threads)
        peak.main(["--device", "cpu", "--threads", "999", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "argument --threads: 999 is more than" in err
    assert "Traceback" not in err
    assert not (tmp_path / "records").exists()


def test_search_look_per_candidate_follows_the_requests_time_bound():
    """A run bounded by --max-seconds bounds its search's look at each candidate too."""
    assert execution.search_seconds(_req()) == execution.SEARCH_SECONDS
    assert execution.search_seconds(_req(max_seconds=0.25)) == 0.25
    assert execution.search_seconds(_req(max_seconds=30.0)) == execution.SEARCH_SECONDS


def test_build_on_a_gpu_falls_back_to_the_host_when_the_constructor_cannot_run_there(monkeypatch):
    """Built under the GPU's device context first; a constructor that fails there is
    built on the host and moved, as before."""
    from common import registry

    calls = []

    class Entry:
        family = "resnet"

        def builder(self):
            calls.append(torch.empty(0).device.type)
            if len(calls) == 1:
                raise RuntimeError("constructor computes on host values")
            return nn.Linear(2, 2)

    entry = Entry()
    monkeypatch.setattr(registry, "get", lambda name, options=None: entry)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    moved = []
    monkeypatch.setattr(nn.Module, "to", lambda self, *a, **k: moved.append(a) or self)
    monkeypatch.setattr(torch, "device", _FakeDevice)
    model = registry.build("anything", "cuda")
    assert isinstance(model, nn.Linear) and len(calls) == 2 and moved[-1] == ("cuda",)


class _FakeDevice:
    """torch.device('cuda') on a machine without CUDA: the type, and a no-op context."""

    def __init__(self, spec):
        self.type = str(spec).split(":")[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
