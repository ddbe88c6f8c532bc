"""End to end, in process: the entry points, their outputs, flags, errors, atomic
writes, drivers. One test runs a shell driver in a subprocess (the exit path)."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from common import cli, registry, records
from common.measure import structure
from common.errors import UserError
from conftest import FAST, ROOT, child_env, load_json, snapshot, tmp_leftovers
from common.spec import Request


class Proc:
    """What a run of an entry point printed and returned (as a subprocess would)."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_tool(model: str, tool: str, extra: list, capsys) -> Proc:
    """The model's family entry point, called in this process."""
    capsys.readouterr()
    code = cli.main(tool, registry.get(model).family, ["--model", model, *map(str, extra)])
    out = capsys.readouterr()
    return Proc(code, out.out, out.err)

TIMER_CASES = [(m, layers) for m in ("resnet18", "mobilenet_v2", "xception") for layers in (False, True)]


def _family_dir(out: Path, model: str) -> Path:
    return out / f"{registry.get(model).family}_profiler"


_CACHE: dict = {}


@pytest.fixture
def timer_runs(tmp_path_factory, capsys):
    """Each (model, --layers) run once per session, in its own output folder."""
    def get(model: str, layers: bool):
        if (model, layers) not in _CACHE:
            out = tmp_path_factory.mktemp(f"{model}_{'layers' if layers else 'whole'}")
            proc = run_tool(model, "timer", [*FAST, "--out-dir", out, *(["--layers"] if layers else [])], capsys)
            _CACHE[model, layers] = (proc, out)
        return _CACHE[model, layers]

    return get


def _assert_header(text: str, model: str, warmup_iters: bool = True):
    lines = text.splitlines()
    assert lines[0].startswith("# ")
    assert f"# model: {model}   input: 64x64 (B,C,H,W) = (1, 3, 64, 64)" in lines
    assert any(re.match(r"# device: .+ \[cpu\]", line) for line in lines)
    assert any(line.startswith("# torch ") for line in lines)
    assert any(line.startswith("# date: ") for line in lines)
    if warmup_iters:
        assert any(re.match(r"# clock: perf_counter   warm-up: 1   iterations: 3 of 3$", line) for line in lines)
    assert "it/s" not in text and "\r" not in text  # no progress bars in the .txt


# --------------------------------------------------------------------------- timer, whole model and per unit

@pytest.mark.parametrize("model,layers", TIMER_CASES, ids=[f"{m}-{'layers' if l else 'whole'}" for m, l in TIMER_CASES])
def test_timer_outputs(timer_runs, cpu_tag, model, layers):
    proc, out = timer_runs(model, layers)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr

    folder = _family_dir(out, model) / f"{model}_stats" / cpu_tag
    txt = (folder / "layers" if layers else folder) / f"{model}_64x64.txt"
    kind = "layers" if layers else "timing"
    rec_path = out / "results" / "records" / cpu_tag / kind / f"{model}_64x64.json"
    # stdout names exactly the files written, nothing else.
    assert proc.stdout.splitlines() == [str(txt), str(rec_path)]
    assert txt.is_file() and rec_path.is_file()
    assert not tmp_leftovers(out)

    text = txt.read_text()
    _assert_header(text, model)
    rec = load_json(rec_path)
    assert rec["schema"] == records.SCHEMA == 2
    assert rec["kind"] == kind and rec["device_tag"] == cpu_tag and rec["superseded"] is None
    assert set(rec["code_version"]) == {"commit", "dirty"}
    spec = rec["request"]
    assert spec["kind"] == kind and Request.from_dict(spec).stem == rec_path.stem
    assert (spec["model"], spec["device"], spec["warmup"], spec["iters"]) == (model, "cpu", 1, 3)
    assert spec["input"]["shape"] == [1, 3, 64, 64] and spec["precision"] == "fp32"
    t = rec["result"]["timing"]
    assert t["iters"] == 3 and len(t["samples_ms"]) == 3 and t["warmup"] == 1 and t["clock"] == "perf_counter"
    assert t["stats"]["median_ms"] == sorted(t["samples_ms"])[1]
    assert rec["env"]["device_type"] == "cpu" and rec["env"]["torch"]
    assert rec["result"]["cost"]["params"] == structure.param_count(registry.build(model))

    if not layers:
        assert "Samples: 3" in text
        for word in ("Mean", "Std", "Median", "P90", "P99", "Min", "Max", "FPS"):
            assert re.search(rf"^{word}\s+\d+\.\d{{3}} ", text, re.M), word
        return

    labels = [u.label for u in registry.units(model, registry.build(model))]
    assert [u["label"] for u in rec["result"]["units"]] == labels
    for u in rec["result"]["units"]:
        assert len(u["samples_ms"]) == 3 and u["stats"]["n"] == 3
    for label in labels:
        assert re.search(rf"^{re.escape(label)}\s", text, re.M), f"unit {label} missing from {txt.name}"
    assert re.search(r"^Coverage \(sum of units / whole model\):\s+\d+\.\d{3}$", text, re.M)
    assert rec["result"]["coverage"] > 0
    assert len(rec["result"]["hooked_span"]["samples_ms"]) == 3
    if model == "mobilenet_v2":
        assert re.search(r"^pooling\s+functional adaptive_avg_pool2d", text, re.M)
    if model == "xception":
        assert re.search(r"^global_pool\s+global_pool \(SelectAdaptivePool2d\)", text, re.M)
    if model == "resnet18":
        row = next(u for u in rec["result"]["units"] if u["label"] == "fc")
        assert row["in_shape"] == [1, 512] and row["out_shape"] == [1, 1000]


# --------------------------------------------------------------------------- memory report and structure

def test_mem_report_resnet18(tmp_path, cpu_tag, capsys, monkeypatch):
    # The fresh-process peak is tested on its own (test_structure_memory).
    monkeypatch.setattr(cli.run.memory, "cpu_peak", lambda req, train=False: {
        "method": "fresh process (stub)", "peak_inference_mib": 1.0, "peak_rss_mib": 2.0})
    proc = run_tool("resnet18", "mem", ["--device", "cpu", "--size", "64x64", "--out-dir", tmp_path], capsys)
    assert proc.returncode == 0, proc.stderr
    txt = tmp_path / "resnet_profiler" / "memory_reports" / cpu_tag / "resnet18_64x64.txt"
    rec_path = tmp_path / "results" / "records" / cpu_tag / "memory" / "resnet18_64x64.json"
    assert proc.stdout.splitlines() == [str(txt), str(rec_path)]
    text = txt.read_text()
    _assert_header(text, "resnet18", warmup_iters=False)
    assert "byte counts corrected" in text
    assert re.search(r"^Parameters:\s+11,689,512 ", text, re.M)
    assert re.search(r"^Static memory \(memlab\):\s+\d+\.\d\d MiB", text, re.M)
    assert re.search(r"^Feature memory \(convnet-burden\):", text, re.M)
    assert "MACs:" in text and "FLOPs (= 2 x MACs):" in text

    rec = load_json(rec_path)
    assert rec["schema"] == 2 and rec["kind"] == "memory"
    st = rec["result"]["static"]
    assert st["memlab_corrected"] is True
    assert st["elements"] == 11_689_512 + 9_620 + 3 * 64 * 64  # params + buffers + input, nothing else
    assert st["static_mib"] * 2**20 == pytest.approx(4 * st["elements"], rel=0.01)
    assert rec["result"]["cost"]["params"] == 11_689_512
    assert rec["result"]["peak"]["method"]
    assert not tmp_leftovers(tmp_path)


def test_mem_struct_resnet18(tmp_path, capsys):
    proc = run_tool("resnet18", "mem", ["--struct", "--size", "64x64", "--out-dir", tmp_path], capsys)
    assert proc.returncode == 0, proc.stderr
    txt = tmp_path / "resnet_profiler" / "model_structures" / "resnet18_64x64.txt"
    rec_path = tmp_path / "results" / "records" / "any" / "structure" / "resnet18_64x64.json"
    assert proc.stdout.splitlines() == [str(txt), str(rec_path)]
    text = txt.read_text()
    assert text.startswith("# Model structure (depth 3)")
    assert "Total parameters: 11,689,512 " in text
    # Every module is listed once (no DataParallel duplication).
    assert len(re.findall(r"^conv1\s+Conv2d", text, re.M)) == 1
    assert len(re.findall(r"^\s+layer4\.1\.conv2\s+Conv2d", text, re.M)) == 1
    rec = load_json(rec_path)
    assert rec["kind"] == "structure" and rec["device_tag"] == "any" and rec["result"]["params"] == 11_689_512
    top = [r for r in rec["result"]["rows"] if r["depth"] == 1]
    assert sum(r["params"] for r in top) == 11_689_512
    assert sum(r["macs"] for r in top) == rec["result"]["macs"]


# --------------------------------------------------------------------------- every timer flag reaches the record

def _main_timer(family: str, argv: list) -> int:
    return cli.main("timer", family, [str(a) for a in argv])


def test_timer_flags_reach_the_record(tmp_path, keep_threads, capsys):
    argv = ["--model", "resnet18", *FAST, "--out-dir", tmp_path, "--precision", "bf16", "--channels-last",
            "--max-seconds", "100", "--min-iters", "2", "--clock", "perf_counter", "--tag", "mytag",
            "--threads", "1", "--batch", "2"]
    assert _main_timer("resnet", argv) == 0
    txt = tmp_path / "resnet_profiler" / "resnet18_stats" / "mytag" / "resnet18_64x64_b2_bf16-cl.txt"
    rec_path = tmp_path / "results" / "records" / "mytag" / "timing" / "resnet18_64x64_b2_bf16-cl.json"
    assert capsys.readouterr().out.splitlines() == [str(txt), str(rec_path)]
    rec = load_json(rec_path)
    spec = rec["request"]
    assert spec["precision"] == "bf16" and spec["tag"] == "mytag" and spec["threads"] == 1
    assert spec["channels_last"] is True
    assert spec["max_seconds"] == 100.0
    assert spec["min_iters"] == 2
    assert spec["clock"] == "perf_counter"
    assert spec["input"]["batch"] == 2 and spec["input"]["shape"] == [2, 3, 64, 64]
    assert spec["variant"] == "bf16-cl" and spec["mode"] == "eager bf16 channels-last"
    assert rec["env"]["threads"] == 1  # --threads: recorded with the environment
    assert rec["result"]["timing"]["iters"] == 3 and rec["result"]["timing"]["stopped_early"] is False
    text = txt.read_text()
    assert "precision: bf16   channels_last: True" in text
    assert re.search(r"threads: 1$", text, re.M)


def test_timer_max_seconds_stops_early(tmp_path, capsys):
    # A ResNet-18 forward takes far more than 1 ms, so the deadline has passed after min-iters.
    argv = ["--model", "resnet18", "--device", "cpu", "--size", "32x32", "--warmup", "0", "--iters", "50",
            "--max-seconds", "0.001", "--min-iters", "2", "--tag", "t", "--out-dir", tmp_path]
    assert _main_timer("resnet", argv) == 0
    rec = load_json(tmp_path / "results" / "records" / "t" / "timing" / "resnet18_32x32.json")
    t = rec["result"]["timing"]
    assert t["iters"] == 2 and t["requested_iters"] == 50 and t["stopped_early"] is True
    text = (tmp_path / "resnet_profiler" / "resnet18_stats" / "t" / "resnet18_32x32.txt").read_text()
    assert "iterations: 2 of 50   (stopped early by --max-seconds)" in text


def test_timer_layers_depth2(tmp_path, capsys):
    argv = ["--model", "resnet18", *FAST, "--layers", "--depth", "2", "--tag", "t", "--out-dir", tmp_path]
    assert _main_timer("resnet", argv) == 0
    txt = tmp_path / "resnet_profiler" / "resnet18_stats" / "t" / "layers" / "resnet18_64x64_depth2.txt"
    text = txt.read_text()
    assert text.startswith("# Inference time per unit (depth 2)")
    for label in ("layer1.0", "layer1.1", "layer4.1", "fc"):
        assert re.search(rf"^{re.escape(label)}\s", text, re.M)
    rec = load_json(tmp_path / "results" / "records" / "t" / "layers" / "resnet18_64x64_depth2.json")
    assert rec["request"]["depth"] == 2
    assert len(rec["result"]["units"]) == 4 + 8 + 2


# --------------------------------------------------------------------------- bad input: one line, no traceback

ERROR_CASES = {
    "unknown-model": ("resnet18", ["--model", "resnet19"], "resnet19"),
    "model-of-other-family": ("resnet18", ["--model", "xception"], "use xception_profiler/timer.py"),
    "depth-2-not-resnet": ("mobilenet_v2", ["--layers", "--depth", "2"], "not defined for mobilenet_v2"),
    "max-seconds-nan": ("resnet18", ["--max-seconds", "nan"], "not a finite number"),
    "max-seconds-inf": ("resnet18", ["--max-seconds", "inf"], "not a finite number"),
    "no-gpu": ("resnet18", ["--device", "cuda"], "cuda"),
    "no-gpu-3": ("resnet18", ["--device", "cuda:3"], "cuda:3"),
    "bad-device": ("resnet18", ["--device", "tpu"], "tpu"),
    "size-0x64": ("resnet18", ["--size", "0x64"], "0x64"),
    "size-abc": ("resnet18", ["--size", "abc"], "abc"),
    "xception-too-small": ("xception", ["--size", "4x4"], "too small"),
    "iters-0": ("resnet18", ["--iters", "0"], "--iters"),
    "batch-0": ("resnet18", ["--batch", "0"], "--batch"),
    "cuda-graph-on-cpu": ("resnet18", ["--cuda-graph"], "cuda-graph"),
    "cuda-event-on-cpu": ("mobilenet_v2", ["--clock", "cuda-event"], "cuda-event"),
    "tf32-on-cpu": ("resnet18", ["--precision", "tf32"], "tf32"),
    "depth-3": ("resnet18", ["--layers", "--depth", "3"], "--depth"),
    # "cpu:0" names the CPU too: GPU-only modes must be refused there as well.
    "cpu0-cuda-graph": ("resnet18", ["--device", "cpu:0", "--cuda-graph"], "error:"),
    "cpu0-tf32": ("resnet18", ["--device", "cpu:0", "--precision", "tf32"], "error:"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_bad_input_one_line_error(tmp_path, case, capsys):
    model, extra, needle = ERROR_CASES[case]
    out = tmp_path / "out"
    # The bad arguments come last: argparse keeps the last value of a repeated option.
    try:
        proc = run_tool(model, "timer", [*FAST, "--out-dir", out, *extra], capsys)
    except SystemExit as exc:  # argparse's exit
        proc = Proc(exc.code, *capsys.readouterr())
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"{registry.get(model).family}_profiler/timer.py: error: "), proc.stderr
    assert needle in proc.stderr
    assert proc.stdout == ""
    assert not out.exists() or not snapshot(out)  # nothing written


def test_unwritable_out_dir(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder\n")
    proc = run_tool("resnet18", "timer", [*FAST, "--out-dir", blocker / "sub"], capsys)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "cannot write" in proc.stderr
    assert blocker.read_text() == "not a folder\n"


def test_mem_no_gpu_one_line_error(tmp_path, capsys):
    proc = run_tool("resnet18", "mem", ["--device", "cuda", "--size", "64x64", "--out-dir", tmp_path], capsys)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not snapshot(tmp_path)


# --------------------------------------------------------------------------- failed runs leave earlier outputs alone

def test_failed_run_leaves_earlier_outputs_untouched(timer_runs, tmp_path, cpu_tag, capsys):
    proc, first = timer_runs("xception", False)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    shutil.copytree(first, out)
    before = snapshot(out)
    txt = f"xception_profiler/xception_stats/{cpu_tag}/xception_64x64.txt"
    assert txt in before
    for extra in (["--size", "4x4"],                 # too small: fails after parsing
                  ["--clock", "cuda-event"],         # same output file, unsupported on the CPU
                  ["--size", "64x64", "--device", "cuda"]):
        bad = run_tool("xception", "timer", [*FAST, "--out-dir", out, *extra], capsys)
        assert bad.returncode != 0 and "Traceback" not in bad.stderr, bad.stderr
        assert snapshot(out) == before
    assert not tmp_leftovers(out)


def test_failure_after_measuring_writes_nothing(tmp_path, monkeypatch, capsys):
    argv = ["--model", "resnet18", "--device", "cpu", "--size", "32x32", "--iters", "2", "--warmup", "0",
            "--tag", "t", "--out-dir", tmp_path]
    assert _main_timer("resnet", argv) == 0
    before = snapshot(tmp_path)
    assert len(before) == 2

    def boom(*_a, **_k):
        raise UserError("simulated failure after the timed loop")

    monkeypatch.setattr(structure, "analyze", boom)
    capsys.readouterr()
    assert _main_timer("resnet", argv) == UserError.exit_code
    assert capsys.readouterr().err.strip().endswith("simulated failure after the timed loop")
    assert snapshot(tmp_path) == before
    assert not tmp_leftovers(tmp_path)


@pytest.mark.parametrize("exc,code,words", [
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"), 3, "out of memory"),
    (MemoryError("peak-memory child process failed"), 3, "out of memory"),
    (RuntimeError("Given input size: (1x1). Calculated output size: (0x0). Output size is too small"), 2,
     "input too small"),
])
def test_resource_errors_are_one_line(tmp_path, monkeypatch, capsys, exc, code, words):
    def fail(*_a, **_k):
        raise exc

    monkeypatch.setattr(cli.run.timing, "run_loop", fail)
    argv = ["--model", "resnet18", "--device", "cpu", "--size", "32x32", "--tag", "t", "--out-dir", tmp_path]
    assert _main_timer("resnet", argv) == code
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and words in err and "resnet18 input 32x32 batch 1" in err
    assert not snapshot(tmp_path)


def test_write_atomic_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "x.txt"
    records.write_atomic(path, "first\n")
    assert path.read_text() == "first\n"
    with pytest.raises(UnicodeEncodeError):
        records.write_atomic(path, "half written \udcff")  # a lone surrogate cannot be encoded
    assert path.read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
    records.write_atomic(path, "second\n")
    assert path.read_text() == "second\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_write_atomic_honours_umask(tmp_path):
    """Atomic writing must not change what a plain open() would give: results are
    meant to be read by others (umask 022 -> 0644), not only by their writer."""
    old = os.umask(0o022)
    try:
        records.write_atomic(tmp_path / "r.txt", "x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.txt").stat().st_mode) == 0o644


def test_ensure_writable_rejects_path_under_a_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(UserError, match="cannot write"):
        records.ensure_writable(f / "sub")
    assert records.ensure_writable(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert not list((tmp_path / "new" / "deep").iterdir())  # the probe file is gone


def test_load_records_skips_other_schemas(tmp_path):
    good = records.record_path(tmp_path, "tag", "timing", "m_64x64")
    assert good == tmp_path / "records" / "tag" / "timing" / "m_64x64.json"
    records.write_record(good, records.make_record("timing", "tag", {"model": "m"}, {}, {}))
    old = records.record_path(tmp_path, "tag", "timing", "old")
    old.write_text(json.dumps({"schema": 0, "kind": "timing", "spec": {}, "env": {}, "result": {}}))
    (good.parent / "broken.json").write_text("{")
    recs, problems = records.load_records(tmp_path)
    assert [r["request"]["model"] for r in recs] == ["m"]
    assert len(problems) == 2 and any("schema 0" in p for p in problems)


# --------------------------------------------------------------------------- shell drivers

DRIVER = ROOT / "resnet_profiler" / "stats18.sh"


@pytest.mark.skipif(not DRIVER.exists(), reason="resnet_profiler/stats18.sh not written yet")
def test_stats18_driver_from_another_cwd(tmp_path, cpu_tag):
    out = tmp_path / "out"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    proc = subprocess.run(["sh", str(DRIVER), "--device", "cpu", "--size", "64x64", "--iters", "3", "--warmup", "1",
                           "--out-dir", str(out)], cwd=elsewhere, capture_output=True, text=True, timeout=300,
                          env=child_env())
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    stats = out / "resnet_profiler" / "resnet18_stats" / cpu_tag
    expected = [stats / "resnet18_64x64.txt", stats / "layers" / "resnet18_64x64.txt"]
    for txt in expected:
        assert txt.is_file(), txt
        _assert_header(txt.read_text(), "resnet18")
    assert "Coverage (sum of units / whole model):" in expected[1].read_text()
    rec_root = out / "results" / "records" / cpu_tag
    assert load_json(rec_root / "timing" / "resnet18_64x64.json")["schema"] == 2
    assert load_json(rec_root / "layers" / "resnet18_64x64.json")["request"]["iters"] == 3
    # Depth 2 comes from the catalogue (ResNets have blocks), in the same process.
    assert load_json(rec_root / "layers" / "resnet18_64x64_depth2.json")["request"]["depth"] == 2
    assert "stats: 2 steps" in proc.stderr  # one process ran both per-unit requests (+ whole model), counted
    assert not list(elsewhere.iterdir())  # nothing written relative to the caller's cwd
    assert not tmp_leftovers(out)
    # Every file the driver wrote is named on stdout.
    written = {Path(p) for p in proc.stdout.split()}
    assert set(expected) <= written


def test_code_version_named_by_the_sender(monkeypatch):
    """A copied tree (the GPU machine's) may carry a stale .git; the sender names the commit."""
    records.code_version.cache_clear()
    monkeypatch.setenv("BP_CODE_COMMIT", "abc123")
    try:
        assert records.code_version() == {"commit": "abc123", "dirty": False}
    finally:
        records.code_version.cache_clear()
