"""The zoo on a CPU, rendered end to end from small synthetic records (shaped like the
CPU sweep's: one intra-op thread, the process pinned to one core, imagenet and pascal, no
throughput): results/zoo.md's CPU section, results/data/measurements.csv, the page's
data and the choose command."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from common import choose, records
from common.render import data, page, select, zoo
from common.render.zoo_sweep import machine_line

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "records"
CPU, GPU = "cpu-test", "gpu-test"
DATE = "2026-12-05T10:00:00+00:00"
CPU_ENV = {"date": DATE, "host": "vm", "host_cpu": "Test CPU", "cpu_count": 2, "threads": 1, "interop_threads": 1,
           "cpu_affinity": [1], "cpu_affinity_count": 1, "python": "3.11.7", "torch": "2.14.1+cu130",
           "cuda": "13.0", "cudnn": 92400, "device_name": "Test CPU", "driver": None, "device_type": "cpu"}
ZOO = {"name": "zoo", "warmup": 1, "iters": 100, "max_seconds": 1.0, "min_iters": 10, "warmup_s": 1.0,
       "repeats": 1, "cap_s": 12.0, "unit_iters": None}
SEARCH = "1 warm-up, then 1 s of timing per candidate"
# model -> {input: (eager ms, (fastest mode, its ms))}
MS = {"mobilenet_v3_small": {"imagenet": (8.0, ("eager fp32", 7.9)), "pascal": (20.0, ("eager fp32", 20.5))},
      "convnext_tiny": {"imagenet": (90.0, ("eager bf16 channels-last", 55.0)),
                        "pascal": (250.0, ("eager bf16 channels-last", 110.0))}}
MODES = {"eager fp32": {"variant": "", "precision": "fp32", "channels_last": False},
         "eager bf16 channels-last": {"variant": "bf16-cl", "precision": "bf16", "channels_last": True}}
SIZE = {"imagenet": (224, 224), "pascal": (500, 334)}


def _fixture(kind: str) -> dict:
    return json.loads((FIXTURES / "cpu-amd-epyc" / kind / "resnet50_pascal.json").read_text())


def _as(rec: dict, model: str, preset: str, tag: str = CPU, env: dict = CPU_ENV) -> dict:
    rec = copy.deepcopy(rec)
    h, w = SIZE[preset]
    rec["request"].update(model=model, input={"name": preset, "height": h, "width": w, "batch": 1, "channels": 3,
                                              "shape": [1, 3, h, w]})
    rec["device_tag"], rec["env"] = tag, dict(env)
    return rec


def _stats(ms: float, n: int = 12) -> dict:
    return {"n": n, "mean_ms": ms, "std_ms": ms / 100, "median_ms": ms, "p90_ms": ms * 1.01, "p99_ms": ms * 1.02,
            "min_ms": ms * 0.99, "max_ms": ms * 1.02, "iqr_ms": ms / 100, "fps": 1000 / ms, "noisy": False}


def _timing(model: str, preset: str, ms: float, threads: int = 1, protocol: dict | None = ZOO) -> dict:
    rec = _as(_fixture("timing"), model, preset, env={**CPU_ENV, "threads": threads})
    rec["request"].update(protocol=protocol, warmup=1, iters=100, max_seconds=1.0, min_iters=10, warmup_s=1.0)
    t = rec["result"]["timing"]
    t.update(warmup=1, requested_iters=100, iters=12, stopped_early=True, stats=_stats(ms))
    return rec


def _fastest(model: str, preset: str, picked: str, ms: float, eager_ms: float) -> dict:
    rec = _timing(model, preset, ms)
    rec["request"]["search"] = "fastest"
    cands = [{"mode": mode, **m, "median_ms": ms if mode == picked else eager_ms * (1.5 if mode != "eager fp32" else 1),
              "timing": {"iters": 3, "stats": _stats(ms)}} for mode, m in MODES.items()]
    cands.append({"mode": "bf16 channels-last + CUDA graph", "variant": "bf16-cl-graph", "precision": "bf16",
                  "skipped": "--cuda-graph needs a CUDA device; this run is on the CPU"})
    rec["result"]["fastest"] = {"candidates": cands, "picked": picked, "search": SEARCH,
                                "picked_mode": {"mode": picked, **MODES[picked]}}
    return rec


def _write(results: Path, rec: dict, stem: str) -> None:
    records.write_record(records.record_path(results, rec["device_tag"], rec["kind"], stem), rec)


def _sweep(results: Path) -> None:
    for model, per in MS.items():
        for preset, (eager, (mode, fast)) in per.items():
            _write(results, _timing(model, preset, eager), f"{model}_{preset}")
            _write(results, _fastest(model, preset, mode, fast, eager), f"{model}_{preset}_fastest")
            _write(results, _as(_fixture("memory"), model, preset), f"{model}_{preset}")
    # A catalogue model's earlier record at another protocol and 2 threads: shown, marked.
    _write(results, _timing("resnet50", "pascal", 160.0, threads=2, protocol=None), "resnet50_pascal")
    fail = records.make_record("failure", CPU, {"model": "vit_b_16", "input": {"name": "pascal"}, "kind": "eager"},
                               CPU_ENV, {"slot": "eager", "reason": "vit_b_16 needs 224x224 input", "exit_code": 2,
                                         "step": "vit_b_16 pascal eager"})
    _write(results, fail, "eager__vit_b_16_pascal")
    run = records.make_record("zoo-run", CPU, {"model": "zoo", "input": {"name": "imagenet+pascal"}, "kind": "zoo-run"},
                              CPU_ENV, {"models": [*MS, "resnet50", "vit_b_16"], "inputs": ["imagenet", "pascal"],
                                        "what": ["eager", "fastest", "memory"], "protocol": "zoo: the CPU's bound",
                                        "failed": [{"step": "vit_b_16 pascal eager", "reason": "needs 224x224"}],
                                        "wall_s": 5700.0, "calls": 1})
    _write(results, run, "zoo")
    # A GPU with a zoo sweep and a throughput record: its section comes first, with throughput.
    gpu = json.loads((FIXTURES / "nvidia-h100-80gb-hbm3" / "timing" / "resnet50_pascal.json").read_text())
    gpu_env = {**gpu["env"], "date": DATE}
    _write(results, _as(gpu, "convnext_tiny", "imagenet", GPU, gpu_env), "convnext_tiny_imagenet")
    tput = records.make_record("throughput", GPU, {"model": "convnext_tiny", "input": {"name": "imagenet"},
                                                   "kind": "throughput"}, gpu_env,
                               {"modes": [{"name": "eager fp32", "at_largest": {"images_per_s": 900.0, "batch": 64},
                                           "largest_batch": 64, "search": {"cap": 256}}]})
    _write(results, tput, "convnext_tiny_imagenet")
    _write(results, records.make_record("zoo-run", GPU, {"model": "zoo", "input": {"name": "imagenet"},
                                                         "kind": "zoo-run"}, gpu_env,
                                        {"models": ["convnext_tiny"], "inputs": ["imagenet"], "failed": [],
                                         "wall_s": 60.0, "calls": 1, "protocol": "gpu"}), "zoo")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cpuzoo") / "results"
    _sweep(folder)
    return folder


def _section(text: str, heading: str) -> str:
    return text.split(heading + "\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def test_zoo_page_has_the_cpu_section_after_the_gpus(results: Path) -> None:
    text = zoo.outputs(results)[results / "zoo.md"]
    assert text.index(f"## {GPU}") < text.index(f"## {CPU}")
    head = _section(text, f"## {CPU}")
    assert "Sweep: 4 models listed x imagenet, pascal, wall time 95.0 min, 1 failed steps; protocol: zoo: the CPU's bound." in head
    assert ("Machine: Test CPU, 2 logical CPUs, the sweep pinned to 1 of them (CPU 1); 1 intra-op thread, "
            "1 inter-op thread; torch 2.14.1+cu130 (CUDA not used).") in head
    assert (f"Fastest search: timed eager fp32, eager bf16 channels-last; its look at each candidate: {SEARCH}; "
            "picked eager bf16 channels-last for 2, eager fp32 for 2 of 4.") in head
    for preset in ("imagenet", "pascal"):
        table = _section(text, f"### {CPU}, {preset}")
        assert "Protocol: zoo: 1 warm-up (at least 1 s) + at least 10 timed iterations and 1 s, at most 100, " \
               "within 12 s (never below 2), batch 1, 1 thread." in table
        assert "throughput" not in table  # the CPU sweep measured none: no columns of dashes
        eager, (mode, fast) = MS["convnext_tiny"][preset]
        assert re.search(rf"\| `convnext_tiny` +\| +\| .*\| +{eager:.3f} \| +{fast:.3f} \({mode}\) \|", table)
    pascal = _section(text, f"### {CPU}, pascal")
    assert "needs 224x224" in pascal and "`vit_b_16`" in pascal
    assert "160.000 *" in pascal and "batch 1, 2 threads: `resnet50` eager." in text
    assert "throughput eager fp32" in _section(text, f"### {GPU}, imagenet")
    assert set(zoo.figures(results)) >= {results / "figures" / zoo.figure_name(CPU, p) for p in ("imagenet", "pascal")}


def test_dataset_page_and_choose_hold_the_cpu_rows(results: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    recs, problems = records.load_records(results, history=True)
    res = select.select(recs, problems)
    assert res.problems == []
    rows = [r for r in data.measurements(recs, res, results.parent, []) if r["device"] == CPU]
    got = {(r["model"], r["input"], r["mode"]): r for r in rows}
    for model, per in MS.items():
        for preset, (eager, (mode, fast)) in per.items():
            # The plain eager record, not a same-date search that picked eager fp32 (as zoo.md shows it).
            assert got[(model, preset, "eager fp32")]["median_ms"] == eager
            assert got[(model, preset, "eager fp32")]["fastest_search"] is False
            assert got[(model, preset, mode)]["median_ms"] == (fast if mode != "eager fp32" else eager)
    assert all(r["protocol"].endswith(", 1 thread") for r in rows if r["model"] != "resnet50")
    assert got[("convnext_tiny", "pascal", "eager fp32")]["peak_mib"] is not None
    csv_text, units_text = cpu_dataset(results)
    html = page.html_page(csv_text, units_text, "..")
    payload = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S).group(1))
    device, inp = payload["columns"].index("device"), payload["columns"].index("input")
    assert {(r[device], r[inp]) for r in payload["rows"] if r[device] == CPU} == {(CPU, "imagenet"), (CPU, "pascal")}
    assert "1 thread" in html.split("<section id=\"controls\">")[0]  # the header's protocol for the CPU
    path = tmp_path / "measurements.csv"
    path.write_text(csv_text)
    assert choose.main(["--data", str(path), "--device", CPU, "--input", "pascal", "--max-ms", "100",
                        "--mode", "fastest"]) == 0
    out = capsys.readouterr().out
    assert "mobilenet_v3_small" in out and "convnext_tiny" not in out  # 20 ms in; 110 ms out


def cpu_dataset(results: Path) -> tuple[str, str]:
    """(measurements.csv, units.csv) texts rendered from ``results``."""
    recs, problems = records.load_records(results, history=True)
    res = select.select(recs, problems)
    return (data.to_csv(data.MEASUREMENT_COLUMNS, data.measurements(recs, res, results.parent, [])),
            data.to_csv(data.UNIT_COLUMNS, data.units(recs, results.parent, [])))


def test_one_thread_is_said_in_the_singular() -> None:
    assert select._software({"device_type": "cpu", "torch": "2", "threads": 1}) == "torch 2 (CUDA/cuDNN not used), 1 thread"


def test_machine_line_leaves_out_what_an_older_record_lacks() -> None:
    assert machine_line({"device_type": "cpu", "host_cpu": "Old CPU"}) == "Machine: Old CPU."
    assert machine_line({"device_type": "cpu", "host_cpu": "C", "cpu_count": 4, "cpu_affinity": [0, 1, 2, 3],
                         "threads": 4}) == "Machine: C, 4 logical CPUs; 4 intra-op threads."
    assert machine_line({"device_type": "cuda", "device_name": "G", "driver": "1", "host_cpu": "H", "torch": "2",
                         "cuda": "13"}) == "Machine: G (driver 1), host CPU H; torch 2, CUDA 13."
