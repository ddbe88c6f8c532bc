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


def test_a_campaign_ends_the_stem_and_plain_requests_keep_theirs():
    from common import deploy

    assert "campaign" not in request().to_dict()  # a plain request's record keeps its layout
    ours = deploy.own(request(search="fastest"))
    assert ours.stem == "resnet18_32x32_fastest_runtimes" and Request.from_dict(ours.to_dict()) == ours
    assert deploy.own(request(precision="int8")).stem == "resnet18_32x32_int8_runtimes"
    assert deploy.own(request(runtime="openvino")).stem == "resnet18_32x32_openvino"  # names its runtime already


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
    req = request(runtime=runtime, precision=precision, campaign="runtimes" if runtime == "torch" else None).to_dict()
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


def _peak(threads: int, fp32: float, bf16: float, device_type: str = "cpu") -> dict:
    """A CPU peak record as ``python -m common peak --device cpu --threads N`` writes it (TFLOP/s)."""
    return {"kind": "peak", "device_tag": "cpu-x", "request": {"kind": "peak", "device": "cpu", "threads": threads},
            "env": {"date": f"2026-12-05T1{threads}:00:00+00:00", "host_cpu": "CPU X", "threads": threads,
                    "device_type": device_type},
            "result": {"matmul_tflops": {"fp32": fp32, "bf16": bf16}, "copy_gbs": 10.0, "method": "m"}}


def _share_column(text: str) -> dict[str, str]:
    """runtime · precision -> its share-of-peak cell, from the per-input table."""
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("| model ") and "runtime · precision" in ln)
    head = [c.strip() for c in lines[at].split("|")]
    col = head.index("share of peak")
    rows = [[c.strip() for c in ln.split("|")] for ln in lines[at + 2:] if ln.startswith("| resnet18 ")]
    assert all(len(r) == len(head) for r in rows)  # a failure row has the column too
    return {r[2]: r[col] for r in rows}


def _threaded(*recs: dict) -> list[dict]:
    for rec in recs:
        rec["request"]["threads"] = 1
    return list(recs)


def test_share_of_peak_divides_by_the_peak_of_the_precision_that_ran_at_the_runs_threads():
    from common.render import runtimes as page

    # 10 GFLOP per run: 100, 200 and 1000 GFLOP/s.
    runs = _threaded(_rec("torch", "fp32", 100.0), _rec("openvino", "bf16", 50.0), _rec("openvino", "int8", 10.0),
                     _rec("onnxruntime", "fp32", 0.0, kind="runtime-failure"))
    others = [_peak(2, 0.1, 0.1), _peak(1, 9.0, 9.0, device_type="cuda")]  # another thread count; a GPU's
    text = page.page(runs + [_peak(1, 0.2, 0.8)] + others)
    assert _share_column(text) == {"torch eager fp32": "50.0%", "openvino bf16": "25.0%", "openvino int8": "-",
                                   "onnxruntime fp32": "-"}
    assert "measured 2026-12-05T11:00 UTC (CPU X, 1 thread(s)): fp32 200.0 GFLOP/s, bf16 800.0 GFLOP/s" in text
    assert page.NO_PEAK not in text and "int8 rows show -" in text


def test_no_share_of_peak_without_a_peak_of_the_runs_threads():
    from common.render import runtimes as page

    runs = _threaded(_rec("torch", "fp32", 100.0), _rec("openvino", "bf16", 50.0))
    for peaks in ([], [_peak(2, 0.2, 0.8)]):
        text = page.page(runs + peaks)
        assert "| share of peak" not in text and page.NO_PEAK in text and "*Share of peak*" not in text


def test_the_precision_that_ran_is_the_one_most_compute_nodes_ran_in():
    from common.render import runtimes as page

    mixed = _rec("openvino", "int8", 10.0)
    mixed["result"]["runtime"]["executed_precision"] = "bf16 x1, int8 x53 (compute nodes by the precision they ran in)"
    assert page.ran_precision(mixed, "openvino int8") == "int8"
    fastest = _rec("torch", "fp32", 10.0)
    fastest["result"]["fastest"] = {"picked": "eager bf16 channels-last"}
    assert page.ran_precision(fastest, "torch fastest") == "bf16"
    assert page.ran_precision(_rec("torch", "fp32", 10.0), "torch eager fp32") == "fp32"


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
    del mine["env"]["driver"], mine["request"]["campaign"]
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


def test_driver_baselines_never_replace_the_catalogue_record_of_the_same_request(tmp_path, monkeypatch):
    """A catalogue run of resnet18 at ImageNet size is there; the driver then measures its PyTorch
    baseline of that model and input (the measuring stubbed: the stems and the write are real)."""
    from common import deploy, records, run
    from common.render import runtimes as page

    session = run.Session(torch.device("cpu"), tmp_path)
    plain = request(input=inputs.resolve("imagenet", None))
    earlier = {**session.env, "run_id": "catalogue", "date": "2026-01-01T00:00:00.000+00:00"}
    catalogue = records.make_record("timing", session.tag, plain.to_dict(), earlier,
                                    {"timing": {"stats": {"median_ms": 50.0}}})
    run.save(catalogue, session)

    def fake(req, session):
        result = {"timing": {"stats": {"median_ms": 80.0, "noisy": False}}}
        return run.save(records.make_record("timing", session.tag, req.to_dict(), session.env, result), session)

    monkeypatch.setattr(deploy.cli, "measure_and_save", fake)
    assert deploy.main(["--models", "resnet18", "--inputs", "imagenet", "--out-dir", str(tmp_path),
                        "--max-load", "1e9"]) == 0
    folder = session.record_path(plain).parent
    assert json.loads(session.record_path(plain).read_text())["env"]["run_id"] == "catalogue"
    assert not (folder / "history").exists()  # nothing of the catalogue's was pushed aside
    ours = json.loads((folder / "resnet18_imagenet_runtimes.json").read_text())
    assert ours["env"]["driver"] == "runtimes" and ours["request"]["campaign"] == "runtimes"
    assert (folder / "resnet18_imagenet_fastest_runtimes.json").exists() and (folder / "resnet18_imagenet_openvino.json").exists()
    recs = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    cells = page.collect(recs)[(session.tag, "resnet18", "imagenet")]
    assert cells[page.BASELINE]["result"]["timing"]["stats"]["median_ms"] == 80.0  # the page: the driver's own


def test_committed_driver_baselines_sit_under_their_own_stems():
    """Every committed PyTorch run of the runtimes driver (current or kept in history) is its own series."""
    from conftest import ROOT

    seen = 0
    for path in (ROOT / "results" / "records").glob("*/timing/**/*.json"):
        rec = json.loads(path.read_text())
        if rec["env"].get("driver") == "runtimes" and rec["request"].get("runtime", "torch") == "torch":
            assert rec["request"].get("campaign") == "runtimes", path
            seen += 1
    assert seen >= 2  # ResNet-50 and MobileNet-V2 at PASCAL at least


def test_campaign_stems_script_moves_old_driver_baselines_and_gives_the_plain_stem_back(tmp_path):
    """The state the driver left before campaigns: its baseline current at the catalogue's stem,
    the catalogue's run pushed into history; and a baseline at a stem nothing else had."""
    import importlib.util

    from common import records
    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("campaign_stems", ROOT / "scripts" / "campaign_stems.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    folder = tmp_path / "results" / "records" / "cpu-x" / "timing"

    def rec(req: Request, date: str, driver: str | None) -> dict:
        env = {"date": date, "run_id": date, **({"driver": driver} if driver else {})}
        return records.make_record("timing", "cpu-x", req.to_dict(), env, {"timing": {"stats": {"median_ms": 1.0}}})

    pascal, imagenet = (request(input=inputs.resolve(p, None)) for p in ("pascal", "imagenet"))
    records.write_record(folder / "resnet18_pascal.json", rec(pascal, "2026-12-01T00:00:00+00:00", None))
    records.write_record(folder / "resnet18_pascal.json", rec(pascal, "2026-12-05T07:00:00+00:00", "runtimes"))
    records.write_record(folder / "resnet18_imagenet.json", rec(imagenet, "2026-12-05T07:01:00+00:00", "runtimes"))
    old_txt = tmp_path / "resnet_profiler" / "resnet18_stats" / "cpu-x" / "resnet18_imagenet.txt"
    old_txt.parent.mkdir(parents=True)
    old_txt.write_text("its .txt")

    assert len(script.move(tmp_path / "results")) == 2
    back = json.loads((folder / "resnet18_pascal.json").read_text())
    assert "driver" not in back["env"] and not (folder / "history" / "resnet18_pascal").exists()  # current again
    for stem in ("resnet18_pascal_runtimes", "resnet18_imagenet_runtimes"):
        moved = json.loads((folder / f"{stem}.json").read_text())
        assert moved["env"]["driver"] == "runtimes" and Request.from_dict(moved["request"]).stem == stem
    assert not old_txt.exists() and old_txt.with_name("resnet18_imagenet_runtimes.txt").read_text() == "its .txt"
    assert script.move(tmp_path / "results") == []  # a second run changes nothing


def test_notes_say_where_the_runs_ran_and_how_they_waited_from_their_records():
    from common.render import runtimes as page

    def rec(affinity, policy=None):
        env = {"cpu_affinity": affinity, "cpu_count": 2, **({"load_policy": policy} if policy else {})}
        return {"env": env}

    recs = [rec([1], {"max_load": 100.0, "wait_s": 0.0}), rec([1], {"max_load": 4.0, "wait_s": 60.0}), rec([0, 1])]
    text = page._placement(recs)
    assert "2 of the 3 runs were pinned to CPU 1" in text
    assert "1 runs did not wait for the load." in text and "1 runs waited up to 60 s for a load below 4." in text
    assert "1 earlier runs did not record their waiting policy" in text
    assert page._placement([rec([0, 1])]) == ""


def test_driver_names_an_unknown_model_in_one_line_before_any_work(tmp_path, capsys):
    from common import deploy

    assert deploy.main(["--models", "resnet19", "--out-dir", str(tmp_path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'resnet19'" in err[0] and "resnet18" in err[0]
    assert not (tmp_path / "results").exists()
