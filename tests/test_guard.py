"""The CPU memory guard against real runs: its estimate is never below the peak a
fresh process measures at growing batches, a batch beyond the memory available is
refused in one line, and whatever the estimate misses ends as an allocation error
(one line), never as the kernel's out-of-memory kill (exit 137, no line)."""
from __future__ import annotations

import re

import pytest

from common import cli, guard, inputs
from common.measure import memory
from common.spec import Request

SIZE = "256x512"  # Cityscapes' aspect at 1/16 of its pixels: a real step, small enough for a test


def _req(batch: int, size: str = SIZE) -> Request:
    return Request(kind="timing", model="resnet18", device="cpu", clock="perf_counter", threads=1,
                   input=inputs.resolve(None, size, batch))


@pytest.fixture
def fresh_probes(monkeypatch):
    monkeypatch.setattr(guard, "_PROBED", {})


def test_the_guard_refuses_every_batch_whose_measured_peak_exceeds_the_budget(fresh_probes, tmp_path, monkeypatch,
                                                                              capsys):
    # The meta-device estimate alone let through runs that then grew far beyond it (VGG-16 at
    # Cityscapes, batch 16: estimated 1.03 GiB per image, killed by the kernel at 24 GB).
    # The request as the timer builds it from its flags (the CLI refusal below probes it too).
    import torch

    from common import parsers

    flags = ["--model", "resnet18", "--device", "cpu", "--size", SIZE, "--threads", "1", "--tag", "t",
             "--out-dir", str(tmp_path)]
    req = cli.request_from_args(parsers.model("timer", "resnet").parse_args([*flags, "--batch", "4"]), "timer",
                                torch.device("cpu"), "resnet")
    # Batch 4: four times the batch the guard's own probe runs (probe_batch: 1 for inference), so
    # its need there is extrapolated, and it is still not below what a fresh process measures.
    peak = memory.cpu_peak(req)["peak_rss_mib"] * 2**20
    assert guard.footprint(req, 8 * guard.GIB).need(4) >= peak
    # Memory for all but the last 2% of that peak: the run would not fit, the guard says so.
    with pytest.raises(guard.UserError, match=r"^not enough memory for resnet18 .*; (batch \d+|not even batch 1) "
                                              r"fits \(largest batch under 80% of the available memory\)$"):
        guard.check_cpu(req, available=int(0.98 * peak / guard.HEADROOM))

    # The timer with a batch far beyond 2 GiB x 0.8 headroom: refused in one line before measuring,
    # the need scaled from the probe of one image (the one above: one probe per request).
    class Memory:
        available = 2 * guard.GIB

    monkeypatch.setattr(guard.psutil, "virtual_memory", lambda: Memory)
    capsys.readouterr()
    assert cli.main("timer", "resnet", [*flags, "--batch", "400"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(
        r"needs about \d+\.\d GiB \(measured: 0\.\d\d GiB per image at batch 1 x 1\.25 margin, plus \d\.\d GiB for the "
        r"framework and model\) and 2\.0 GiB is available; (batch \d+|not even batch 1) fits", err), err
    assert not list(tmp_path.rglob("*"))
    assert len(guard._PROBED) == 1  # the refusal measured nothing more


def test_a_probe_beyond_its_limit_is_one_line(fresh_probes, monkeypatch):
    # The probe runs under an address-space limit: a step that does not fit is an
    # allocation error in the probe's process, answered in one line.
    monkeypatch.setattr(guard, "estimate_bytes", lambda req: 0)  # as if the meta pass had missed it all
    monkeypatch.setattr(guard, "_map_slack", lambda req: 0)
    with pytest.raises(guard.UserError) as exc:
        guard.footprint(_req(1), 16 * 2**20)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("not enough memory for resnet18 at 256x512")
    assert "a probe of batch 1 in a process limited to 0.0 GiB" in msg and "can't allocate memory" in msg


def test_a_run_beyond_the_estimate_ends_in_one_line_not_a_kill(tmp_path, monkeypatch, capsys):
    # Whatever the estimate misses: the run may map only what is available, so going beyond is
    # a MemoryError answered in one line, where the kernel's OOM killer left exit 137 and nothing.
    import resource

    before = resource.getrlimit(resource.RLIMIT_AS)

    class Memory:
        available = guard.GIB // 4

    monkeypatch.setattr(guard.psutil, "virtual_memory", lambda: Memory)
    monkeypatch.setattr(guard, "check_cpu", lambda req, available=None: None)  # an estimate that missed
    code = cli.main("timer", "resnet", ["--model", "resnet18", "--device", "cpu", "--input", "cityscapes", "--batch", "8",
                                        "--iters", "2", "--warmup", "0", "--threads", "1", "--tag", "t",
                                        "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    lines = [seg for line in err.split("\n") if (seg := line.split("\r")[-1].strip())]
    assert code == 3 and len(lines) == 1, err
    assert re.match(r"resnet_profiler/timer.py: error: out of memory at resnet18 input cityscapes batch 8: .*"
                    r"can't allocate memory", lines[0])
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert resource.getrlimit(resource.RLIMIT_AS) == before  # the limit is lifted after the run


def test_far_below_the_memory_available_nothing_is_probed(fresh_probes, monkeypatch):
    monkeypatch.setattr(memory, "cpu_peak", lambda *a, **k: pytest.fail("probed a run that obviously fits"))
    guard.check_cpu(_req(1, "32x32"), available=8 * guard.GIB)


def test_the_methods_table_comes_from_the_measurements_and_no_estimate_is_below_a_peak():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("guard_table", Path(__file__).resolve().parents[1] / "scripts"
                                                  / "guard_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    data = table.load()
    rows = [r for m in data["models"] for r in m["rows"]]
    assert any(r["peak_bytes"] for r in rows) and table.violations(data) == []
    assert all(r["refused"] or r["peak_bytes"] for r in rows)  # every case measured, or refused by the guard
    assert table.render(check=True) == 0  # docs/methods.md shows exactly these measurements
