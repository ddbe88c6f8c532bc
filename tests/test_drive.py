"""Drivers: one process for a model's presets and depths, catalogue-driven lists,
overall progress, shell entry points that say how to set up."""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest

from common import drive, registry
from common.inputs import InputSpec
from common.spec import Request
from conftest import ROOT, load_json


def _whats(steps: list[drive.Step]) -> list[str]:
    return [s.what for s in steps]


def test_stats_runs_both_presets_and_every_catalogue_depth():
    steps = drive.stats_steps("resnet50", ["--device", "cpu"], drive.Sessions())
    assert _whats(steps) == [f"resnet50 {p}{d}" for p in ("cityscapes", "pascal")
                             for d in (" per unit depth 1 (+ whole model)", " per unit depth 2")]
    # MobileNet-V2 has no blocks: depth 1 only (the depth rule is catalogue data, not shell).
    assert len(drive.stats_steps("mobilenet_v2", ["--device", "cpu"], drive.Sessions())) == 2
    assert len(drive.stats_steps("mobilenet_v2", ["--device", "cpu"], drive.Sessions(), whole_only=True)) == 2


def test_stats_with_an_explicit_input_runs_that_input_once():
    steps = drive.stats_steps("resnet18", ["--device", "cpu", "--input", "pascal"], drive.Sessions())
    assert _whats(steps) == ["resnet18 pascal per unit depth 1 (+ whole model)", "resnet18 pascal per unit depth 2"]
    steps = drive.stats_steps("resnet18", ["--size", "32x32", "--layers", "--depth", "2"], drive.Sessions())
    assert _whats(steps) == ["resnet18 32x32 per unit depth 2"]


def test_seed004_and_profile_lists_come_from_the_catalogue():
    steps = drive.seed004_steps(["--device", "cpu"], drive.Sessions())
    assert _whats(steps)[:9] == [f"{m} imagenet" for m in registry.SEED004] and len(steps) == 11
    args = argparse.Namespace(device="cpu", tag=None, full=False, models=None, no_seed004=False, out_dir=None, size=None)
    whats = _whats(drive.profile_steps(args, [], drive.Sessions()))
    for m in registry.names("catalogue"):  # every catalogue model, ResNet-152 included
        assert f"{m} pascal per unit depth 1 (+ whole model)" in whats
        assert f"{m} pascal memory" in whats and f"{m} pascal structure" in whats
    assert "resnet152 pascal per unit depth 2" in whats
    # The quick CPU protocol: ResNet blocks at PASCAL size only, no seed 004 (the full one has both).
    assert "resnet152 cityscapes per unit depth 2" not in whats and "layer set seed004" not in whats
    full = _whats(drive.profile_steps(argparse.Namespace(**{**vars(args), "full": True}), [], drive.Sessions()))
    assert "resnet152 cityscapes per unit depth 2" in full and "layer set seed004" in full
    assert not any(w.startswith("vgg16 cityscapes per") for w in whats)  # GPU only (minutes per run on a CPU)


def test_one_process_runs_every_step_and_models_are_shared_per_preset(tmp_path, monkeypatch):
    built = []
    real = registry.build

    def counting(name, device="cpu", options=None):
        if str(device) != "meta":
            built.append(name)
        return real(name, device, options)

    monkeypatch.setattr(registry, "build", counting)
    code = drive.main(["stats", "--model", "resnet18", "--device", "cpu", "--size", "32x32", "--warmup", "0",
                       "--iters", "2", "--tag", "t", "--out-dir", str(tmp_path)])
    assert code == 0
    recs = tmp_path / "results" / "records" / "t"
    assert sorted(p.name for p in recs.rglob("*.json")) == [
        "resnet18_32x32.json", "resnet18_32x32.json", "resnet18_32x32_depth2.json"]
    assert built == ["resnet18"]  # whole model and both depths timed on one instance
    assert load_json(recs / "layers" / "resnet18_32x32_depth2.json")["result"]["timing"]["iters"] == 2
    # The timing record is the per-unit run's whole-model loop, the same samples.
    timing, layers = load_json(recs / "timing" / "resnet18_32x32.json"), load_json(recs / "layers" / "resnet18_32x32.json")
    assert timing["result"]["timing"] == layers["result"]["timing"] and timing["request"]["kind"] == "timing"
    assert "units" not in timing["result"] and "per-unit run resnet18_32x32" in timing["result"]["measured_with"]


def test_a_failing_step_is_reported_and_the_driver_goes_on(tmp_path, capsys):
    # xception cannot take 4x4 (stem convs need 7x7); resnet18 can: both are attempted.
    code = drive.main(["stats", "--model", "xception", "resnet18", "--device", "cpu", "--size", "4x4",
                       "--no-layers", "--warmup", "0", "--iters", "2", "--tag", "t", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "xception 4x4: error: input 4x4 is too small for xception" in err
    assert "1 of 2 steps failed: xception 4x4" in err
    assert (tmp_path / "results" / "records" / "t" / "timing" / "resnet18_4x4.json").is_file()


def test_fastest_file_is_named_after_the_request_not_the_pick():
    req = Request(kind="timing", model="resnet50", input=InputSpec("pascal", 500, 334), device="cuda:0",
                  search="fastest")
    assert req.stem == "resnet50_pascal_fastest"
    picked = req.with_mode({"precision": "bf16", "channels_last": True, "cuda_graph": True})
    assert picked.variant == "bf16-cl-graph" and picked.stem == "resnet50_pascal_fastest"
    assert Request(kind="timing", model="resnet50", input=InputSpec("pascal", 500, 334), device="cuda:0",
                   precision="bf16").stem == "resnet50_pascal_bf16"


def test_profile_help_prints_usage_and_runs_nothing(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "profile.sh"), "--help"], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": "/nonexistent/python"})
    assert proc.returncode == 0 and proc.stdout.startswith("usage: ./profile.sh") and proc.stderr == ""


def test_driver_without_environment_says_how_to_set_up():
    proc = subprocess.run(["sh", str(ROOT / "resnet_profiler" / "stats18.sh")], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHON": "/nonexistent/python"})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().endswith("run ./test.sh or ./profile.sh first (or set PYTHON)")
    assert len(proc.stderr.splitlines()) == 1


def test_profile_job_is_recorded_with_its_wall_time(tmp_path, monkeypatch):
    from common.measure import memory

    # The fresh-process peak is tested on its own (test_structure_memory); here the job matters.
    monkeypatch.setattr(memory, "cpu_peak", lambda req, train=False: {
        "method": "not measured in this test", "peak_inference_mib": 1.0})
    code = drive.main(["profile", "--device", "cpu", "--tag", "t", "--models", "resnet18", "--size", "32x32", "--warmup-seconds", "0",
                       "--out-dir", str(tmp_path)])
    assert code == 0
    job = load_json(tmp_path / "results" / "records" / "t" / "job" / "profile_quick.json")
    assert job["kind"] == "job" and job["request"]["models"] == ["resnet18"] and job["request"]["protocol"] == "quick"
    # One custom size: per unit at depths 1 and 2 (+ whole model), memory, structure; nothing outside --out-dir.
    assert job["result"]["steps"] == 4 and job["result"]["failed"] == [] and job["result"]["wall_s"] > 0
    assert (tmp_path / "results/records/t/memory/resnet18_32x32.json").is_file()
    assert (tmp_path / "results/records/any/structure/resnet18_32x32.json").is_file()
