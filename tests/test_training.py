"""Training-step timing, per-unit backward, single-layer benchmarks (seed 004)."""
from __future__ import annotations

import json

import pytest

from common.measure.timing import Limits
import torch
from torch import nn

from common import derive, inputs, registry
from common.measure import layerbench, layerwise, oom, structure, training
from common.errors import UserError
from common.registry import Unit
from common.spec import Request
from common.measure.timing import HostMarks

CPU = torch.device("cpu")


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)  # in place, as in torchvision's models
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.bn(self.conv(x)))), 1))


def _spec(batch: int = 2, size: str = "8x8", **kw) -> Request:
    return Request.of("train-timing", "tiny", inputs.resolve(None, size, batch), "cpu",
                   **{"clock": "perf_counter", "warmup": 2, "iters": 20, **kw})


def _tiny_step(with_optimizer: bool):
    torch.manual_seed(0)
    model = Tiny()
    x = inputs.make(_spec().input, CPU)
    return model, training.model_step(model, x, _spec(), with_optimizer)


def test_train_step_without_optimizer_fills_gradients_and_leaves_parameters():
    model, step = _tiny_step(with_optimizer=False)
    before = {k: v.clone() for k, v in model.named_parameters()}
    got = training.train_loop(step, HostMarks(), Limits(1, 3))
    assert model.training
    assert set(got) == {"forward", "backward", "total"}
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.equal(p, before[name]), f"{name} changed without an optimizer"


def test_train_step_with_optimizer_updates_parameters_and_times_it():
    model, step = _tiny_step(with_optimizer=True)
    before = model.fc.weight.detach().clone()
    got = training.train_loop(step, HostMarks(), Limits(0, 2))
    assert set(got) == {"forward", "backward", "total", "optimizer"}
    assert not torch.equal(model.fc.weight, before)


def test_total_is_forward_plus_backward_of_the_same_step(monkeypatch):
    ticks = iter(range(0, 10_000, 1))
    monkeypatch.setattr(training.time, "monotonic", lambda: 0.0)
    marks = HostMarks()
    monkeypatch.setattr(marks, "mark", lambda: float(next(ticks)))
    _, step = _tiny_step(with_optimizer=True)
    got = training.train_loop(step, marks, Limits(0, 3))
    for f, b, t in zip(got["forward"].samples_ms, got["backward"].samples_ms, got["total"].samples_ms):
        assert t == pytest.approx(f + b)
    assert all(s == pytest.approx(1e3) for s in got["optimizer"].samples_ms)  # one tick between its marks


def test_train_loop_max_seconds_counts_from_the_first_timed_step():
    _, step = _tiny_step(with_optimizer=False)
    clock = iter([0.0] + [100.0] * 50)  # the deadline is set, then every later reading is past it
    got = training.train_loop(step, HostMarks(), Limits(3, 20, max_seconds=1.0, min_iters=4),
                              now=lambda: next(clock))
    assert got["total"].to_dict()["iters"] == 4 and got["total"].stopped_early


TINY_UNITS = [Unit("conv", "conv"), Unit("bn", "bn"), Unit("relu", "relu"), Unit("pool", "pool"),
              Unit("flatten", None, "functional flatten"), Unit("fc", "fc")]


def test_backward_hooks_cover_every_unit_within_the_backward_pass():
    torch.manual_seed(0)
    model = Tiny()
    x = inputs.make(_spec().input, CPU)
    got, profiles, _ = training.profile_train(model, x, _spec(), TINY_UNITS)
    n = got["backward"].to_dict()["iters"]
    for p in profiles:
        assert len(p.backward_ms) == n and len(p.samples_ms) == n, p.unit.label
        # Each unit's backward starts and ends at two different moments (a mark shared by
        # mistake between both ends of one unit would give it a zero span).
        assert min(p.backward_ms) > 0, p.unit.label
    # Units' backward spans are disjoint parts of the backward pass, step by step.
    ratios = []
    for i in range(n):
        unit_sum = sum(p.backward_ms[i] for p in profiles)
        assert unit_sum <= got["backward"].samples_ms[i] * 1.0001 + 1e-6
        ratios.append(unit_sum / got["backward"].samples_ms[i])
    assert sorted(ratios)[n // 2] > 0.5  # the loss's backward is the only part outside every unit
    # hooks are gone afterwards
    assert not model.conv._forward_hooks and not model.conv._forward_pre_hooks


def test_backward_order_is_reverse_execution_order(monkeypatch):
    """With a clock that ticks once per mark, a unit that ran later in the forward
    pass starts its backward earlier."""
    torch.manual_seed(0)
    model = Tiny()
    x = inputs.make(_spec().input, CPU)
    marks = HostMarks()
    ticks = iter(range(10_000))
    monkeypatch.setattr(marks, "mark", lambda: float(next(ticks)))
    step = training.model_step(model, x, _spec(), False)
    hooks = layerwise.unit_hooks(model, TINY_UNITS, marks)
    seen = []
    real_collect = hooks.collect

    def spy(fwd, bwd):
        seen.append({k: v for k, v in hooks.seen.items()})
        real_collect(fwd, bwd)

    hooks.collect = spy
    training.train_loop(step, marks, Limits(0, 1), hooks=hooks)
    hooks.remove()
    marks_of = seen[0]
    starts = [marks_of[(i, "grad_out")] for i, u in enumerate(TINY_UNITS) if u.path]
    assert starts == sorted(starts, reverse=True)
    assert (0, "grad_in") not in marks_of  # the input needs no gradient: conv ends the pass
    # Where one unit's output is the next one's input, both share one mark: the
    # host's time between two separate marks would count in both spans.
    for i, j in [(0, 1), (1, 2), (2, 3)]:  # conv->bn, bn->relu (in place), relu->pool
        assert marks_of[(i, "grad_out")] == marks_of[(j, "grad_in")]
    assert marks_of[(3, "grad_out")] > marks_of[(5, "grad_in")]  # the flatten between pool and fc


def test_unit_without_gradient_is_reported():
    class Frozen(Tiny):
        def forward(self, x):
            with torch.no_grad():
                y = self.relu(self.bn(self.conv(x)))
            return self.fc(torch.flatten(self.pool(y), 1))

    model = Frozen()
    x = inputs.make(_spec().input, CPU)
    with pytest.raises(UserError, match="never ran in the backward pass: conv"):
        training.profile_train(model, x, _spec(), TINY_UNITS)


# Residual blocks with in-place ReLUs (ResNet at depth 2) and a functional unit (MobileNet-V2's pooling);
# plain sequential units are covered by Tiny above.
@pytest.mark.parametrize("name,size", [("resnet18", "32x32"), ("mobilenet_v2", "32x32")])
def test_model_units_all_get_backward_spans(name, size):
    spec = Request.of("train-layers", name, inputs.resolve(None, size, 2), "cpu", clock="perf_counter", warmup=0, iters=2)
    model = registry.build(name)
    got, profiles, _ = training.profile_train(model, inputs.make(spec.input, CPU), spec,
                                              registry.units(name, model, 2 if name == "resnet18" else 1))
    assert all(len(p.backward_ms) == 2 for p in profiles)
    assert sum(p.backward_ms[0] for p in profiles) <= got["backward"].samples_ms[0] * 1.0001


# --------------------------------------------------------------------------- single layers

def _layer_flops(name: str, set_name: str = "seed004") -> tuple[int, int]:
    case = next(c for c in layerbench.SETS[set_name] if c.name == name)
    with torch.device("meta"):
        layer = case.build()
    step = training.layer_step(layer, torch.empty(case.input_shape, device="meta"))
    return structure.step_flops(step.forward, step.backward)


def test_conv3x3_flops_by_hand():
    macs = 64 * 3 * 3 * 3 * 224 * 224  # out channels x in channels x kernel x output pixels
    fwd, bwd = _layer_flops("Conv3x3/1")
    assert fwd == 2 * macs == 173_408_256
    assert bwd == 2 * fwd  # input gradient + weight gradient, each as costly as the forward


def test_conv_stride2_has_a_quarter_of_the_output():
    fwd, _ = _layer_flops("Conv5x5/2")
    assert fwd == 2 * 64 * 3 * 5 * 5 * 112 * 112


def test_dense_flops_by_hand():
    fwd, bwd = _layer_flops("Dense")
    assert fwd == 2 * 1024 * 512 == 1_048_576
    assert bwd == 2 * fwd
    fwd_large, _ = _layer_flops("Dense", "large")
    assert fwd_large == 2 * 256 * 4096 * 4096


def test_layer_sets_shapes():
    seed = {c.name: c for c in layerbench.SETS["seed004"]}
    assert list(seed) == ["Conv3x3/1", "Conv5x5/1", "Conv3x3/2", "Conv5x5/2", "MaxPool3x3/2", "MeanPool3x3/2",
                          "BatchNorm", "Dense"]
    assert seed["Conv3x3/1"].input_shape == (1, 3, 224, 224)
    assert isinstance(seed["BatchNorm"].build(), nn.BatchNorm2d) and seed["BatchNorm"].build().num_features == 3
    large = {c.name: c for c in layerbench.SETS["large"]}
    assert large["Conv3x3/1"].input_shape == (8, 64, 224, 224) and large["Dense"].input_shape == (256, 4096)


def test_bytes_moved_counts_each_tensor_once():
    layer = nn.Linear(4, 3)
    moved = layerbench.bytes_moved(layer, (2, 4), (2, 3), 4)
    assert moved["forward"] == (8 + 15 + 6) * 4
    assert moved["backward"] == (6 + 8 + 15 + 8 + 15) * 4


def test_layer_step_fills_input_and_weight_gradients():
    layer = nn.Conv2d(3, 4, 3, padding=1)
    step = training.layer_step(layer, torch.randn(1, 3, 8, 8))
    step.run()
    assert all(p.grad is not None for p in step.params)




def test_profile_train_takes_the_optimizer_from_the_request():
    torch.manual_seed(0)
    model = Tiny()
    x = inputs.make(_spec().input, CPU)
    got, profiles, step = training.profile_train(model, x, _spec(with_optimizer=True, warmup=0, iters=2), None)
    assert set(got) == {"forward", "backward", "total", "optimizer"} and profiles is None
    assert isinstance(step.optimizer, torch.optim.SGD)
    got, _, step = training.profile_train(model, x, _spec(warmup=0, iters=2), None)
    assert "optimizer" not in got and step.optimizer is None


# --------------------------------------------------------------------------- single layers under autocast

def _case(name: str, shape=(1, 3, 16, 16)) -> layerbench.LayerCase:
    return layerbench.LayerCase(name, next(c for c in layerbench.SETS["seed004"] if c.name == name).build, shape)


def _elements(row: dict) -> tuple[int, int, int]:
    x, y = (int(torch.Size(row[k]).numel()) for k in ("input_shape", "output_shape"))
    return x, row["params"], y


@pytest.mark.parametrize("name,width", [("MaxPool3x3/2", 4), ("MeanPool3x3/2", 4), ("BatchNorm", 4),
                                        ("Conv3x3/1", 2), ("Dense", 2)])
def test_layer_bytes_use_the_dtype_the_op_really_runs_in_under_autocast(name, width):
    """bf16 autocast runs convolutions and matrix products in bf16 but leaves pooling
    and batch norm in fp32: their bytes are 4 per element, not 2 (which halved their GB/s)."""
    case = _case(name, (2, 1024) if name == "Dense" else (1, 3, 16, 16))
    row = layerbench.measure_case(case, CPU, "bf16", "perf_counter", 0, 2)
    x, w, y = _elements(row)
    assert row["forward"]["bytes"] == (x + w + y) * width
    assert row["backward"]["bytes"] == (y + x + w + x + w) * width
    assert row["total"]["bytes"] == row["forward"]["bytes"] + row["backward"]["bytes"]
    for phase in ("forward", "backward", "total"):
        m = row[phase]
        assert m["achieved_gbs"] == derive.gbs(m["bytes"], m["stats"]["median_ms"])
        assert m["achieved_tflops"] == derive.tflops(m["flops"], m["stats"]["median_ms"])


def test_layer_bytes_in_fp32_are_four_per_element():
    row = layerbench.measure_case(_case("Conv3x3/1"), CPU, "fp32", "perf_counter", 0, 2)
    x, w, y = _elements(row)
    assert row["forward"]["bytes"] == (x + w + y) * 4


# --------------------------------------------------------------------------- out of memory

def test_largest_fitting_batch_halves_until_it_fits():
    assert oom.largest_fitting_batch(64, lambda b: b <= 8) == (8, [32, 16, 8])
    assert oom.largest_fitting_batch(4, lambda b: False) == (None, [2, 1])
    assert oom.largest_fitting_batch(1, lambda b: True) == (None, [])


@pytest.mark.parametrize("exc,expected", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (MemoryError(), True),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes"), True),
    (RuntimeError("shape mismatch"), False),
    (ValueError("out of memory"), False),  # not an allocator error type
])
def test_is_oom(exc, expected):
    assert oom.is_oom(exc) is expected


def test_is_oom_sees_through_a_wrapping_error():
    try:
        try:
            raise torch.OutOfMemoryError("CUDA out of memory")
        except torch.OutOfMemoryError as inner:
            raise RuntimeError("backend compiler failed") from inner
    except RuntimeError as outer:
        assert oom.is_oom(outer)


class Fits(nn.Module):
    """Runs out of memory above ``limit`` images; records what each call saw."""

    def __init__(self, limit: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)
        self.limit, self.seen = limit, []

    def forward(self, x):
        self.seen.append({"batch": x.shape[0], "grad": torch.is_grad_enabled(),
                          "autocast": torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"),
                          "channels_last": x.is_contiguous(memory_format=torch.channels_last)
                          and not x.is_contiguous()})
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return self.fc(self.conv(x).mean((2, 3)))


@pytest.fixture
def fits_model(monkeypatch):
    model = Fits(limit=2)
    monkeypatch.setattr(registry, "build", lambda name, device="cpu", options=None: model)
    return model


def test_one_step_fits_runs_one_inference_in_the_request_mode(fits_model, monkeypatch):
    prepared = []
    real_prepare = oom.execution.prepare
    monkeypatch.setattr(oom.execution, "prepare", lambda m, x, req: prepared.append(req) or real_prepare(m, x, req))
    req = Request.of("timing", "tiny", inputs.resolve(None, "8x8", 8), "cpu", clock="perf_counter",
                  precision="bf16", channels_last=True)
    assert oom.one_step_fits(req, 4) is False
    assert oom.one_step_fits(req, 2) is True
    assert [s["batch"] for s in fits_model.seen] == [4, 2]  # one inference per probe
    assert fits_model.seen[-1] == {"batch": 2, "grad": False, "autocast": torch.bfloat16, "channels_last": True}
    # Through execution.prepare, the request's mode whole (graph and compile included), at the probed batch.
    assert [r.input.batch for r in prepared] == [4, 2]
    assert prepared[-1].mode_dict() == req.mode_dict()


def test_one_step_fits_runs_one_training_step_for_a_training_request(fits_model):
    req = _spec(batch=8, channels_last=True, with_optimizer=True)
    assert oom.largest_fitting_batch(8, lambda b: oom.one_step_fits(req, b)) == (2, [4, 2])
    assert fits_model.seen[-1]["grad"] is True and fits_model.seen[-1]["channels_last"] is True
    assert fits_model.fc.weight.grad is not None


def test_one_step_fits_lets_other_errors_through(monkeypatch):
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("a bug")

    monkeypatch.setattr(registry, "build", lambda name, device="cpu", options=None: Broken())
    req = Request.of("timing", "tiny", inputs.resolve(None, "8x8", 8), "cpu", clock="perf_counter")
    with pytest.raises(RuntimeError, match="a bug"):
        oom.one_step_fits(req, 4)
