"""Any model by name (issue 12): the zoo timer, generic units, size checks, output
stride and features, throughput search, failures in a sweep, zoo.md and the Pareto
frontier. CPU, in process, small sizes."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from common import cli, inputs, parsers, records, registry
from common.errors import UserError
from common.registry import Options, generic
from common.registry import unit_trace as unit_rules
from common.render import zoo as render_zoo
from common.spec import Request
from common.zoo import driver, throughput

ZOO_TIMER = ["--size", "64x64", "--layers", "--warmup", "0", "--iters", "1", "--device", "cpu"]


@pytest.mark.parametrize("model", ["convnext_tiny", "efficientnet_b0", "regnety_032", "vit_base_patch16_224",
                                   "swin_t", "deeplabv3_resnet50.backbone"])
def test_zoo_timer_layers_small(model, tmp_path, capsys):
    code = cli.main("timer", "zoo", ["--model", model, *ZOO_TIMER, "--out-dir", str(tmp_path)],
                    prog="zoo_profiler/timer.py")
    err = capsys.readouterr().err
    assert code == 0, err
    txts = list((tmp_path / "zoo_profiler" / f"{model}_stats").rglob("layers/*.txt"))
    assert len(txts) == 1
    text = txts[0].read_text()
    assert "Coverage (sum of units / whole model)" in text
    rec = json.loads(next((tmp_path / "results" / "records").rglob("layers/*.json")).read_text())
    assert rec["request"]["model"] == model and rec["result"]["units"]
    if model == "vit_base_patch16_224":
        assert any("dynamic_img_size" in n for n in registry.notes(model))


def test_fixed_size_model_one_line(tmp_path, capsys):
    code = cli.main("timer", "zoo", ["--model", "mixer_b16_224", *ZOO_TIMER, "--out-dir", str(tmp_path)],
                    prog="zoo_profiler/timer.py")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "needs 224x224; takes 224x224 only" in err[0] and "Traceback" not in err[0]


def test_unknown_name_names_the_closest(capsys, tmp_path):
    code = cli.main("timer", "zoo", ["--model", "convnxt_tiny", "--out-dir", str(tmp_path)], prog="zoo_profiler/timer.py")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "did you mean convnext_tiny" in err[0]


def test_catalogue_models_stay_in_their_family(capsys, tmp_path):
    code = cli.main("timer", "zoo", ["--model", "resnet50", "--out-dir", str(tmp_path)], prog="zoo_profiler/timer.py")
    assert code == 2 and "resnet_profiler/timer.py" in capsys.readouterr().err
    assert registry.get("convnext_tiny").family == "zoo"


class Shared(nn.Module):
    """One activation module applied three times, an unused module, functional ops between."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.unused = nn.Linear(3, 3)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = self.act(self.conv1(x))
        x = self.act(self.block(x) + x)
        x = self.act(x).mean((2, 3))
        return self.head(x)


def test_generic_units_every_executed_module_once():
    model = Shared().eval()
    tr = unit_rules.trace(model, torch.randn(1, 3, 8, 8))
    for depth in (1, 2):
        units = unit_rules.units_from_trace(model, tr, depth)
        paths = [u.path for u in units if u.path]
        assert "unused" not in paths and "act" not in paths  # never executed / shared
        assert len(paths) == len(set(paths))
        executed = {p for k, p in tr.events if k == "pre"}
        leaves = {m for m in executed if not any(o.startswith(m + ".") for o in executed)}
        # every executed leaf module is inside exactly one unit, or is shared and timed in a gap
        for m in leaves:
            inside = [p for p in paths if m == p or m.startswith(p + ".")]
            assert len(inside) == 1 or m == "act", (m, inside)
        notes = " ".join(u.note for u in units if u.path is None)
        assert "act x3 shared" in notes and "add" in notes and "mean" in notes
    assert [u.path for u in unit_rules.units_from_trace(model, tr, 2) if u.path] == ["conv1", "block.0", "block.1", "head"]


def test_generic_units_real_model_cover_top_level():
    units = registry.units("efficientnet_b0", registry.build("efficientnet_b0", "meta"), 2)
    paths = [u.path for u in units if u.path]
    assert paths[0] == "features.0" and paths[-1] == "classifier.1" and len(paths) == len(set(paths))
    # torchvision's RegNets cannot be constructed on meta: built on the CPU, moved, then traced
    assert [u.path for u in registry.units("regnet_y_400mf", registry.build("regnet_y_400mf", "meta"), 1)] == \
        ["stem", "trunk_output", "avgpool", "fc"]
    generic.check_size(registry.get("regnet_y_400mf"), 1024, 2048)
    with pytest.raises(UserError, match="vit_h_14 needs 224x224"):
        generic.check_size(registry.get("vit_h_14"), 1024, 2048)


def _last_stage_hw(model: nn.Module) -> tuple[int, int]:
    trunk = nn.Sequential(*[m for n, m in model.named_children() if n not in ("avgpool", "fc")])
    return tuple(trunk(torch.empty(1, 3, 64, 64, device="meta")).shape[-2:])


@pytest.mark.parametrize("stride,hw", [(32, (2, 2)), (16, (4, 4)), (8, (8, 8))])
def test_output_stride_dilates_the_last_stages(stride, hw):
    model = registry.build("resnet50", "meta", Options(output_stride=stride))
    assert _last_stage_hw(model) == hw
    assert registry.get("resnet50", Options(output_stride=stride)).family == "resnet"


def test_output_stride_timm_and_clear_errors():
    x = registry.build("xception41", "meta", Options(output_stride=16))
    assert x.forward_features(torch.empty(1, 3, 64, 64, device="meta")).shape[-1] == 4
    for name in ("resnet18", "xception", "convnext_tiny"):
        with pytest.raises(UserError, match="output.stride|dilates"):
            registry.build(name, "meta", Options(output_stride=8))


def test_features_return_a_list():
    for name in ("resnet50", "timm/resnet50", "efficientnet_b0"):
        out = registry.build(name, "meta", Options(features=True))(torch.empty(1, 3, 64, 64, device="meta"))
        assert isinstance(out, list) and len(out) >= 4
        assert out[-1].shape[-1] == 2  # stride 32


def test_request_stems_name_the_build():
    from common import inputs
    from common.spec import Request

    base = Request(kind="timing", model="resnet50", input=inputs.resolve("cityscapes", None), device="cpu")
    from dataclasses import replace

    assert base.stem == "resnet50_cityscapes"
    assert replace(base, output_stride=8).stem == "resnet50_cityscapes_os8"
    assert replace(base, kind="memory", features=True).stem == "resnet50_cityscapes_features"
    assert replace(base, model="timm/resnet50").stem == "timm__resnet50_cityscapes"


def test_throughput_search_doubles_then_halves():
    calls = []

    def fits(b):
        calls.append(b)
        return b <= 100

    best, tried = throughput.search_largest(1, fits, cap=4096)
    assert tried[:8] == [1, 2, 4, 8, 16, 32, 64, 128]  # doubling until 128 fails
    assert 94 <= best <= 100 and fits(best) and tried == calls[:len(tried)]
    assert throughput.search_largest(8, lambda b: b <= 3, 64) == (2, [8, 4, 2])  # halving below the start
    assert throughput.search_largest(4, lambda b: True, 48)[0] == 48  # the cap itself


def test_throughput_timing_backs_off_when_the_largest_batch_runs_out_of_memory(monkeypatch):
    timed = []

    def time_at(req, batch, device, bench=False):
        timed.append(batch)
        if batch > 50:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 12.25 GiB")
        return {"batch": batch, "images_per_s": 1000.0}

    monkeypatch.setattr(throughput, "time_at", time_at)
    monkeypatch.setattr(throughput, "_cpu_fits", lambda req: lambda b: b <= 64)
    req = throughput.request_of(Request(kind="timing", model="resnet18", input=inputs.of("32x32"), device="cpu"))
    row = throughput.measure_mode(req, torch.device("cpu"), "eager fp32", cap=None, bench=True)
    assert row["largest_batch"] == 64 and row["search"]["ceiling"] == throughput.MAX_BATCH
    assert row["at_largest"]["batch"] == 49 and timed == [1, 64, 56, 49]
    assert row["at_largest"]["backed_off"]["ran_out_of_memory_when_timed"] == [64, 56]

    def broken(req, batch, device, bench=False):
        raise RuntimeError("a bug, not memory")

    monkeypatch.setattr(throughput, "time_at", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        throughput.measure_mode(req, torch.device("cpu"), "eager fp32", cap=None, bench=True)


def test_throughput_txt_of_an_uncapped_search_names_its_ceiling():
    from common.render import throughput as render_tp

    search = {"tried": [1, 2, 4], "cap": None, "ceiling": throughput.MAX_BATCH, "method": "one inference per batch"}
    rec = {"device_tag": "nvidia-h200", "env": {}, "request": {"model": "resnet18", "warmup": 3, "iters": 50,
           "input": {"name": "imagenet", "height": 224, "width": 224}},
           "result": {"user_batch": 1, "modes": [{"name": "eager fp32", "mode": {"mode": "eager fp32"},
                                                 "largest_batch": 2, "search": search, "error": "x"}]}}
    text = render_tp.throughput_txt(rec)
    assert f"no cap (doubling until out of memory, ceiling {throughput.MAX_BATCH})" in text
    assert "largest batch that fits: 2\n" in text


def test_throughput_request_stem(tmp_path):
    args = parsers.model("timer", "zoo").parse_args(["--model", "convnext_tiny", "--input", "imagenet",
                                                        "--throughput", "--device", "cpu"])
    req = throughput.request_of(cli.request_from_args(args, "timer", torch.device("cpu"), "zoo"))
    assert req.kind == "throughput" and req.stem == "convnext_tiny_imagenet" and req.variant == ""


def _rec(kind, tag, model, preset, result, date="2026-01-01T00:00:00+00:00", **req):
    request = {"kind": kind, "model": model, "input": {"name": preset, "batch": 1, "height": 224, "width": 224},
               "search": "as-given", "variant": "", "warmup": 10, "iters": 100, "max_seconds": 2, "min_iters": 10,
               **req}
    return {"schema": 2, "kind": kind, "device_tag": tag, "request": request, "env": {"date": date},
            "code_version": {}, "result": result, "superseded": None}


def _timing(ms, params=1e6):
    return {"timing": {"stats": {"median_ms": ms}}, "cost": {"params": params, "macs": 1e9, "feature_mib": 10}}


def test_frontier_by_hand():
    P = render_zoo.Point
    pts = [P("a", 1.0, 70), P("b", 2.0, 75), P("c", 3.0, 72), P("d", 4.0, 80), P("e", 2.0, 74), P("f", 5.0, 80)]
    assert [p.model for p in render_zoo.frontier(pts)] == ["a", "b", "d"]


def test_zoo_md_from_fake_records(tmp_path):
    tag = "gpu-x"
    recs = [
        _rec("zoo-run", tag, "zoo", "imagenet", {"models": ["convnext_tiny", "efficientnet_b0", "vit_b_16"],
                                                 "inputs": ["imagenet"], "failed": [], "wall_s": 60, "steps": 9,
                                                 "protocol": "p"}),
        _rec("timing", tag, "convnext_tiny", "imagenet",
             {**_timing(3.0), "kernels": {"busy": 0.3456, "launch_bound": True, "kernel_ms": 1.04}}),
        _rec("timing", tag, "efficientnet_b0", "imagenet", _timing(2.0), repeats=3, max_seconds=1),  # another protocol
        _rec("timing", tag, "convnext_tiny", "imagenet", {**_timing(1.5), "fastest": {"picked": "eager bf16"}},
             search="fastest"),
        _rec("failure", tag, "vit_b_16", "imagenet", {"slot": "eager", "reason": "out of memory at vit_b_16"}),
        _rec("timing", tag, "resnet50", "cityscapes", _timing(9.0), output_stride=8),  # not a zoo row
    ]
    for i, r in enumerate(recs):
        path = records.record_path(tmp_path, tag, r["kind"], f"r{i}")
        records.write_record(path, r)
    text = render_zoo.outputs(tmp_path)[tmp_path / "zoo.md"]
    assert "out of memory at vit_b_16" in text and "`convnext_tiny`" in text and "resnet50" not in text
    assert "82.5" in text  # convnext_tiny: torchvision weights metadata, acc@1 82.52
    # The table states its cells' common protocol; a cell measured otherwise is marked and named.
    assert "Protocol: custom: 10 warm-up + at least 10 timed iterations and 2 s, at most 100, batch 1." in text
    assert "2.000 *" in text and "3.000 *" not in text
    # A host-bound row (its kernel profile: busy below the threshold) is flagged, the mark explained once.
    assert "3.000 ‡ busy 0.35" in text and text.count("‡ Host-bound") == 1
    assert ("\\* Measured at another protocol, custom: 10 warm-up + at least 10 timed iterations and 1 s, at most "
            "100, 3 repeats on fresh instances, batch 1: `efficientnet_b0` eager.") in text
    frontier = text.split("Pareto frontier, eager fp32")[1].split("Pareto frontier, fastest")[0]
    assert "`efficientnet_b0`" in frontier and "`convnext_tiny`" in frontier  # 2 ms 77.7 %, 3 ms 82.5 %
    figs = render_zoo.figures(tmp_path)
    assert list(figs) == [tmp_path / "figures" / f"zoo_pareto_{tag}_imagenet.png"]
    assert render_zoo.figure_paths(tmp_path) == list(figs)  # what --check looks for, without drawing


def test_sweep_records_failures_and_goes_on(tmp_path, monkeypatch, capsys):
    seen = []

    def fake_measure(req, session, model=None, with_timing=False, cap=None):
        seen.append((req.model, req.kind))
        if req.model == "efficientnet_b0":
            raise RuntimeError("forward failed at this size")
        return []

    monkeypatch.setattr(cli, "measure_and_save", fake_measure)
    code = driver.main(["--models", "vit_b_16", "efficientnet_b0", "mobilenet_v3_small", "--inputs", "pascal",
                        "--what", "eager", "memory", "--device", "cpu", "--out-dir", str(tmp_path), "--tag", "t"])
    assert code == 0
    fails = {p.stem: json.loads(p.read_text())["result"]["reason"]
             for p in (tmp_path / "results" / "records" / "t" / "failure").glob("*.json")}
    assert set(fails) == {"eager__vit_b_16_pascal", "memory__vit_b_16_pascal", "eager__efficientnet_b0_pascal",
                          "memory__efficientnet_b0_pascal"}
    assert "needs 224x224" in fails["eager__vit_b_16_pascal"]
    assert "forward failed at this size" in fails["eager__efficientnet_b0_pascal"]
    assert ("mobilenet_v3_small", "timing") in seen and ("mobilenet_v3_small", "memory") in seen
    run = json.loads((tmp_path / "results" / "records" / "t" / "zoo-run" / "zoo.json").read_text())["result"]
    assert len(run["failed"]) == 4 and run["models"] == ["vit_b_16", "efficientnet_b0", "mobilenet_v3_small"]


def test_zoo_wall_time_counts_each_call_once_even_when_two_calls_start_from_one_tree():
    """Each zoo-run version adds its call to the version its call started from: two calls
    that both started from the 4-call version each count their own share."""
    def version(date, calls, wall, via=None):
        return {"env": {"date": f"2026-12-01T0{date}:00:00+00:00"},
                "result": {"calls": calls, "wall_s": wall, **({"via": via} if via else {})}}

    versions = [version(1, 1, 100.0), version(2, 3, 400.0),  # the 2-call version was not kept
                version(3, 4, 500.0, "Dask sweep zoo"), version(4, 5, 600.0), version(5, 5, 550.0)]
    assert render_zoo.calls_of(versions) == (650.0, 6, 1)
    assert render_zoo.calls_of(versions[:1]) == (100.0, 1, 0)
