"""A kernel profile never precedes a timed loop of its process (a CUDA profiler pass
slows later launch-bound loops): drivers profile every request at their end and
merge the kernel fields into the saved records; a single run profiles right after
its own loops; --no-kernels takes none and says so. CPU, in process: the profiler
is a fake that logs its calls, as are the timed loops (wrapping the real ones)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from common import cli, drive, parsers, run, run_kernels
from common.measure import kernels, layerwise, timing
from common.zoo import driver as zoo

TINY = ["--device", "cpu", "--size", "32x32", "--warmup", "0", "--iters", "2", "--warmup-seconds", "0",
        "--tag", "t"]


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    """'loop' for every timed loop (whole model, per unit), 'profile' for every kernel
    profile; the profile is a fake that reports 1 ms per iteration, split evenly over units."""
    log: list[str] = []
    real_loop, real_units = timing.run_loop, layerwise.profile_units

    def loop(*a, **kw):
        log.append("loop")
        return real_loop(*a, **kw)

    def unit_loop(*a, **kw):
        log.append("loop")
        return real_units(*a, **kw)

    def fake_profile(fn, device, wall_median_ms, model=None, units=None):
        log.append("profile")
        n = kernels.PROFILED_ITERS
        per_unit = {u.label: [1.0 / len(units)] * n for u in units} if units else {}
        attr = {"iterations": [1.0] * n, "units": per_unit, "outside_units": [0.0] * n if units else [],
                "unlaunched": 0}
        return kernels.summary(attr, wall_median_ms)

    monkeypatch.setattr(timing, "run_loop", loop)
    monkeypatch.setattr(layerwise, "profile_units", unit_loop)
    monkeypatch.setattr(kernels, "profile", fake_profile)
    monkeypatch.setattr(kernels, "supported", lambda device: True)  # the CPU stands in for a GPU
    return log


def _records(root: Path) -> dict[str, dict]:
    return {f"{p.parent.name}/{p.stem}": json.loads(p.read_text())
            for p in (root / "results" / "records" / "t").rglob("*.json")}


def test_a_driver_profiles_after_every_timed_loop_and_merges_the_kernels(tmp_path, calls, capsys):
    # Two requests (per unit at depth 1 with the whole model, per unit at depth 2) in one process.
    code = drive.main(["stats", "--model", "resnet18", *TINY, "--out-dir", str(tmp_path)])
    assert code == 0
    assert "stats: 4 steps" in capsys.readouterr().err  # the two profiles are steps of the overall bar
    assert calls.count("profile") == 4 and "loop" in calls  # whole model + per unit, for each request
    first = calls.index("profile")
    assert "loop" not in calls[first:], calls  # no timed loop after any profile
    recs = _records(tmp_path)
    assert sorted(recs) == ["layers/resnet18_32x32", "layers/resnet18_32x32_depth2", "timing/resnet18_32x32"]
    for name, rec in recs.items():
        r = rec["result"]
        assert r["kernel_profile"] == {"status": "taken", "when": kernels.WHEN_DEFERRED}, name
        k = r["kernels"]
        assert k["kernel_ms"] == 1.0 and k["when"] == kernels.WHEN_DEFERRED
        assert k["busy"] == pytest.approx(1.0 / r["repeats"]["median_of_medians_ms"])
        assert k["launch_bound"] == (k["busy"] < kernels.LAUNCH_BOUND_BUSY)
        if rec["kind"] == "layers":
            assert all(u["kernel_ms"] is not None for u in r["units"]) and r["kernel_coverage"] == pytest.approx(1.0)
            assert r["unit_kernels"]["kernel_ms"] == 1.0
    # The .txt beside the record was re-rendered with the kernel lines.
    txts = list((tmp_path / "resnet_profiler").rglob("*.txt"))
    assert txts and all("Kernels" in p.read_text() for p in txts)


def test_no_kernels_takes_no_profile_and_says_so(tmp_path, calls, capsys):
    code = drive.main(["stats", "--model", "resnet18", *TINY, "--no-layers", "--input", "pascal", "--no-kernels",
                       "--out-dir", str(tmp_path)])
    assert code == 0 and "stats: 1 steps" in capsys.readouterr().err
    assert "profile" not in calls
    (rec,) = _records(tmp_path).values()
    assert "kernels" not in rec["result"] and rec["result"]["kernel_profile"] == run_kernels.NOT_TAKEN
    assert rec["request"]["kernels"] is False


def test_a_single_run_profiles_right_after_its_own_loops(tmp_path, calls):
    code = cli.main("timer", None, ["--model", "resnet18", "--layers", "--repeats", "2", *TINY,
                                    "--out-dir", str(tmp_path)])
    assert code == 0
    assert calls == ["loop", "loop", "loop", "profile", "profile"]  # two repeats, the unit loop, then profiles
    (rec,) = _records(tmp_path).values()
    assert rec["result"]["kernels"]["when"] == kernels.WHEN_OWN_LOOPS and rec["result"]["kernel_coverage"] == pytest.approx(1.0)


def test_a_record_waits_with_its_profile_pending_until_add_kernels(tmp_path, calls):
    sess = run.Session(torch.device("cpu"), tmp_path, "t", defer_kernels=True)
    args = parsers.model("timer", None).parse_args(["--model", "resnet18", *TINY])
    req = cli.request_from_args(args, "timer", sess.device)
    cli.measure_and_save(req, sess)
    rec = json.loads(sess.record_path(req).read_text())
    assert calls == ["loop"] and rec["result"]["kernel_profile"]["status"] == "pending"
    assert "kernels" not in rec["result"]
    assert run.add_kernels(req, sess) and calls == ["loop", "profile"]
    assert json.loads(sess.record_path(req).read_text())["result"]["kernels"]["busy"] is not None
    assert run.add_kernels(req, sess) == [] and calls == ["loop", "profile"]  # taken once, not again


def test_the_zoo_profiles_its_timing_records_after_every_timed_loop(tmp_path, calls):
    # A GPU zoo call (the CPU standing in): eager and fastest of two models, then the profiles.
    code = zoo.main(["--device", "cpu", "--models", "resnet18", "mobilenet_v2", "--inputs", "32x32",
                     "--what", "eager", "fastest", "--warmup", "0", "--iters", "3", "--min-iters", "1",
                     "--out-dir", str(tmp_path), "--tag", "t"])
    assert code == 0
    assert calls.count("profile") == 4 and "loop" not in calls[calls.index("profile"):]
    recs = _records(tmp_path)
    timing_recs = [r for k, r in recs.items() if k.startswith("timing/")]
    assert len(timing_recs) == 4
    for r in timing_recs:
        assert r["result"]["kernel_profile"] == {"status": "taken", "when": kernels.WHEN_DEFERRED}
        assert r["result"]["kernels"]["busy"] is not None
