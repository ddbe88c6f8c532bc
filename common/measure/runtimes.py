"""Deployment runtimes beside PyTorch: ONNX Runtime and OpenVINO (fp32, bf16, int8)
and PyTorch's own int8 path, timed with the protocol loop of ``common.measure.timing``.

Every run builds the model with seeded random weights (``export.build_seeded``),
takes its PyTorch fp32 output on the seeded input as the reference, loads the cached
export into the runtime (session creation / compilation timed apart), times the same
warm-up + samples loop on fresh sessions per repeat, reads back the precision the
runtime executed, compares its output with the reference (``agreement``) and takes
a per-node profile mapped onto the model's units where the node names allow.
"""
from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from common import inputs, paths, registry
from common.errors import UserError
from common.measure import export, timing
from common.spec import RUNTIMES, Request

PRECISIONS_OF = {"onnxruntime": ("fp32", "int8"), "openvino": ("fp32", "bf16", "int8"), "torch-cpu-int8": ("int8",)}
# Output agreement with PyTorch fp32 on the same input: a run is flagged when its cosine
# similarity falls below this (the weights are random, so top-1 accuracy means nothing;
# the cosine of the whole output vector is the sanity check). fp32 runtimes differ from
# PyTorch only by summation order; bf16 keeps 8 mantissa bits; int8 post-training
# quantisation of random-weight networks loses more, but an output that still points
# the same way (cosine >= 0.9) is a working quantised model, a broken one scatters.
MIN_COSINE = {"fp32": 0.9999, "bf16": 0.99, "int8": 0.9}
PROFILE_ITERS = 3  # per-node profile: inferences averaged, on a separate profiling session
QUANT_OPS = ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QGemm", "MatMulIntegerToFloat",
             "QLinearAdd", "QLinearGlobalAveragePool", "QLinearMul", "QLinearSigmoid")


def handles(req: Request) -> bool:
    """Requests this module measures: another runtime, or PyTorch's int8."""
    return req.runtime != "torch" or req.precision == "int8"


def check(req: Request) -> None:
    """One line when the request cannot run as asked."""
    if req.runtime not in RUNTIMES:
        raise UserError(f"unknown runtime {req.runtime!r}; choose from: {', '.join(RUNTIMES)}")
    if not handles(req):
        return
    name = req.runtime if req.runtime != "torch" else "torch-cpu-int8"
    if not req.device.startswith("cpu"):
        what = "PyTorch's int8 path (x86 quantised kernels)" if req.runtime == "torch" else \
            f"{req.runtime} (only its CPU execution provider/plugin is installed: GPU not available)"
        raise UserError(f"{what} runs on the CPU; use --device cpu")
    if req.precision not in PRECISIONS_OF[name]:
        raise UserError(f"--precision {req.precision} is not available with --runtime {req.runtime} "
                        f"(it runs: {', '.join(PRECISIONS_OF[name])})")
    flags = {"--layers (a runtime run carries its per-node profile)": req.per_unit, "--pass train": req.is_train,
             "--mode fastest": req.search == "fastest", "--channels-last": req.channels_last,
             "--compile": bool(req.compile), "--fresh-process": req.fresh_process, "--features": req.features}
    drop = [f for f, on in flags.items() if on]
    if drop:
        raise UserError(f"--runtime {req.runtime} --precision {req.precision} times whole-model inference as "
                        f"that runtime runs it; drop {', '.join(drop)}")


def agreement(reference: list[np.ndarray], got: list[np.ndarray], precision: str) -> dict:
    """Max absolute difference and cosine similarity of every output together; flagged
    when the cosine is below ``MIN_COSINE[precision]`` or the shapes differ."""
    if [r.shape for r in reference] != [np.shape(g) for g in got]:
        return {"max_abs_diff": None, "cosine": None, "min_cosine": MIN_COSINE[precision], "flagged": True,
                "why": f"output shapes differ: {[r.shape for r in reference]} vs {[np.shape(g) for g in got]}"}
    a = np.concatenate([np.asarray(r, np.float64).ravel() for r in reference])
    b = np.concatenate([np.asarray(g, np.float64).ravel() for g in got])
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(a @ b / norm) if norm > 0 else (1.0 if np.array_equal(a, b) else 0.0)
    finite = bool(np.isfinite(b).all())
    cosine = cosine if finite else 0.0
    diff = float(np.abs(a - b).max()) if finite else None
    flagged = not finite or cosine < MIN_COSINE[precision]
    return {"max_abs_diff": diff, "max_abs_reference": float(np.abs(a).max()), "cosine": cosine,
            "min_cosine": MIN_COSINE[precision], "flagged": flagged,
            "why": ("non-finite output" if not finite else f"cosine {cosine:.6f} < {MIN_COSINE[precision]}")
            if flagged else None}


def torch_outputs(out: object) -> list[np.ndarray]:
    """A model's outputs (tensor, sequence or dict of tensors) in export order, as arrays."""
    if isinstance(out, torch.Tensor):
        return [out.detach().float().numpy()]
    if isinstance(out, dict):
        out = list(out.values())
    return [a for o in out for a in torch_outputs(o)]


@dataclass
class Runner:
    """One runtime session ready to run: ``fn`` is one inference on the seeded input."""

    fn: Callable[[], object]
    outputs: Callable[[], list[np.ndarray]]
    compile_s: float
    info: dict = field(default_factory=dict)


def _ort(path: str, x: np.ndarray, threads: int, profile_prefix: str | None = None) -> tuple[Runner, object]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if profile_prefix:
        so.enable_profiling, so.profile_file_prefix = True, profile_prefix
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    compile_s = time.perf_counter() - t0
    feed = {sess.get_inputs()[0].name: x}
    info = {"providers": sess.get_providers(), "graph_optimization": "ORT_ENABLE_ALL", "intra_op_threads": threads,
            "inter_op_threads": 1}
    return Runner(lambda: sess.run(None, feed), lambda: sess.run(None, feed), compile_s, info), sess


OV_HINT = {"fp32": "f32", "bf16": "bf16"}  # int8: OpenVINO's default for the ops left unquantised


def _ov(path: str, x: np.ndarray, threads: int, precision: str, perf_count: bool = False) -> tuple[Runner, object]:
    import openvino as ov

    config: dict = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                    "PERF_COUNT": perf_count}
    if precision in OV_HINT:  # unset, OpenVINO lowers fp32 to bf16 on a CPU with AMX/AVX512_BF16
        config["INFERENCE_PRECISION_HINT"] = OV_HINT[precision]
    core = ov.Core()
    t0 = time.perf_counter()
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    compile_s = time.perf_counter() - t0
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(x))
    n_out = len(compiled.outputs)
    info = {"device": "CPU", "config": {k: str(v) for k, v in config.items()},
            "inference_precision_readback": str(compiled.get_property("INFERENCE_PRECISION_HINT")),
            "performance_hint_readback": str(compiled.get_property("PERFORMANCE_HINT")),
            "threads_readback": int(compiled.get_property("INFERENCE_NUM_THREADS"))}
    def outputs() -> list[np.ndarray]:
        request.infer()
        return [np.array(request.get_output_tensor(i).data) for i in range(n_out)]

    return Runner(request.infer, outputs, compile_s, info), request


def _torch_int8(model: torch.nn.Module, xt: torch.Tensor, req: Request) -> Runner:
    """PyTorch's x86 int8 path: FX graph-mode static quantisation (fbgemm/oneDNN kernels)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), (xt,))
        with torch.no_grad():
            for c in export.calibration_inputs(req):
                prepared(torch.from_numpy(c))
        q = convert_fx(prepared)
    quantised = sorted({type(m).__name__ for m in q.modules() if ".quantized." in type(m).__module__})

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return q(xt)

    info = {"method": "torch.ao.quantization.quantize_fx, qconfig x86, calibrated on "
                      f"{export.CALIBRATION_INPUTS} seeded inputs", "quantised_module_types": quantised}
    return Runner(run, lambda: torch_outputs(run()), time.perf_counter() - t0, info)


def _torch_quantised(model: torch.nn.Module, xt: torch.Tensor, req: Request) -> Runner:
    try:
        return _torch_int8(model, xt, req)
    except Exception as exc:  # noqa: BLE001 - FX cannot trace every model: a failure record, not a crash
        raise export.ExportError(export.oneline(exc), stage="quantise") from None


def _model_file(req: Request, model: torch.nn.Module, xt: torch.Tensor, result: dict) -> str:
    """The file the runtime loads (exported/quantised on a cache miss); its provenance in ``result``."""
    try:
        result["export"] = export.onnx_fp32(req, model, xt)
    except export.ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - any exporter failure is the model's, reported in one line
        raise export.ExportError(export.oneline(exc)) from None
    fp32 = result["export"]["path"]
    result["export"]["path"] = paths.cache_shown(fp32)
    if req.precision != "int8":
        return fp32
    try:
        q = export.ort_int8(req, fp32) if req.runtime == "onnxruntime" else export.ov_int8(req, fp32)
    except Exception as exc:  # noqa: BLE001
        raise export.ExportError(export.oneline(exc), stage="quantise") from None
    result["quantisation"] = {**q, "path": paths.cache_shown(q["path"])}
    return q["path"]


def _runner(req: Request, path: str, x: np.ndarray, threads: int) -> Runner:
    try:
        if req.runtime == "onnxruntime":
            return _ort(path, x, threads)[0]
        return _ov(path, x, threads, req.precision)[0]
    except Exception as exc:  # noqa: BLE001 - a graph the runtime cannot compile: a failure record
        raise export.ExportError(export.oneline(exc), stage="compile") from None


def measure(req: Request, loop: Callable[[Callable[[], object], str], timing.Measurement]) -> tuple[list[dict], dict]:
    """Every repeat's timing dict (``loop(fn, desc)`` runs the protocol) and the result's
    runtime fields: compile time, precision executed, agreement, per-node profile."""
    threads = req.threads or torch.get_num_threads()
    model = export.build_seeded(req)
    xt = inputs.make(req.input, "cpu")
    x = xt.numpy()
    with torch.inference_mode():
        reference = torch_outputs(model(xt))
    result: dict = {"runtime": {"name": req.runtime, "version": version(req.runtime), "threads": threads}}
    path = None if req.runtime == "torch" else _model_file(req, model, xt, result)
    runs: list[dict] = []
    runner = None
    for k in range(max(1, req.repeats)):
        runner = _torch_quantised(model, xt, req) if path is None else _runner(req, path, x, threads)
        desc = f"{req.model} {req.input.tag} {req.mode}" + (f" repeat {k + 1}/{req.repeats}" if req.repeats > 1 else "")
        m = loop(runner.fn, desc)
        m.extra["compile_s"] = runner.compile_s
        runs.append(m.to_dict())
    assert runner is not None
    result["runtime"].update(runner.info, compile_s=[r["compile_s"] for r in runs])
    result["agreement"] = agreement(reference, runner.outputs(), req.precision)
    del runner
    if path is not None:
        result["per_node"] = per_node(req, path, x, threads, model)
        result["runtime"]["executed_precision"] = result["per_node"].pop("executed_precision")
    else:
        result["runtime"]["executed_precision"] = "int8 (quantised modules: " + \
            ", ".join(result["runtime"]["quantised_module_types"]) + ")"
    return runs, result


def version(runtime: str) -> str:
    if runtime == "torch":
        return torch.__version__
    mod = __import__(runtime)
    return getattr(mod, "__version__", None) or mod.get_version()


def per_node(req: Request, path: str, x: np.ndarray, threads: int, model: torch.nn.Module) -> dict:
    """Per-node times (mean of ``PROFILE_ITERS`` inferences on a profiling session),
    summed per unit where the exported node names carry the module path."""
    if req.runtime == "onnxruntime":
        nodes = _ort_nodes(path, x, threads)
    else:
        nodes = _ov_nodes(path, x, threads, req.precision)
    kinds = Counter(n["precision"] for n in nodes if n["precision"] and n["heavy"])
    executed = ", ".join(f"{p} x{c}" for p, c in kinds.most_common()) or "unknown"
    units = registry.units_for(req, model)
    per_unit: dict[str, float] = {u.label: 0.0 for u in units}
    outside = 0.0
    for n in nodes:
        segs = n["name"].split("/")[1:-1]
        hit = next((u.label for u in units if u.path and u.path in segs), None)
        if hit is None:
            outside += n["ms"]
        else:
            per_unit[hit] += n["ms"]
    named = any(len(n["name"].split("/")) > 2 for n in nodes)
    return {"iters": PROFILE_ITERS, "node_count": len(nodes), "sum_ms": sum(n["ms"] for n in nodes),
            "executed_precision": f"{executed} (compute nodes by the precision they ran in)",
            "units": [{"label": k, "ms": v} for k, v in per_unit.items()] if named else None,
            "outside_units_ms": outside if named else None,
            "mapping": "node names carry the module path (TorchScript exporter)" if named else
            "not mapped: the node names carry no module path (dynamo exporter)",
            "top_nodes": sorted(nodes, key=lambda n: -n["ms"])[:15]}


def _ort_nodes(path: str, x: np.ndarray, threads: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bp-ort-prof-") as tmp:
        runner, sess = _ort(path, x, threads, str(Path(tmp) / "ort"))
        for _ in range(PROFILE_ITERS):
            runner.fn()
        events = json.loads(Path(sess.end_profiling()).read_text())
    acc: dict[str, dict] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name", "")
            n = acc.setdefault(e["name"][:-len("_kernel_time")], {"op": op, "us": 0.0})
            n["us"] += e["dur"]
    heavy = ("Conv", "FusedConv", "QLinearConv", "Gemm", "MatMul", "QLinearMatMul", "ConvInteger", "QGemm")
    return [{"name": k, "type": v["op"], "ms": v["us"] / 1e3 / PROFILE_ITERS, "heavy": v["op"] in heavy,
             "precision": "int8" if v["op"] in QUANT_OPS else "fp32"} for k, v in acc.items()]


def _ov_nodes(path: str, x: np.ndarray, threads: int, precision: str) -> list[dict]:
    runner, request = _ov(path, x, threads, precision, perf_count=True)
    acc: dict[str, dict] = {}
    for _ in range(PROFILE_ITERS):
        runner.fn()
        for p in request.get_profiling_info():
            n = acc.setdefault(p.node_name, {"type": p.node_type, "exec": p.exec_type, "s": 0.0})
            n["s"] += p.real_time.total_seconds()
    heavy = ("Convolution", "GroupConvolution", "MatMul", "FullyConnected")
    return [{"name": k, "type": v["type"], "exec": v["exec"], "ms": v["s"] * 1e3 / PROFILE_ITERS,
             "heavy": v["type"] in heavy, "precision": _ov_precision(v["exec"])} for k, v in acc.items()]


def _ov_precision(exec_type: str) -> str | None:
    """'brgconv_avx512_amx_I8' -> 'int8'; 'jit_avx512_f32' -> 'fp32' (OpenVINO names its kernels so)."""
    tail = exec_type.lower().rsplit("_", 1)[-1]
    return {"i8": "int8", "u8": "int8", "bf16": "bf16", "f32": "fp32", "f16": "fp16"}.get(tail)
