"""One Protocol value: named presets per device type, time-budgeted and counted,
carried by the Request into every record; records made before protocols were named
get the protocol their loop fields describe."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from common import cli, parsers, protocol, spec
from common.inputs import InputSpec
from common.measure import timing
from conftest import ROOT

RECORDS = ROOT / "results" / "records"


def _iter_s(rec: dict) -> float:
    s = rec["result"]["timing"]["samples_ms"]
    return sum(s) / len(s) / 1e3


def test_quick_cpu_gives_every_catalogue_model_ten_samples_at_pascal_size():
    """From the committed CPU records' own iteration times (each CPU host measured); the
    catalogue's only (the CPU zoo's records at PASCAL size are one-thread runs of any model)."""
    from common import registry

    quick = protocol.preset("quick", "cpu")
    seen = 0
    catalogue = set(registry.names("catalogue"))
    for path in RECORDS.glob("cpu-*/timing/*_pascal.json"):
        if json.loads(path.read_text())["request"]["model"] not in catalogue:
            continue
        assert protocol.samples_for(quick, _iter_s(json.loads(path.read_text()))) >= 10, path.name
        seen += 1
    assert seen >= 11  # the whole catalogue on at least one host


def test_quick_cpu_keeps_slow_loops_within_its_cap():
    quick = protocol.preset("quick", "cpu")
    assert protocol.samples_for(quick, 9.5) == protocol.CAP_FLOOR  # ResNet-152 at Cityscapes size
    assert protocol.samples_for(quick, 1.5) * 1.5 <= quick.cap_s  # MobileNet-V2 there: as many as fit
    assert protocol.samples_for(quick, 0.01) == 100  # fast: a second of timed work, many samples


def test_run_loop_stops_before_a_sample_would_end_past_the_cap():
    calls = [0]

    def fn():
        calls[0] += 1

    class Clock:
        name = "fake"

        def start(self):
            return calls[0]

        def stop(self, token):
            return 4000.0

        def sync(self):
            pass

    now = lambda: calls[0] * 4.0  # noqa: E731 - every call takes 4 s of fake time
    m = timing.run_loop(fn, Clock(), 0, 300, max_seconds=1.0, min_iters=10, now=now, cap_s=12.0)
    assert len(m.samples_ms) == 3 and m.stopped_early  # the third ends at the cap, 12 s; a fourth would pass it
    m = timing.run_loop(fn, Clock(), 0, 300, max_seconds=1.0, min_iters=10, now=now, cap_s=1.0)
    assert len(m.samples_ms) == protocol.CAP_FLOOR  # never fewer


def test_the_request_carries_its_protocol_into_the_record():
    args = parsers.model("timer", None).parse_args(["--model", "resnet18", "--protocol", "quick"])
    req = cli.request_from_args(args, "timer", torch.device("cpu"))
    assert req.protocol == protocol.preset("quick", "cpu") and req.min_iters == 10
    d = req.to_dict()
    assert d["protocol"]["name"] == "quick" and d["protocol"]["cap_s"] == 12.0
    assert spec.Request.from_dict(json.loads(json.dumps(d))) == req
    args = parsers.model("timer", None).parse_args(["--model", "resnet18", "--protocol", "quick",
                                                       "--max-seconds", "2.5"])
    custom = cli.request_from_args(args, "timer", torch.device("cpu")).protocol
    assert custom.name == "custom" and custom.max_seconds == 2.5 and custom.min_iters == 10
    default = cli.request_from_args(parsers.model("timer", None).parse_args(["--model", "resnet18"]), "timer",
                                    torch.device("cpu")).protocol
    assert default == protocol.preset("full", "cpu")


def _no_strings(obj, where="") -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _no_strings(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _no_strings(v, f"{where}[{i}]")
    else:
        assert not isinstance(obj, str) or where.endswith(".name"), where


def test_protocol_values_are_numbers_not_flag_strings():
    for name, dev in protocol.PRESETS:
        _no_strings(protocol.preset(name, dev).to_dict())


def test_records_made_before_protocols_were_named_get_theirs():
    old_quick_gpu = {"device": "cuda:0", "warmup": 25, "iters": 300, "max_seconds": 0.5, "min_iters": 5,
                     "warmup_s": 0.5, "repeats": 2}
    assert protocol.from_request(old_quick_gpu) == protocol.preset("quick", "cuda")
    old_cpu_quick = {"device": "cpu", "warmup": 1, "iters": 2, "max_seconds": None, "min_iters": 5,
                     "warmup_s": 1.0, "repeats": 1}
    p = protocol.from_request(old_cpu_quick)
    assert (p.name, p.warmup, p.iters, p.max_seconds) == ("custom", 1, 2, None)
    assert protocol.from_request({"device": "cpu"}) == protocol.Protocol("custom")  # the old Request defaults
    n = 0
    for path in RECORDS.glob("*/*/*.json"):
        rec = json.loads(path.read_text())
        if rec.get("kind") in spec.KINDS and isinstance(rec.get("request"), dict) and "input" in rec["request"]:
            req = spec.Request.from_dict(rec["request"])
            assert req.stem == path.stem, path  # file stems of existing requests do not change
            n += 1
    assert n > 500


def test_bad_protocol_values_are_one_clear_error():
    with pytest.raises(ValueError):
        protocol.Protocol(max_seconds=-1.0)
    with pytest.raises(ValueError):
        protocol.preset("nope", "cpu")
    with pytest.raises(ValueError):
        spec.Request.of("timing", "resnet18", InputSpec("pascal", 500, 334), "cpu", iters=0)


def test_tables_read_the_presets_not_a_driver_s_flag_list():
    code = ("import sys; from common.render import publish; publish.stated_text(); "
            "print('common.drive' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "False"
