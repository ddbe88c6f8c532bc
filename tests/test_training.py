"""Training-step timing, per-unit backward, single-layer benchmarks (seed 004)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from common import cli, inputs, registry
from common.measure import layerbench, layerwise, structure, training
from common.errors import UserError
from common.registry import Unit
from common.spec import RunSpec
from common.measure.timing import HostMarks
from conftest import load_json, run_py, script, snapshot, tmp_leftovers

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


def _spec(batch: int = 2, size: str = "8x8") -> RunSpec:
    return RunSpec("tiny", inputs.resolve(None, size, batch), "cpu", clock="perf_counter", warmup=2, iters=20)


def _tiny_step(with_optimizer: bool):
    torch.manual_seed(0)
    model = Tiny()
    x = inputs.make(_spec().input, CPU)
    return model, training.model_step(model, x, _spec(), with_optimizer)


def test_train_step_without_optimizer_fills_gradients_and_leaves_parameters():
    model, step = _tiny_step(with_optimizer=False)
    before = {k: v.clone() for k, v in model.named_parameters()}
    got = training.train_loop(step, HostMarks(), warmup=1, iters=3)
    assert model.training
    assert set(got) == {"forward", "backward", "total"}
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.equal(p, before[name]), f"{name} changed without an optimizer"


def test_train_step_with_optimizer_updates_parameters_and_times_it():
    model, step = _tiny_step(with_optimizer=True)
    before = model.fc.weight.detach().clone()
    got = training.train_loop(step, HostMarks(), warmup=0, iters=2)
    assert set(got) == {"forward", "backward", "total", "optimizer"}
    assert not torch.equal(model.fc.weight, before)


def test_total_is_forward_plus_backward_of_the_same_step(monkeypatch):
    ticks = iter(range(0, 10_000, 1))
    monkeypatch.setattr(training.time, "monotonic", lambda: 0.0)
    marks = HostMarks()
    monkeypatch.setattr(marks, "mark", lambda: float(next(ticks)))
    _, step = _tiny_step(with_optimizer=True)
    got = training.train_loop(step, marks, warmup=0, iters=3)
    for f, b, t in zip(got["forward"].samples_ms, got["backward"].samples_ms, got["total"].samples_ms):
        assert t == pytest.approx(f + b)
    assert all(s == pytest.approx(1e3) for s in got["optimizer"].samples_ms)  # one tick between its marks


def test_train_loop_max_seconds_counts_from_the_first_timed_step():
    _, step = _tiny_step(with_optimizer=False)
    clock = iter([0.0] + [100.0] * 50)  # the deadline is set, then every later reading is past it
    got = training.train_loop(step, HostMarks(), warmup=3, iters=20, max_seconds=1.0, min_iters=4,
                              now=lambda: next(clock))
    assert got["total"].to_dict()["iters"] == 4 and got["total"].stopped_early


TINY_UNITS = [Unit("conv", "conv"), Unit("bn", "bn"), Unit("relu", "relu"), Unit("pool", "pool"),
              Unit("flatten", None, "functional flatten"), Unit("fc", "fc")]


def test_backward_hooks_cover_every_unit_within_the_backward_pass():
    torch.manual_seed(0)
    model = Tiny()
    x = inputs.make(_spec().input, CPU)
    got, profiles, _ = training.profile_train(model, x, _spec(), False, TINY_UNITS)
    n = got["backward"].to_dict()["iters"]
    for p in profiles:
        assert len(p.backward_ms) == n and len(p.samples_ms) == n, p.unit.label
        assert all(s >= 0 for s in p.backward_ms), p.unit.label
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
    training.train_loop(step, marks, warmup=0, iters=1, hooks=hooks)
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
        training.profile_train(model, x, _spec(), False, TINY_UNITS)


@pytest.mark.parametrize("name,size", [("resnet18", "32x32"), ("mobilenet_v2", "32x32"), ("vgg16", "32x32")])
def test_model_units_all_get_backward_spans(name, size):
    spec = RunSpec(name, inputs.resolve(None, size, 2), "cpu", clock="perf_counter", warmup=0, iters=2)
    model = registry.build(name)
    got, profiles, _ = training.profile_train(model, inputs.make(spec.input, CPU), spec, False,
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


# --------------------------------------------------------------------------- end to end

FAST = ["--device", "cpu", "--size", "32x32", "--batch", "2", "--iters", "3", "--warmup", "1", "--tag", "t"]


def test_timer_pass_train_writes_phases_memory_and_inference(tmp_path):
    out = run_py([script("resnet18", "timer"), "--model", "resnet18", "--pass", "train", "--with-optimizer",
                  *FAST, "--out-dir", tmp_path], tmp_path)
    assert out.returncode == 0, out.stderr
    rec = load_json(tmp_path / "results/records/t/train-timing/resnet18_32x32_b2_train-sgd.json")
    r = rec["result"]
    assert set(r["train"]) == {"forward", "backward", "total", "optimizer"}
    assert r["train"]["total"]["iters"] == 3 and len(r["inference"]["samples_ms"]) == 3
    assert r["flops"]["backward"] > r["flops"]["forward"] > 0
    assert r["train_peak"]["peak_train_step_mib"] > r["inference_peak"]["peak_inference_mib"] > 0
    text = (tmp_path / "resnet_profiler/resnet18_stats/t/resnet18_32x32_b2_train-sgd.txt").read_text()
    for word in ("forward", "backward", "total", "optimizer", "inference", "SGD(lr=0.1, momentum=0.9)",
                 "Peak memory above resident: training step"):
        assert word in text


def test_timer_pass_train_layers_vgg(tmp_path):
    out = run_py([script("vgg16", "timer"), "--model", "vgg16", "--pass", "train", "--layers", *FAST,
                  "--out-dir", tmp_path], tmp_path)
    assert out.returncode == 0, out.stderr
    rec = load_json(tmp_path / "results/records/t/train-layers/vgg16_32x32_b2_train.json")
    units = rec["result"]["units"]
    assert [u["label"] for u in units][:2] == ["conv1_1", "relu1_1"]
    assert all(len(u["backward"]["samples_ms"]) == 3 for u in units)
    assert 0.3 < rec["result"]["coverage"]["backward"] <= 1.0001
    assert "bwd share" in (tmp_path / "vgg_profiler/vgg16_stats/t/layers/vgg16_32x32_b2_train.txt").read_text()


@pytest.mark.parametrize("extra,words", [
    (["--with-optimizer"], "--with-optimizer needs --pass train"),
    (["--pass", "train", "--compile"], "--pass train times eager training steps"),
    (["--pass", "train", "--mode", "fastest"], "--pass train times eager training steps"),
    (["--pass", "backward"], "invalid choice"),
    (["--pass", "train", "--batch", "1"], "batch norm needs more than one value per channel"),
])
def test_train_bad_flags_are_one_line(tmp_path, extra, words):
    out = run_py([script("resnet18", "timer"), "--model", "resnet18", *FAST, *extra, "--out-dir", tmp_path],
                 tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and words in out.stderr
    assert not snapshot(tmp_path)


def test_layer_profiler_seed004_end_to_end(tmp_path):
    out = run_py([script("resnet18", "timer").parent.parent / "layer_profiler/timer.py", "--set", "seed004",
                  "--device", "cpu", "--iters", "2", "--warmup", "0", "--tag", "t", "--out-dir", tmp_path], tmp_path)
    assert out.returncode == 0, out.stderr
    rec = load_json(tmp_path / "results/records/t/layer-bench/seed004.json")
    rows = {r["layer"]: r for r in rec["result"]["rows"]}
    assert len(rows) == 8
    assert rows["Conv3x3/1"]["forward"]["flops"] == 173_408_256
    assert rows["Dense"]["total"]["flops"] == 3 * 1_048_576
    assert rows["MaxPool3x3/2"]["forward"]["flops"] == 0 and rows["MaxPool3x3/2"]["forward"]["achieved_gbs"] > 0
    text = (tmp_path / "layer_profiler/layer_stats/t/seed004.txt").read_text()
    assert "Conv5x5/2" in text and "TFLOP/s" in text
    assert not tmp_leftovers(tmp_path)


def test_layer_profiler_bad_set_is_one_line(tmp_path):
    out = run_py([script("resnet18", "timer").parent.parent / "layer_profiler/timer.py", "--set", "huge",
                  "--device", "cpu", "--out-dir", tmp_path], tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "'huge'" in out.stderr


# --------------------------------------------------------------------------- out of memory

def test_largest_fitting_batch_halves_until_it_fits():
    assert cli.largest_fitting_batch(64, lambda b: b <= 8) == (8, [32, 16, 8])
    assert cli.largest_fitting_batch(4, lambda b: False) == (None, [2, 1])
    assert cli.largest_fitting_batch(1, lambda b: True) == (None, [])


def test_oom_names_the_batch_and_the_largest_that_fit(tmp_path, monkeypatch, capsys):
    def oom(*_a, **_k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(cli.timing, "run_loop", oom)
    monkeypatch.setattr(cli, "_searchable", lambda args: True)
    monkeypatch.setattr(cli, "_one_step_fits", lambda args, b: b <= 2)
    argv = ["--model", "resnet18", "--device", "cpu", "--size", "32x32", "--batch", "8", "--tag", "t",
            "--out-dir", str(tmp_path)]
    assert cli.main("timer", "resnet", argv) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "batch 8; batch 2 fits (tried 4, 2)" in err and "out of memory" in err
    assert not snapshot(tmp_path)


# --------------------------------------------------------------------------- seed-004 tables

def _phase(mean_ms: float, iters: int = 7) -> dict:
    return {"stats": {"mean_ms": mean_ms, "median_ms": mean_ms}, "iters": iters, "achieved_tflops": 1.0}


def _train_record(tmp_path, model: str, batch: int, total: float, device_type: str = "cuda") -> dict:
    path = tmp_path / "records/dev/train-timing" / f"{model}.json"
    return {"kind": "train-timing", "_path": str(path),
            "spec": {"model": model, "variant": "", "input": {"name": "imagenet", "batch": batch}},
            "env": {"date": "2026-11-23T10:00:00+00:00", "device_type": device_type, "device_name": "Test GPU"},
            "result": {"with_optimizer": False, "inference": _phase(total / 4),
                       "train": {"forward": _phase(total / 3), "backward": _phase(2 * total / 3), "total": _phase(total)},
                       "train_peak": {"peak_train_step_mib": 1000.0}, "inference_peak": {"peak_inference_mib": 100.0}}}


def test_seed004_table_puts_the_seed_beside_ours_with_speed_up(tmp_path):
    from common.render import tables, train as tables_train

    seeds = tables.Seeds.load(tables.SEEDS)
    recs = [_train_record(tmp_path, "vgg16", 8, 42.6), _train_record(tmp_path, "resnet101", 4, 33.8)]
    text = tables_train.section(recs, seeds.seed004)
    vgg = next(line for line in text.splitlines() if line.startswith("| **VGG16** "))
    cells = [c.strip() for c in vgg.strip("|").split("|")]
    assert cells[:6] == ["**VGG16**", "8", "14.20", "28.40", "42.60", "10.65"]
    assert cells[6:9] == ["85.2", "23.4", "2.00"]  # seed 004's 1080 Ti: 0.0852 s total; 85.2 / 42.6
    r101 = next(line for line in text.splitlines() if line.startswith("| **ResNet-101** "))
    r101_cells = [c.strip() for c in r101.strip("|").split("|")]
    assert r101_cells[1] == "4" and r101_cells[8] == "2.00"  # 67.6 / 33.8
    # a record at another batch is not the seed's input: no row of ours for it
    other = tables_train.section([_train_record(tmp_path, "vgg16", 2, 10.0)], seeds.seed004)
    assert "10.00" not in other


def test_seed004_section_is_empty_without_records():
    from common.render import tables, train as tables_train

    assert tables_train.section([], tables.Seeds.load(tables.SEEDS).seed004) == ""


def test_modes_table_shows_search_candidates(tmp_path):
    from common.render import tables

    rec = {"kind": "timing", "_path": str(tmp_path / "records/dev/timing/r.json"),
           "spec": {"model": "resnet50", "variant": "bf16-cl-graph", "mode": "bf16 channels-last + CUDA graph",
                    "input": {"name": "cityscapes", "batch": 1}},
           "env": {"date": "2026-11-23T10:00:00+00:00", "device_name": "Test GPU"},
           "result": {"timing": {"stats": {"median_ms": 3.5, "fps": 285.0}}, "achieved_tflops": 97.0,
                      "fraction_of_peak": 0.127,
                      "fastest": {"picked": "bf16 channels-last + CUDA graph", "candidates": [
                          {"mode": "eager fp32", "variant": "", "median_ms": 16.5, "achieved_tflops": 20.7,
                           "fraction_of_peak": 0.41, "timing": {"iters": 61, "stats": {"fps": 60.6}}},
                          {"mode": "bf16 channels-last + CUDA graph", "variant": "bf16-cl-graph", "median_ms": 3.6,
                           "timing": {"iters": 280, "stats": {"fps": 277.0}}},
                          {"mode": "eager tf32", "variant": "tf32", "skipped": "no"}]}}}
    modes: dict = {}
    tables._collect_mode(rec, modes)
    tables._collect_candidates(rec, modes)
    assert modes[("dev", "resnet50", "cityscapes", "bf16-cl-graph")]["median_ms"] == 3.5  # the full measurement wins
    assert modes[("dev", "resnet50", "cityscapes", "")]["search"] == 61
    assert ("dev", "resnet50", "cityscapes", "tf32") not in modes
    table = tables.modes_table(tables.Results({}, [], modes), "dev")
    assert "eager fp32 (search: 61 iterations)" in table and "(picked by --mode fastest)" in table
