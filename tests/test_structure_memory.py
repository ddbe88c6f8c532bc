"""MACs/FLOPs, feature memory, parameters (structure.py) and memlab's correction (memory.py)."""
from __future__ import annotations

import json
import math
import subprocess
from importlib.metadata import version

import pytest

from common.errors import ChildFailed
import torch
from torch import nn

from common import inputs, registry
from common.measure import memory, structure
from conftest import meta_model

# --------------------------------------------------------------------------- MACs / FLOPs


@pytest.fixture(scope="module")
def resnet50_cost():
    m = meta_model("resnet50")
    return m, structure.analyze(m, torch.empty(1, 3, 224, 224, device="meta"), registry.units("resnet50", m))


def test_resnet50_macs_at_224(resnet50_cost):
    _, cost = resnet50_cost
    assert cost.macs == pytest.approx(4.09e9, rel=0.01)
    assert cost.flops == 2 * cost.macs  # MACs are half the FLOPs, never the same number


def test_resnet50_unit_costs_add_up(resnet50_cost):
    m, cost = resnet50_cost
    assert [u.label for u in cost.units] == [u.label for u in registry.units("resnet50", m)]
    assert sum(u.flops for u in cost.units) == cost.flops
    assert sum(u.params for u in cost.units) == cost.params == 25_557_032
    assert sum(u.feature_bytes for u in cost.units) == cost.feature_bytes
    fc = cost.units[-1]
    assert fc.label == "fc" and fc.macs == 2048 * 1000 and fc.out_shape == [1, 1000]
    assert cost.input_bytes == 3 * 224 * 224 * 4
    # No FLOP formula for batch norm and pooling: they are named, not guessed.
    assert any("batch_norm" in op for op in cost.uncounted_ops)


@pytest.mark.parametrize("name", ["mobilenet_v2", "xception", "resnet18"])
def test_unit_costs_add_up_to_totals(name):
    m = meta_model(name)
    units = registry.units(name, m, 2 if name.startswith("resnet") else 1)
    cost = structure.analyze(m, torch.empty(1, 3, 64, 64, device="meta"), units)
    assert cost.flops > 0
    assert sum(u.flops for u in cost.units) == cost.flops
    assert sum(u.feature_bytes for u in cost.units) == cost.feature_bytes
    assert sum(u.params for u in cost.units) == cost.params == structure.param_count(m)
    assert cost.units[-1].out_shape == [1, 1000]


def test_mobilenet_pooling_unit_gets_the_functional_ops():
    m = meta_model("mobilenet_v2")
    cost = structure.analyze(m, torch.empty(1, 3, 64, 64, device="meta"), registry.units("mobilenet_v2", m))
    pooling = next(u for u in cost.units if u.label == "pooling")
    # adaptive_avg_pool2d's output (1x1280x1x1) is a feature; flatten is a view.
    assert pooling.feature_bytes == 1280 * 4
    assert pooling.out_shape == [1, 1280]  # what the classifier receives


# --------------------------------------------------------------------------- hand-computed tiny model

def _tiny(inplace: bool) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(4, 2, 1),
                         nn.Flatten()).eval()


def test_feature_memory_of_tiny_model_by_hand():
    x = torch.randn(1, 3, 8, 8)
    cost = structure.analyze(_tiny(inplace=True), x)
    conv1_out = 1 * 4 * 8 * 8 * 4  # float32 bytes
    conv2_out = 1 * 2 * 8 * 8 * 4
    # In-place ReLU and the Flatten view add nothing.
    assert cost.feature_bytes == conv1_out + conv2_out == 1536
    assert cost.input_bytes == 3 * 8 * 8 * 4
    # FLOPs: 2 x (out elements x in channels x kernel area) per conv.
    assert cost.flops == 2 * (4 * 64 * 3 * 9) + 2 * (2 * 64 * 4 * 1)
    assert cost.macs == cost.flops // 2


def test_out_of_place_relu_is_a_feature():
    x = torch.randn(1, 3, 8, 8)
    assert structure.analyze(_tiny(inplace=False), x).feature_bytes == 1536 + 4 * 8 * 8 * 4


def test_tiny_model_per_unit_costs():
    seq = _tiny(inplace=True)
    units = [registry.Unit(n, n) for n in ("0", "1", "2", "3")]
    cost = structure.analyze(seq, torch.randn(1, 3, 8, 8), units)
    assert [u.feature_bytes for u in cost.units] == [1024, 0, 512, 0]
    assert [u.params for u in cost.units] == [4 * 3 * 9 + 4, 0, 2 * 4 + 2, 0]
    assert [u.out_shape for u in cost.units] == [[1, 4, 8, 8], [1, 4, 8, 8], [1, 2, 8, 8], [1, 128]]
    d = cost.to_dict()
    assert d["macs"] == cost.macs and d["params"] == 122 and d["feature_mib"] == 1536 / 2**20


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_structure_totals_are_sum_of_numel(name):
    m = meta_model(name)
    cost = structure.analyze(m, torch.empty(1, 3, 32, 32, device="meta"))
    assert cost.params == structure.param_count(m) == sum(p.numel() for p in m.parameters())
    assert cost.param_bytes == 4 * cost.params
    assert cost.buffer_bytes == sum(b.numel() * b.element_size() for b in m.buffers())


def test_torchinfo_rows_count_each_parameter_once():
    m = registry.build("resnet18")
    rows = structure.torchinfo_rows(m, torch.randn(1, 3, 32, 32), depth=1)
    assert [r["path"] for r in rows] == [n for n, _ in m.named_children()]
    assert sum(r["params"] for r in rows) == structure.param_count(m)


# --------------------------------------------------------------------------- memlab correction

def _report(*tensors):
    rep = memory.reporter()()
    for t in tensors:
        rep.device_mapping[t.device].append(t)
    rep.get_stats()
    return [s[3] for s in rep.device_tensor_stat[torch.device("cpu")]]


def test_memlab_version_and_its_bug():
    assert version("pytorch-memlab") == "0.3.2"
    assert memory.memlab_overcounts() is True
    # The raw memlab figure for 1000 fp32 elements: 4000 bytes x 4 -> 16384.
    assert memory._memlab_raw_bytes(torch.zeros(1000)) == 16384


def test_corrected_reporter_fp32_1000_elements():
    assert _report(torch.zeros(1000, dtype=torch.float32)) == [math.ceil(4000 / 512) * 512] == [4096]


def test_corrected_reporter_fp16_and_int8():
    assert _report(torch.zeros(1000, dtype=torch.float16)) == [2048]
    assert _report(torch.zeros(1000, dtype=torch.int8)) == [1024]
    assert _report(torch.zeros(1024, dtype=torch.float64)) == [8192]


def test_corrected_reporter_pairs_grads_and_shared_storage():
    p = nn.Parameter(torch.zeros(1000))
    p.grad = torch.zeros(1000)
    t = torch.zeros(300, dtype=torch.float64)
    view = t[:10]  # same storage: counted once
    assert _report(p, t, view) == [4096, 4096, 2560, 0]


def test_storage_bytes_rounds_up_to_512():
    assert memory.storage_bytes(torch.zeros(1)) == 512
    assert memory.storage_bytes(torch.zeros(128)) == 512
    assert memory.storage_bytes(torch.zeros(129)) == 1024


def test_static_report_counts_weights_buffers_and_input_corrected():
    """In process: the static set is named (parameters, buffers, input), so whatever
    else this test process holds does not count."""
    x = torch.randn(1000)
    lone = memory.static_report(torch.nn.Module(), x)
    assert lone["static_mib"] * 2**20 == 4096 and lone["elements"] == 1000
    assert "input" in lone["listing"] and "4.00K" in lone["listing"]
    m = registry.build("resnet18")
    xi = inputs.make(inputs.resolve(None, "32x32"), "cpu")
    r = memory.static_report(m, xi)
    assert r["memlab_corrected"] is True
    assert r["elements"] == 11_689_512 + 9_620 + 3 * 32 * 32  # params + BN buffers + input
    # Corrected static memory is close to 4 bytes per element (plus 512-byte rounding), not 16.
    assert r["static_mib"] * 2**20 == pytest.approx(4 * r["elements"], rel=0.01)


# --------------------------------------------------------------------------- CPU peak memory (fresh process)

class Spy(nn.Module):
    """Records, per forward, whether autocast was on (and its dtype) and the input's memory format."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)
        self.seen: list[dict] = []

    def forward(self, x):
        self.seen.append({"autocast": torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"),
                          "channels_last": x.is_contiguous(memory_format=torch.channels_last)
                          and not x.is_contiguous(),
                          "weight_channels_last": self.conv.weight.is_contiguous(memory_format=torch.channels_last)
                          and not self.conv.weight.is_contiguous()})
        return self.fc(self.conv(x).mean((2, 3)))


def _mem_req(**kw):
    from common import inputs
    from common.spec import Request

    return Request.of("memory", "resnet18", inputs.resolve(None, "8x8", 2), "cpu", clock="none", **kw)


@pytest.mark.parametrize("train", [False, True])
def test_cpu_peak_child_runs_in_the_request_precision_and_memory_format(monkeypatch, keep_threads, train):
    spy = Spy()
    monkeypatch.setattr(registry, "build", lambda name, device="cpu", options=None: spy)
    got = memory.cpu_peak_child(_mem_req(precision="bf16", channels_last=True), torch.get_num_threads(), train)
    assert spy.seen[-1] == {"autocast": torch.bfloat16, "channels_last": True, "weight_channels_last": True}
    assert got[f"peak_{'train_step' if train else 'inference'}_mib"] is not None or not got["hwm_reset"]
    assert "bf16" in got["method"] and "channels-last" in got["method"]


def test_cpu_peak_child_fp32_stays_fp32(monkeypatch, keep_threads):
    spy = Spy()
    monkeypatch.setattr(registry, "build", lambda name, device="cpu", options=None: spy)
    memory.cpu_peak_child(_mem_req(), torch.get_num_threads())
    assert spy.seen[-1] == {"autocast": False, "channels_last": False, "weight_channels_last": False}


def test_cpu_peak_hands_the_whole_request_to_the_child(monkeypatch):
    from common.spec import Request

    calls = []

    def fake_run(args, **kw):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, stdout='{"peak_inference_mib": 1.5}\n', stderr="")

    monkeypatch.setattr(memory.subprocess, "run", fake_run)
    req = _mem_req(precision="fp16", channels_last=True, threads=3)
    assert memory.cpu_peak(req, train=True) == {"peak_inference_mib": 1.5}
    (args,) = calls
    assert args[1:3] == ["-m", "common.measure.memory"]
    assert Request.from_dict(json.loads(args[3])) == req
    assert args[4:] == ["3", "train"]


def test_cpu_peak_child_failure_keeps_its_reason(monkeypatch):
    # Only a real out-of-memory is a MemoryError (tests/test_burden.py covers the cases).
    monkeypatch.setattr(memory.subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(
        args, 1, stdout="", stderr="Traceback...\nRuntimeError: boom\n"))
    with pytest.raises(ChildFailed, match="boom") as info:
        memory.cpu_peak(_mem_req())
    assert not isinstance(info.value, MemoryError) and info.value.exit_code == 4


def test_child_entry_point_reads_the_request_and_prints_one_json_line(monkeypatch, keep_threads, capsys):
    spy = Spy()
    monkeypatch.setattr(registry, "build", lambda name, device="cpu", options=None: spy)
    memory.child_main([json.dumps(_mem_req(channels_last=True).to_dict()), "1", "train"])
    out = json.loads(capsys.readouterr().out.strip())
    assert "peak_train_step_mib" in out and spy.seen[-1]["channels_last"] is True
    assert torch.get_num_threads() == 1


def test_cpu_peak_in_a_fresh_process_end_to_end():
    """The process boundary itself: ``python -m common.measure.memory`` with real requests
    (the child's precision and memory format are checked in process, above)."""
    # One child, a training step (the guard's tests take an inference across the same boundary).
    train = memory.cpu_peak(_mem_req(threads=1), train=True)
    assert "training step (eager fp32)" in train["method"]  # the child ran the request's mode
    assert train["resident_mib"] > 50  # a real process's RSS (torch alone is beyond 50 MiB), in MiB not KiB
    assert train["peak_rss_mib"] < 100_000
    # The step's growth: what the backward holds, at least the model's fp32 gradients.
    grads_mib = sum(p.numel() for p in meta_model("resnet18").parameters()) * 4 / 2**20
    assert train["hwm_reset"] and train["peak_train_step_mib"] > grads_mib


def test_static_report_survives_a_dead_weak_proxy():
    """In a long-running driver gc may list a weakref.proxy whose referent is gone;
    memlab's own walk of gc's objects raised ReferenceError on it."""
    import weakref

    class Thing:
        pass

    thing = Thing()
    proxy = weakref.proxy(thing)
    del thing  # the proxy stays, dead
    holder = [proxy]  # noqa: F841 - keeps the dead proxy where gc lists it
    model = torch.nn.Linear(4, 2)
    report = memory.static_report(model, torch.zeros(1, 4))
    assert report["elements"] == 4 * 2 + 2 + 4


def test_static_report_counts_the_model_and_input_not_the_process():
    """A driver runs many requests in one process: what an earlier one left alive
    must not count as this model's static memory (memlab's gc walk counted it)."""
    leftover = torch.zeros(10_000)  # noqa: F841 - alive in the process, not part of the model
    report = memory.static_report(torch.nn.Linear(4, 2), torch.zeros(1, 4))
    assert report["elements"] == 4 * 2 + 2 + 4 and report["tensors"] == 3


def test_static_report_skips_fake_tensors_left_by_compile():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        left_behind = torch.empty(1000)  # noqa: F841 - what a compile leaves alive in the process
    model = torch.nn.Linear(4, 2)
    report = memory.static_report(model, torch.zeros(1, 4))
    assert report["elements"] == 4 * 2 + 2 + 4
