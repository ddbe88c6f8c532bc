"""End to end, in process: training steps, the layer profiler, out of memory and
a fastest search through the entry points, as a user runs them."""
from __future__ import annotations

import json

import pytest
import torch

from common import cli, records
from common.errors import ChildFailed
from common.measure import execution, oom
from conftest import load_json, snapshot, tmp_leftovers

FAST = ["--device", "cpu", "--size", "32x32", "--batch", "2", "--iters", "3", "--warmup", "1", "--warmup-seconds", "0", "--tag", "t"]
PEAKS = {"matmul_tflops": {"fp32": 100.0}, "copy_gbs": 1000.0, "method": "test"}


def _timer(family: str, argv: list) -> int:
    return cli.main("timer", family, [str(a) for a in argv])


def test_timer_pass_train_writes_phases_memory_and_inference(tmp_path, capsys, monkeypatch):
    from common.measure import memory

    # The fresh-process peaks themselves: test_structure_memory (both kinds, real children).
    monkeypatch.setattr(memory, "cpu_peak", lambda req, train=False: {
        "method": "stub", "peak_train_step_mib" if train else "peak_inference_mib": 20.0 if train else 10.0})
    assert _timer("resnet", ["--model", "resnet18", "--pass", "train", "--with-optimizer", *FAST,
                             "--out-dir", tmp_path]) == 0
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


def test_timer_pass_train_layers_vgg(tmp_path, capsys):
    assert _timer("vgg", ["--model", "vgg16", "--pass", "train", "--layers", *FAST, "--out-dir", tmp_path]) == 0
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
def test_train_bad_flags_are_one_line(tmp_path, capsys, extra, words):
    try:
        code = _timer("resnet", ["--model", "resnet18", *FAST, *extra, "--out-dir", tmp_path])
    except SystemExit as exc:  # argparse's own exit
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and words in err
    assert not snapshot(tmp_path)


def test_layer_profiler_seed004_end_to_end(tmp_path, capsys):
    assert cli.main_layers(["--set", "seed004", "--device", "cpu", "--iters", "2", "--warmup", "0", "--tag", "t",
                            "--out-dir", str(tmp_path)]) == 0
    rec = load_json(tmp_path / "results/records/t/layer-bench/seed004.json")
    assert rec["request"]["layer_set"] == "seed004" and rec["kind"] == "layer-bench"
    rows = {r["layer"]: r for r in rec["result"]["rows"]}
    assert len(rows) == 8
    assert rows["Conv3x3/1"]["forward"]["flops"] == 173_408_256
    assert rows["Dense"]["total"]["flops"] == 3 * 1_048_576
    assert rows["MaxPool3x3/2"]["forward"]["flops"] == 0 and rows["MaxPool3x3/2"]["forward"]["achieved_gbs"] > 0
    text = (tmp_path / "layer_profiler/layer_stats/t/seed004.txt").read_text()
    assert "Conv5x5/2" in text and "TFLOP/s" in text
    assert not tmp_leftovers(tmp_path)


def test_layer_profiler_bad_set_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main_layers(["--set", "huge", "--device", "cpu", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1 and "'huge'" in err


def test_oom_names_the_batch_and_the_largest_that_fit(tmp_path, monkeypatch, capsys):
    def out_of_memory(*_a, **_k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(cli.run.timing, "run_loop", out_of_memory)
    monkeypatch.setattr(cli, "smaller_batch", lambda req: oom.largest_fitting_batch(req.input.batch,
                                                                                      lambda b: b <= 2))
    argv = ["--model", "resnet18", "--device", "cpu", "--size", "32x32", "--batch", "8", "--tag", "t",
            "--out-dir", str(tmp_path)]
    assert _timer("resnet", argv) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "batch 8; batch 2 fits (tried 4, 2)" in err and "out of memory" in err
    assert not snapshot(tmp_path)


def test_child_failure_that_is_not_memory_is_one_line_with_its_reason(tmp_path, monkeypatch, capsys):
    def crash(*_a, **_k):
        raise ChildFailed("peak-memory child process failed: exit 1: RuntimeError: boom")

    monkeypatch.setattr(cli.run.memory, "cpu_peak", crash)
    code = cli.main("mem", "resnet", ["--model", "resnet18", "--device", "cpu", "--size", "32x32", "--tag", "t",
                                      "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 4 and len(err.splitlines()) == 1 and "boom" in err and "out of memory" not in err
    assert not list(tmp_path.rglob("*.json"))


def test_fastest_and_roofline_reach_the_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(execution, "FASTEST_CANDIDATES", ({"precision": "fp32"}, {"precision": "tf32"}))
    monkeypatch.setattr(execution, "SEARCH_SECONDS", 0.05)
    peak = records.make_record("peak", "t", {"kind": "peak", "device": "cpu"}, {}, PEAKS)
    records.write_record(records.record_path(tmp_path / "results", "t", "peak", "peak"), peak)
    argv = ["--model", "resnet18", "--size", "32x32", "--iters", "3", "--warmup", "1", "--device", "cpu",
            "--tag", "t", "--out-dir", str(tmp_path), "--mode", "fastest", "--layers"]
    assert _timer("resnet", argv) == 0
    rec = json.loads((tmp_path / "results/records/t/layers/resnet18_32x32_fastest.json").read_text())
    fastest = rec["result"]["fastest"]
    assert fastest["picked"] == "eager fp32" and fastest["picked_mode"]["variant"] == ""
    assert [c.get("skipped", "") for c in fastest["candidates"]][1].startswith("precision tf32")  # CPU: skipped
    assert rec["request"]["search"] == "fastest" and records.measured(rec)["mode"] == "eager fp32"
    assert rec["result"]["fraction_of_peak"] == pytest.approx(rec["result"]["achieved_tflops"] / 100.0)
    conv1 = rec["result"]["units"][0]["roofline"]
    # conv1 at 32x32: input 3x32x32 + weights 9408 + output 64x16x16, fp32.
    assert conv1["bytes"] == (3 * 32 * 32 + 9408 + 64 * 16 * 16) * 4
    assert conv1["bound"] in ("compute", "memory")
    text = (tmp_path / "resnet_profiler/resnet18_stats/t/layers/resnet18_32x32_fastest.txt").read_text()
    assert "Of peak" in text and "FLOP/B" in text
