"""Protocol defects found in review: values checked when parsed, no abbreviated flags
lost by the drivers, no module global mutated by the zoo, every record kind known,
mode rows keyed on how the model was built."""
from __future__ import annotations

import json

import pytest

from common import drive, spec
from common.inputs import InputSpec
from common.render import select, tables
from common.zoo import driver, throughput
from conftest import ROOT


@pytest.mark.parametrize("flag,value", [("--max-seconds", "-1"), ("--iters", "0"), ("--min-iters", "-2"),
                                        ("--warmup", "-1"), ("--budget-s", "0"), ("--throughput-cap", "0")])
def test_zoo_rejects_bad_protocol_values_when_parsing(flag, value, capsys):
    with pytest.raises(SystemExit) as exc:  # before any model is listed or run
        driver.main([flag, value, "--list", "--device", "cpu"])
    assert exc.value.code == 2
    err = capsys.readouterr()
    assert err.out == "" and err.err.count("\n") == 1 and flag in err.err


def test_zoo_leaves_the_throughput_cap_global_alone(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(driver.envmod, "resolve_device", lambda _d: driver.torch.device("cuda:0"))
    monkeypatch.setattr(driver.run, "Session", lambda *a, **k: type("S", (), {
        "results": tmp_path, "tag": "t", "env": {}})())
    monkeypatch.setattr(driver, "model_steps", lambda sweep, model, first: seen.append(sweep.args.throughput_cap) or [])
    before = dict(throughput.CAP)
    assert driver.main(["--models", "resnet18", "--throughput-cap", "8", "--no-run-record", "--device", "cuda"]) == 0
    assert seen == [8] and throughput.CAP == before


def test_an_abbreviated_flag_is_refused_not_lost_to_the_preset_loop(capsys):
    with pytest.raises(SystemExit):
        drive.stats_steps("resnet18", ["--device", "cpu", "--inp", "pascal"], drive.Sessions())
    assert "--inp" in capsys.readouterr().err


def test_every_record_kind_on_disk_is_known_and_requests_check_theirs():
    on_disk = {p.name for p in (ROOT / "results" / "records").glob("*/*") if p.is_dir()}
    assert on_disk <= set(spec.RECORD_KINDS), on_disk - set(spec.RECORD_KINDS)
    assert "throughput" in spec.KINDS
    with pytest.raises(ValueError):
        spec.Request("timings", "resnet18", InputSpec("pascal", 500, 334), "cpu")


def _timing(tag: str, os_: int, median: float) -> dict:
    rec = json.loads((ROOT / "tests" / "fixtures" / "records" / "cpu-amd-epyc" / "timing" /
                      "resnet18_pascal.json").read_text())
    rec["device_tag"] = tag
    rec["request"]["output_stride"] = os_
    rec["result"]["timing"]["stats"].update(median_ms=median, mean_ms=median)
    rec["_path"] = f"{tag}/timing/resnet18_pascal{'_os8' if os_ == 8 else ''}.json"
    return rec


def test_modes_rows_keep_output_strides_apart():
    res = select.select([_timing("d", 32, 10.0), _timing("d", 8, 40.0)], [])
    entries = {k: e for k, e in res.modes.items() if k[1] == "resnet18"}
    assert sorted(e.median_ms for e in entries.values()) == [10.0, 40.0]
    table = tables.modes_table(res, "d")
    assert "eager fp32 (output stride 8)" in table and "10.000" in table and "40.000" in table


@pytest.fixture
def one_thread():
    """One thread before the test, so that two (within this machine's cores) is a change."""
    was = driver.torch.get_num_threads()
    driver.torch.set_num_threads(1)
    yield
    driver.torch.set_num_threads(was)


def test_cpu_threads_are_restored_after_a_request(capsys, one_thread):
    from common import cli, env

    before = driver.torch.get_num_threads()
    with pytest.raises(RuntimeError), env.cpu_threads(before + 1):
        assert driver.torch.get_num_threads() == before + 1
        raise RuntimeError("the request failed")
    assert driver.torch.get_num_threads() == before
    # A run that fails after its --threads was applied leaves the process's count as it was.
    assert cli.main("timer", None, ["--model", "no_such_model", "--threads", str(before + 1), "--device", "cpu"]) == 2
    assert driver.torch.get_num_threads() == before


def test_a_driver_restores_the_thread_count_after_its_steps(monkeypatch, one_thread):
    before = driver.torch.get_num_threads()
    seen = []
    monkeypatch.setattr(drive, "run_steps",
                        lambda prog, steps, failures: seen.append(driver.torch.get_num_threads()) or 0)
    assert drive.main(["stats", "--model", "resnet18", "--no-layers", "--device", "cpu", "--threads",
                       str(before + 1)]) == 0
    assert seen == [before + 1] and driver.torch.get_num_threads() == before
