"""ONNX Runtime / OpenVINO / PyTorch int8 runs: export cache, agreement, int8,
failure records, the timer's --runtime flag (CPU, 32x32 inputs)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from common import cli, inputs
from common.measure import export, runtimes
from common.spec import Request

SMALL = ["--device", "cpu", "--size", "32x32", "--iters", "3", "--warmup", "1", "--warmup-seconds", "0",
         "--threads", "1"]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("bp-cache")


@pytest.fixture(autouse=True)
def cache(shared_cache, monkeypatch):
    """One export cache for the module's runs (each exports resnet18 at 32x32 once)."""
    monkeypatch.setenv("BP_CACHE", str(shared_cache))
    return shared_cache


def timer(args: list, out, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main("timer", "resnet", ["--model", "resnet18", *SMALL, "--out-dir", str(out), *args])
    got = capsys.readouterr()
    return code, got.out, got.err


def request(**kw) -> Request:
    return Request(**{"kind": "timing", "model": "resnet18", "input": inputs.resolve(None, "32x32"), "device": "cpu",
                      "clock": "perf_counter", **kw})


def test_stems_keep_torch_names_and_name_other_runtimes():
    assert request().stem == "resnet18_32x32"
    assert request(precision="bf16").stem == "resnet18_32x32_bf16"
    assert request(runtime="openvino").stem == "resnet18_32x32_openvino"
    assert request(runtime="onnxruntime", precision="int8").stem == "resnet18_32x32_int8-onnxruntime"
    old = {k: v for k, v in request().to_dict().items() if k != "runtime"}  # a record written before the field
    assert Request.from_dict(old).runtime == "torch"


def test_export_cache_miss_then_hit(tmp_path, monkeypatch):
    cache = tmp_path / "own-cache"
    monkeypatch.setenv("BP_CACHE", str(cache))
    req = request(runtime="onnxruntime")
    model, x = export.build_seeded(req), inputs.make(req.input, "cpu")
    first = export.onnx_fp32(req, model, x)
    second = export.onnx_fp32(req, model, x)
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["path"] == second["path"] and first["path"].startswith(str(cache))
    assert f"opset{export.OPSET}" in first["path"] and torch.__version__.replace("+", "-") in first["path"]
    assert export.key(request(runtime="onnxruntime", input=inputs.resolve(None, "64x64"))) != export.key(req)


def test_agreement_catches_a_wrong_output():
    ref = [np.linspace(-1, 1, 1000, dtype=np.float32).reshape(1, 1000)]
    assert not runtimes.agreement(ref, [ref[0] + 1e-6], "fp32")["flagged"]
    wrong = runtimes.agreement(ref, [np.random.default_rng(0).standard_normal((1, 1000))], "fp32")
    assert wrong["flagged"] and wrong["cosine"] < runtimes.MIN_COSINE["fp32"]
    assert runtimes.agreement(ref, [np.full((1, 1000), np.nan)], "int8")["flagged"]
    assert runtimes.agreement(ref, [ref[0][:, :10]], "fp32")["flagged"]


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_int8_runs_and_agrees(runtime, tmp_path, capsys):
    code, out, err = timer(["--runtime", runtime, "--precision", "int8"], tmp_path, capsys)
    assert code == 0, err
    rec = json.loads(open(out.split()[-1]).read())
    r = rec["result"]
    assert rec["request"]["runtime"] == runtime and rec["request"]["precision"] == "int8"
    assert "int8" in r["runtime"]["executed_precision"]
    assert r["quantisation"]["path"].startswith("$BP_CACHE/onnx/") and r["export"]["path"].startswith("$BP_CACHE/")
    assert not r["agreement"]["flagged"], r["agreement"]
    assert r["timing"]["iters"] == 3 and len(r["runtime"]["compile_s"]) == 1


def test_timer_openvino_writes_record_and_txt(tmp_path, capsys):
    code, out, err = timer(["--runtime", "openvino"], tmp_path, capsys)
    assert code == 0, err
    paths = out.split()
    assert [p.rsplit(".", 1)[-1] for p in paths] == ["txt", "json"]
    rec = json.loads(open(paths[1]).read())
    assert "float32" in rec["result"]["runtime"]["inference_precision_readback"]  # not lowered to bf16
    assert rec["result"]["per_node"]["units"] and rec["result"]["agreement"]["cosine"] > 0.9999
    assert "openvino fp32" in open(paths[0]).read()


@pytest.mark.parametrize("args, words", [
    (["--runtime", "tensorrt"], "--runtime"),
    (["--runtime", "onnxruntime", "--precision", "bf16"], "not available with --runtime onnxruntime"),
    (["--runtime", "openvino", "--layers"], "drop --layers"),
])
def test_bad_runtime_input_is_one_line(args, words, tmp_path, capsys):
    try:
        code, _, err = timer(args, tmp_path, capsys)
    except SystemExit as exc:  # argparse's own one line
        code, err = exc.code, capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and words in err
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.json"))


def test_unexportable_model_leaves_a_failure_record(tmp_path, capsys, monkeypatch):
    def refuse(*_a, **_k):
        raise RuntimeError("Exporting the operator 'aten::made_up' to ONNX opset version 17 is not supported.")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    monkeypatch.setenv("BP_CACHE", str(tmp_path / "empty-cache"))  # nothing cached: the export must run
    code, out, err = timer(["--runtime", "onnxruntime"], tmp_path, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "export failed" in err and "aten::made_up" in err
    [path] = list((tmp_path / "results" / "records").rglob("runtime-failure/*.json"))
    rec = json.loads(path.read_text())
    assert path.stem == "resnet18_32x32_onnxruntime" and rec["result"]["stage"] == "export"
    assert "aten::made_up" in rec["result"]["reason"] and "\n" not in rec["result"]["reason"]


def _rec(runtime: str, precision: str, ms: float, flagged: bool = False, kind: str = "timing") -> dict:
    req = request(runtime=runtime, precision=precision).to_dict()
    req["input"] = {"name": "pascal", "height": 500, "width": 334, "batch": 1, "channels": 3}
    env = {"date": "2026-12-05T07:00:00+00:00", "driver": "runtimes", "loadavg_1m": 1.5, "host_cpu": "CPU X",
           "cpu_count": 2, "torch": "2.14.1"}
    if kind != "timing":
        return {"kind": kind, "device_tag": "cpu-x", "request": req, "env": env,
                "result": {"stage": "export", "reason": "RuntimeError: no symbolic for aten::made_up"}}
    result = {"timing": {"stats": {"median_ms": ms, "noisy": False}}, "gflops": 10.0}
    if runtime != "torch" or precision == "int8":
        result["runtime"] = {"name": runtime, "version": "1.0", "executed_precision": f"{precision} x20 (...)",
                             "compile_s": [0.5]}
        result["agreement"] = {"cosine": 0.5 if flagged else 0.99999, "max_abs_diff": 0.1, "flagged": flagged,
                               "why": "cosine 0.5 < 0.9" if flagged else None, "max_abs_reference": 2.0}
    return {"kind": kind, "device_tag": "cpu-x", "request": req, "env": env, "result": result}


def test_page_flags_disagreement_and_never_crowns_it():
    from common.render import runtimes as page

    recs = [_rec("torch", "fp32", 100.0), _rec("openvino", "int8", 10.0, flagged=True),
            _rec("onnxruntime", "int8", 40.0), _rec("openvino", "fp32", 0.0, kind="runtime-failure")]
    text = page.page(recs)
    ov_row, listed = [ln for ln in text.splitlines() if "| openvino int8" in ln]  # its table row, the list
    assert "DISAGREES" in ov_row and "10.00" in ov_row and "10.00x" in ov_row
    assert "cosine 0.5 < 0.9" in listed
    fastest = next(ln for ln in text.splitlines() if ln.startswith("| resnet18") and "| pascal" in ln)
    assert "onnxruntime int8" in fastest and "2.50x" in fastest and "openvino int8" not in fastest
    assert "failed at export: RuntimeError: no symbolic for aten::made_up" in text
    [figure] = page.figures(recs)
    assert figure.name == "runtimes_cpu-x_pascal.png"
    from common.render.figures import draw_png

    assert draw_png(figure).startswith(b"\x89PNG")
    assert "load" in text and "1.50" in text


def test_page_keeps_the_drivers_pytorch_reference_that_another_campaign_replaced():
    """Another campaign's run of the same request (the CPU zoo's eager fp32, same file stem)
    replaced the driver's PyTorch run, kept under history/: the speed-ups were '-x'."""
    from common.render import runtimes as page

    kept = {**_rec("torch", "fp32", 100.0), "_history": True}
    older = {**_rec("torch", "fp32", 300.0), "_history": True}
    older["env"] = {**older["env"], "date": "2026-12-04T07:00:00+00:00"}
    other = _rec("torch", "fp32", 80.0)
    other["env"] = {k: v for k, v in other["env"].items() if k != "driver"}  # not the driver's: not on this page
    stale_ov = {**_rec("openvino", "fp32", 1.0), "_history": True}  # another runtime's earlier run: never shown
    recs = [older, other, kept, _rec("openvino", "fp32", 50.0), stale_ov]
    assert page.collect(recs)[("cpu-x", "resnet18", "pascal")][page.BASELINE] is kept
    row = next(ln for ln in page.page(recs).splitlines() if ln.startswith("| resnet18") and "| openvino fp32" in ln)
    assert "50.00" in row and "2.00x" in row


def test_driver_waits_for_a_quiet_machine_but_not_forever():
    from common import deploy

    loads, slept = iter([9.0, 8.0, 2.0]), []
    assert deploy.wait_for_quiet(4.0, 60, slept.append, lambda: next(loads)) == 10.0 and len(slept) == 2
    assert deploy.wait_for_quiet(4.0, 15, slept.append, lambda: 30.0) == 15.0


def test_runtime_records_stay_off_the_pytorch_tables():
    from common.render import select, zoo

    for rec in (_rec("openvino", "fp32", 5.0), _rec("torch", "fp32", 100.0)):  # the driver's PyTorch run too
        rec["env"]["device_type"] = "cpu"
        assert select.runtimes_page_only(rec) and not select.is_default_mode(rec) and zoo._slot(rec) is None
    mine = _rec("torch", "fp32", 100.0)
    del mine["env"]["driver"]
    assert not select.runtimes_page_only(mine)


def test_driver_resumes_only_its_own_runs_at_the_same_threads(tmp_path):
    from common import deploy, records, run

    session = run.Session(torch.device("cpu"), tmp_path, "t")
    req = request(runtime="openvino", threads=1)
    assert deploy.done_before(session, req, False) is None
    path = session.record_path(req)
    path.parent.mkdir(parents=True)
    for env, threads, want in (({}, 1, None), ({"driver": "runtimes"}, 2, None), ({"driver": "runtimes"}, 1, "measured")):
        path.write_text(json.dumps({"env": env, "request": {**req.to_dict(), "threads": threads}}))
        assert deploy.done_before(session, req, False) == want
    path.unlink()
    run.save_failure(req, session, "export", "RuntimeError: no")
    assert deploy.done_before(session, req, False) == "failed before" and deploy.done_before(session, req, True) is None
    assert records.load_records(tmp_path / "results")[0][0]["kind"] == "runtime-failure"


def test_pytorch_int8_that_cannot_trace_is_a_failure_record(tmp_path, capsys, monkeypatch):
    from torch.ao.quantization import quantize_fx

    def untraceable(*_a, **_k):
        raise TypeError("symbolically traced variables cannot be used as inputs to control flow")

    monkeypatch.setattr(quantize_fx, "prepare_fx", untraceable)
    code, _, err = timer(["--precision", "int8"], tmp_path, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "quantise failed" in err
    [path] = list((tmp_path / "results" / "records").rglob("runtime-failure/*.json"))
    assert path.stem == "resnet18_32x32_int8" and "control flow" in json.loads(path.read_text())["result"]["reason"]


def test_driver_dates_each_record_when_it_ran(tmp_path, monkeypatch):
    from common import deploy

    seen = []
    monkeypatch.setattr(deploy.cli, "measure_and_save", lambda req, session: seen.append(session.env["date"]) or [])
    monkeypatch.setattr(deploy.dt, "datetime", type("Clock", (), {"n": 0, "now": classmethod(
        lambda cls, tz=None: type("T", (), {"isoformat": lambda self, timespec: f"t{len(seen)}"})())}))
    assert deploy.main(["--models", "resnet18", "--inputs", "imagenet", "--out-dir", str(tmp_path), "--max-load", "1e9"]) == 0
    assert seen == [f"t{i}" for i in range(len(deploy.CORE))]
