"""Model-zoo burden (common.burden): ResNet-18 against hand-derived figures, failures
reported rather than fatal, the measured peak and how a failed peak worker is named,
the comparison with convnet-burden, records and rendering from records only."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from common.errors import ChildFailed
import torch
from torch import nn

from common import records, registry
from common.burden import analysis, cli, peak_held, seed003, store
from common.burden.profile import BurdenRequest
from common.derive import MIB
from common.errors import UserError
from common.inputs import InputSpec
from common.measure import failures, memory
from common.registry import zoo
from common.render import burden as render
from common.spec import Request
from conftest import ROOT


def _record(results, name: str) -> dict:
    return json.loads(store.path(results, BurdenRequest(name)).read_text())


def _cells(markdown: str, first: str) -> list[str]:
    """The cells of the table row whose first cell starts with ``first``."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith(first):
            return cells
    raise AssertionError(f"no row {first!r}")


# --------------------------------------------------------------------------- ResNet-18 by hand

def _conv_macs(out_hw: int, cin: int, cout: int, k: int) -> int:
    return out_hw * out_hw * cout * cin * k * k


def _resnet18_by_hand() -> dict:
    """Figures of torchvision's ResNet-18 at 224 x 224, batch 1, from its architecture:
    conv1 7x7/2 -> 112, maxpool -> 56; four stages of two BasicBlocks (3x3 convs), widths
    64/128/256/512 at 56/28/14/7, a 1x1/2 downsample conv + BN opening stages 2-4; fc 512->1000."""
    stages = [(64, 56), (128, 28), (256, 14), (512, 7)]
    params = 3 * 64 * 7 * 7 + 2 * 64  # conv1 (no bias) + bn1 (weight, bias)
    macs = _conv_macs(112, 3, 64, 7)
    # Features (floats), convnet-burden's convention with in-place ReLU and +=:
    # conv1, bn1, maxpool; per block conv1, bn1, conv2, bn2; downsample conv + bn; avgpool; fc.
    feats = 2 * 64 * 112 * 112 + 64 * 56 * 56
    sums = 0  # the residual sums torchvision runs in place (convnet-burden stores them)
    cin = 64
    for i, (c, hw) in enumerate(stages):
        for block in range(2):
            first_in = cin if block == 0 else c
            params += first_in * c * 9 + c * c * 9 + 2 * (2 * c)
            macs += _conv_macs(hw, first_in, c, 3) + _conv_macs(hw, c, c, 3)
            feats += 4 * c * hw * hw
            sums += c * hw * hw
        if i > 0:  # downsample: 1x1 stride-2 conv + BN
            params += cin * c + 2 * c
            macs += _conv_macs(hw, cin, c, 1)
            feats += 2 * c * hw * hw
        cin = c
    params += 512 * 1000 + 1000
    macs += 512 * 1000
    feats += 512 + 1000
    return {"params": params, "macs": macs, "feature_bytes": 4 * feats, "sum_bytes": 4 * sums}


@pytest.fixture(scope="module")
def resnet18_pass():
    spec = zoo.resolve("resnet18")
    model, _ = zoo.build(spec, spec.size, "meta")
    return spec, model, analysis.run_pass(model, spec.size, 1, "meta", per_layer=True)


def test_resnet18_hand_derived_figures(resnet18_pass):
    spec, model, p = resnet18_pass
    hand = _resnet18_by_hand()
    assert spec.size == (224, 224) and spec.group == "classification"
    assert hand["params"] == 11_689_512  # the well-known count, derived above
    assert p.cost.params == hand["params"]
    assert p.cost.param_bytes == 4 * hand["params"]
    assert p.cost.param_bytes / MIB == pytest.approx(44.59, abs=0.01)  # convnet-burden: 45 MB
    assert p.cost.macs == hand["macs"] == 1_814_073_344
    assert p.cost.flops == 2 * hand["macs"]
    assert p.cost.feature_bytes == hand["feature_bytes"]  # 19.72 MiB
    # Counting the in-place residual sums as convnet-burden does: 22.6 MiB (it prints 23 MB).
    assert p.inplace_bytes == hand["sum_bytes"]
    assert p.feature_bytes_seed_convention / MIB == pytest.approx(22.59, abs=0.01)
    assert p.cost.input_bytes == 3 * 224 * 224 * 4


def test_resnet18_layers_add_up_and_trunk(resnet18_pass):
    _, model, p = resnet18_pass
    rows = analysis.layer_rows(model, p)
    assert sum(r[4] for r in rows) == p.cost.params
    assert sum(r[5] for r in rows) == p.cost.feature_bytes
    assert sum(r[6] for r in rows) == p.cost.flops
    by_path = {r[1]: r for r in rows}
    conv1 = by_path["conv1"]
    assert conv1[0] < by_path["layer1.0.conv1"][0] < by_path["fc"][0]  # execution order
    assert conv1[3] == "1 x 64 x 112 x 112" and conv1[4] == 9408 and conv1[6] == 2 * _conv_macs(112, 3, 64, 7)
    assert "relu" not in by_path  # in place, no FLOP formula: no cost
    assert analysis.find_trunk(model, p) == "layer4"
    assert analysis.describe(p.outputs["layer4"]) == "512 x 7 x 7"


def test_nested_units_charge_the_innermost_module():
    # A container's own ops (the add) stay with it, its child's conv with the child.
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1, bias=False)

        def forward(self, x):
            return self.conv(x) + x

    model = nn.Sequential(Block()).eval()
    p = analysis.run_pass(model, (4, 4), 1, "cpu", per_layer=True)
    rows = {r[1]: r for r in analysis.layer_rows(model, p)}
    assert rows["0.conv"][6] == 2 * (4 * 4 * 3 * 3) and rows["0.conv"][5] == 3 * 4 * 4 * 4
    assert rows["0"][6] == 0 and rows["0"][5] == 3 * 4 * 4 * 4  # the sum's output
    assert set(rows) == {"0.conv", "0"}  # the Sequential runs no op of its own


# --------------------------------------------------------------------------- the catalogue

def test_groups_expand_to_the_torchvision_lists():
    names = zoo.expand(["detection", "resnet18", "timm", "resnet18"])
    assert names[0] == "fasterrcnn_mobilenet_v3_large_320_fpn" and names.count("resnet18") == 1
    assert "ssd300_vgg16" in names and "legacy_xception" in names
    assert zoo.zoo_names("timm") == list(zoo.TIMM_MODELS)
    assert zoo.resolve("ssd300_vgg16").size == (300, 300) and zoo.resolve("ssd300_vgg16").fixed_note
    assert zoo.resolve("inception_v3").size == (299, 299)
    assert zoo.resolve("fcn_resnet50").size == (520, 520)
    assert zoo.resolve("fasterrcnn_resnet50_fpn").size == (800, 800)
    assert zoo.resolve("timm/resnet18").source == "timm"
    assert BurdenRequest("timm/resnet18").stem == "timm__resnet18"
    assert BurdenRequest("resnet18", size=(64, 96)).stem == "resnet18_64x96"  # another request, another file
    assert torch.get_default_device().type == "cpu"  # building on meta leaves no global device behind


def test_catalogue_backbones_have_one_builder():
    for zoo_name, entry in (("resnet18", "resnet18"), ("vgg16", "vgg16"), ("legacy_xception", "xception")):
        assert zoo.catalogue_builder(zoo.resolve(zoo_name)) is registry.get(entry).builder
    assert zoo.catalogue_builder(zoo.resolve("alexnet")) is None


def test_unknown_zoo_name_names_the_closest():
    with pytest.raises(UserError, match=r"unknown model 'resnet181'.*did you mean.*resnet18"):
        zoo.resolve("resnet181")


def test_request_round_trips():
    req = BurdenRequest("resnet18", size=(64, 64), batch=2, scales=(0.5, 1.0), peak=False)
    assert BurdenRequest.from_dict(json.loads(json.dumps(req.to_dict()))) == req


# --------------------------------------------------------------------------- failures are reported

class _Untraceable(nn.Module):
    def forward(self, x):
        raise RuntimeError("this forward cannot be traced")


class _DataDependent(nn.Module):
    """Python control flow on a value: fails on meta, runs on the CPU."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y if bool(y.abs().sum() >= 0) else -y


@pytest.fixture
def fake_models(monkeypatch):
    specs = {n: zoo.ModelSpec(n, "classification", "torchvision", (16, 16), "test size")
             for n in ("untraceable", "datadep", "unbuildable")}
    real_resolve, real_construct = zoo.resolve, zoo.construct

    def resolve(name):
        return specs[name] if name in specs else real_resolve(name)

    def construct(spec, size):
        if spec.name == "untraceable":
            return _Untraceable().eval()
        if spec.name == "datadep":
            return _DataDependent().eval()
        if spec.name == "unbuildable":
            raise ValueError("no such architecture here")
        return real_construct(spec, size)

    monkeypatch.setattr(zoo, "resolve", resolve)
    monkeypatch.setattr(zoo, "construct", construct)


def test_failures_are_reported_and_the_run_goes_on(fake_models, tmp_path, capsys):
    rc = cli.main(["--models", "untraceable", "unbuildable", "datadep", "resnet18", "--scales", "0.5,1",
                   "--batch", "2", "--no-peak", "--no-progress", "--no-figures", "--out", str(tmp_path)])
    assert rc == 0
    bad = _record(tmp_path, "untraceable")
    assert (bad["schema"], bad["kind"], bad["device_tag"]) == (records.SCHEMA, "burden", "any")
    assert bad["request"]["model"] == "untraceable" and bad["request"]["batch"] == 2
    assert bad["result"]["status"] == "failed" and bad["result"]["failure"]["stage"] == "trace"
    assert "this forward cannot be traced" in bad["result"]["failure"]["reason"]
    assert _record(tmp_path, "unbuildable")["result"]["failure"]["stage"] == "build"
    dd = _record(tmp_path, "datadep")["result"]
    assert dd["status"] == "ok" and dd["base"]["device"] == "cpu" and dd["base"]["meta_failure"]
    assert dd["base"]["macs"] == 16 * 16 * 4 * 3 * 9
    table = (tmp_path / "burden.md").read_text()
    assert "untraceable** (classification): trace failed" in table
    assert "unbuildable** (classification): build failed" in table
    assert _cells(table, "[resnet18]")[:6] == ["[resnet18](burden/resnet18.md)", "224 x 224", "44.6 MiB",
                                               "19.7 MiB", "1.81 G", "3.63 G"]
    assert _cells(table, "[datadep]")[0] == "[datadep](burden/datadep.md) ‡"
    out = capsys.readouterr().out
    assert "untraceable: not covered" in out and "resnet18: 224 x 224" in out


def test_all_failed_exits_non_zero(fake_models, tmp_path):
    rc = cli.main(["--models", "untraceable", "--scales", "1", "--no-peak", "--no-progress",
                   "--no-figures", "--out", str(tmp_path)])
    assert rc == 1


# --------------------------------------------------------------------------- records -> reports

def test_resnet18_report_sweep_and_comparison(tmp_path):
    rc = cli.main(["--models", "resnet18", "--scales", "0.5,1", "--batch", "4", "--no-peak", "--no-progress",
                   "--out", str(tmp_path)])
    assert rc == 0
    rec = _record(tmp_path, "resnet18")
    assert rec["request"]["scales"] == [0.5, 1.0] and rec["code_version"]["commit"]
    e = store.entry(rec)
    rows = e["sweep"]["rows"]
    assert [r["size"] for r in rows] == [[112, 112], [224, 224]] and e["sweep"]["batch"] == 4
    # Batch 4 at 224: four times the single-image figures.
    assert rows[1]["macs"] == 4 * e["base"]["macs"] and rows[1]["feature_bytes"] == 4 * e["base"]["feature_bytes"]
    assert rows[1]["trunk_out"] == [[4, 512, 7, 7]] and rows[0]["trunk_out"] == [[4, 512, 4, 4]]
    cmp = {i["metric"]: i for i in seed003.compare(e)}
    assert cmp["param"]["pct"] == pytest.approx(-0.9, abs=0.1) and cmp["param"]["why"] is None
    assert cmp["feature"]["why"].startswith("in-place sums")  # 19.7 vs 23 MB: explained
    assert cmp["macs"]["why"] is None  # 1.81 G MACs vs its '2 GFLOPs'
    report = (tmp_path / "burden" / "resnet18.md").read_text()
    assert _cells(report, "224 x 224")[:2] == ["224 x 224", "512 x 7 x 7"]
    assert "![resnet18 profile](figs/resnet18.png)" in report
    assert (tmp_path / "burden" / "figs" / "resnet18.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.rglob("*.tmp"))
    # Rendered from the records only: the same text again, with no analysis.
    written = {p: p.read_text() for p in [tmp_path / "burden.md", tmp_path / "burden" / "resnet18.md"]}
    assert render.outputs(tmp_path) == written


def test_committed_burden_pages_are_rendered_from_the_committed_records():
    results = ROOT / "results"
    pages = render.outputs(results)
    assert len(pages) == 107  # burden.md + 106 models
    stale = [str(p) for p, text in pages.items() if not p.exists() or p.read_text() != text]
    assert not stale, f"re-render with python -m common burden --render-only: {stale[:5]}"
    entries, run, problems = store.load(results)
    assert not problems and run["result"]["models"] == len(entries) == 106


def test_comparison_explains_or_flags_differences():
    seed = next(r for r in seed003.reference()["rows"] if r["model"] == "googlenet")  # 51 MB / 26 MB / 2 GFLOPs
    entry = {"model": "unnoted_googlenet", "source": "torchvision",
             "compare": {"seed_model": "googlenet", "relation": "same", "size": [224, 224],
                         "param_bytes": 51 * MIB, "macs": 1.5e9,
                         "feature_bytes": 40 * MIB, "feature_bytes_seed_convention": 40 * MIB}}
    cmp = {i["metric"]: i for i in seed003.compare(entry)}
    assert seed["flops_as_printed"] == 2e9
    assert cmp["macs"]["why"].startswith("rounding")  # 1.5 G is inside '2 GFLOPs' = [1.5, 2.5) G
    assert cmp["feature"]["why"] == "not explained"  # 40 vs 26 MB: flagged, never hidden
    assert cmp["param"]["why"] is None  # within 10%


def test_reference_is_seed_003_transcribed():
    ref = json.loads((ROOT / "results" / "reference" / "convnet_burden.json").read_text())
    assert "003_f97c09e1b8ed3def" in ref["source"]["seed_file"]
    rows = {r["model"]: r for r in ref["rows"]}
    assert len(rows) == 48
    r18 = rows["resnet18"]
    assert (r18["param_mib"], r18["feature_mib"], r18["flops_as_printed"]) == (45, 23, 2e9)
    assert rows["inception-v3"]["input_size"] == [299, 299]
    assert rows["deeplab-res101-v2"]["feature_mib"] == 4096  # '4 GB'
    for ours, (seed_name, _) in seed003.COMPARE.items():
        assert seed_name in rows, ours


# --------------------------------------------------------------------------- measured peak

def test_peak_is_measured_in_a_worker_and_failures_stay_local():
    runner = peak_held.PeakRunner(threads=1, timeout_s=120)
    runner.submit("no_such_model_xyz", (64, 64))
    runner.submit("resnet18", (64, 64))
    res = runner.finish(progress=False)
    r18 = res["resnet18"]  # measured after the failed job: the worker went on
    assert r18["status"] == "measured" and r18["device"] == "cpu" and "torch.profiler" in r18["method"], r18
    # At least conv1's output (held while bn1 runs), at most every feature at once.
    assert 64 * 32 * 32 * 4 <= r18["peak_bytes"]
    meta = analysis.run_pass(zoo.build(zoo.resolve("resnet18"), (64, 64))[0], (64, 64), 1, "meta")
    assert r18["peak_bytes"] < meta.cost.feature_bytes
    assert r18["resident_bytes"] >= 4 * 11_689_512
    assert res["no_such_model_xyz"]["status"] == "failed" and "unknown model" in res["no_such_model_xyz"]["reason"]


def _fake_worker(body: str) -> list[str]:
    """A worker that reads its job, then does ``body`` (no torch: starts fast)."""
    return [sys.executable, "-c", f"import os, signal, sys, time\nsys.stdin.readline()\n{body}"]


@pytest.mark.parametrize("body, timeout_s, says, oom", [
    # Killed by the kernel's OOM killer (SIGKILL we did not send): not a timeout.
    ("os.kill(os.getpid(), signal.SIGKILL)", 60, "killed by SIGKILL", True),
    # Overran the timeout: our timer killed it.
    ("time.sleep(60)", 0.5, "timed out after 0.5 s", False),
    # Any other failure keeps its own reason: never 'out of memory'.
    ("print('ValueError: boom', file=sys.stderr); sys.exit(1)", 60, "exit 1: ValueError: boom", False),
    ("os.kill(os.getpid(), signal.SIGSEGV)", 60, "killed by SIGSEGV", False),
])
def test_a_failed_peak_worker_is_named_by_what_ended_it(body, timeout_s, says, oom):
    runner = peak_held.PeakRunner(threads=1, timeout_s=timeout_s, command=_fake_worker(body))
    runner.submit("m", (8, 8))
    res = runner.finish(progress=False)["m"]
    assert res["status"] == "failed" and says in res["reason"], res
    assert res["out_of_memory"] is oom and ("out of memory" in res["reason"]) is oom
    assert ("timed out" in res["reason"]) is (timeout_s < 1)


@pytest.mark.parametrize("rc, stderr, error", [
    (1, "Traceback (most recent call last):\nValueError: boom\n", ChildFailed),
    (-11, "", ChildFailed),
    (-9, "", MemoryError),  # the kernel's out-of-memory killer
    (1, "RuntimeError: DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes\n", MemoryError),
])
def test_cpu_peak_child_failure_is_out_of_memory_only_when_it_is(monkeypatch, rc, stderr, error):
    # memory.cpu_peak (the timer's CPU peak) turned every child failure into MemoryError:
    # "out of memory, exit 3" for a crash or a bug.
    monkeypatch.setattr(memory.subprocess, "run",
                        lambda args, **kw: subprocess.CompletedProcess(args, rc, "", stderr))
    req = Request("memory", "resnet18", InputSpec("8x8", 8, 8), "cpu")
    with pytest.raises((ChildFailed, MemoryError)) as exc:
        memory.cpu_peak(req)
    assert type(exc.value) is error and ("boom" in str(exc.value)) is ("boom" in stderr)


def test_child_failure_says_out_of_memory_only_for_one():
    child_failure = failures.child_failure
    assert child_failure(1, "RuntimeError: DefaultCPUAllocator: can't allocate memory")[1]
    assert child_failure(1, "torch.OutOfMemoryError: CUDA out of memory")[1]
    assert not child_failure(1, "ValueError: bad size")[1]
    assert not child_failure(-9, "x", timed_out_s=5.0)[1]


# --------------------------------------------------------------------------- command line

def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["--models", "no_such_model_xyz", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'no_such_model_xyz'" in err[0]
    with pytest.raises(SystemExit) as exc:
        cli.main(["--scales", "0,-1", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert not list(tmp_path.rglob("*.json"))
