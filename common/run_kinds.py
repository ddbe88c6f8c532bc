"""The measuring functions of each request kind: build the model (``eval()``, random
weights) and a seeded input, measure, and return the record's result; derived
figures come from ``common.derive``. ``common.run.measure`` dispatches to them.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn
from tqdm import tqdm

from common import derive, inputs, registry, run_kernels
from common.measure import (clocks, execution, layerbench, layerwise, memory, repeats, runtimes, structure, timing,
                            training)
from common.run_session import Session
from common.spec import Request


def cost(req: Request, with_units: bool) -> structure.Cost:
    """Costs from a pass on the meta device: no memory, no compute."""
    meta_model = registry.build_for(req, "meta")
    x = torch.empty(req.input.shape, device="meta")
    units = registry.units_for(req, meta_model) if with_units else None
    return structure.analyze(meta_model, x, units)


def measure_timing(req: Request, session: Session, model: nn.Module | None = None) -> dict:
    """Whole-model latency, ``req.repeats`` times on fresh instances (or processes),
    GPU kernel time and busy fraction beside it, and, for 'layers', every unit's
    span and kernel time."""
    device = session.device
    result: dict = {}
    run_req = req
    if req.search == "fastest":
        run_req, result["fastest"] = execution.search_fastest(req, device, eager_only=req.per_unit,
                                                              with_compile=req.search_compile)
        model = None  # the picked mode is measured on a fresh instance
    if runtimes.handles(req):  # ONNX Runtime, OpenVINO, PyTorch int8: the same loop on the runtime's call
        runs, got = runtimes.measure(req, lambda fn, desc: timing.run_loop(
            fn, timing.make_clock(req.clock, device), req.warmup, req.iters, batch=req.input.batch,
            max_seconds=req.max_seconds, min_iters=req.min_iters, desc=desc, warmup_s=req.warmup_s))
        result.update(got)
        _finish_repeats(runs, result)
    elif req.fresh_process and req.repeats > 1 and not req.per_unit:
        _fresh_process_repeats(run_req, session, result)
    else:
        _in_process_repeats(req, run_req, session, model, result)
    c = cost(req, with_units=req.per_unit)
    result["cost"] = c.to_dict()
    result["gflops"] = c.flops * 1e-9
    result["achieved_tflops"] = derive.tflops(c.flops, result["timing"]["stats"]["median_ms"])
    _add_peak_share(result, session.peaks, run_req.precision)
    for cand in result.get("fastest", {}).get("candidates", []):
        if "median_ms" in cand:
            cand["achieved_tflops"] = derive.tflops(c.flops, cand["median_ms"])
            cand["fraction_of_peak"] = derive.fraction_of_peak(session.peaks, cand["precision"],
                                                               cand["achieved_tflops"])
    if req.per_unit:
        _add_roofline(result, run_req, session.peaks)
        result["functional_flags"] = derive.functional_flags(result["units"], result["cost"]["units"])
    return result


def _loop(req: Request, run_req: Request, prepared: execution.Prepared, device: torch.device,
          desc: str) -> timing.Measurement:
    probe = (lambda: clocks.snapshot(device)) if device.type == "cuda" else None
    return timing.run_loop(prepared.fn, timing.make_clock(run_req.clock, device), run_req.warmup, run_req.iters,
                           batch=req.input.batch, max_seconds=req.max_seconds, min_iters=req.min_iters,
                           desc=desc, warmup_s=req.warmup_s, probe=probe, cap_s=req.protocol.cap_s)


def _in_process_repeats(req: Request, run_req: Request, session: Session, model: nn.Module | None,
                        result: dict) -> None:
    """Every repeat on its own freshly built instance (the first may be the driver's);
    the per-unit profile and the kernel trace on the last one, after its loop (a
    driver's session takes the kernel trace later: ``add_kernels``)."""
    device = session.device
    runs: list[dict] = []
    got = None
    n = max(1, req.repeats)
    for k in range(n):
        inst = model if (k == 0 and model is not None) else registry.build_for(req, device)
        x = inputs.make(req.input, device)
        last = k == n - 1
        with torch.inference_mode(), execution.backend_flags(run_req) as flags:
            prepared = execution.prepare(inst, x, run_req)
            desc = f"{req.model} {req.input.tag}" + (f" repeat {k + 1}/{n}" if n > 1 else "")
            runs.append(_loop(req, run_req, prepared, device, desc).to_dict())
            if last:
                result.update(backend_flags=flags, setup=prepared.setup)
                unit_list = _per_unit(req, prepared, device, runs[-1], result) if req.per_unit else None
                if run_kernels.wanted(req, device) and not session.defer_kernels:
                    got = run_kernels.profile_prepared(prepared, device, unit_list)
        if not last:
            del inst, x, prepared
    _finish_repeats(runs, result)
    run_kernels.settle(req, device, session.defer_kernels, result, got)


def _fresh_process_repeats(run_req: Request, session: Session, result: dict) -> None:
    """Every repeat in a fresh process (``python -m common.run``), its record collected."""
    one = replace(run_req.with_protocol(repeats=1), kind="timing", fresh_process=False, search="as-given", depth=1)
    children = []
    for _ in tqdm(range(run_req.repeats), desc=f"{run_req.model} fresh-process repeats", leave=False):
        children.append(repeats.fresh_process_run(one.to_dict(), session.tag)["result"])
    runs = [c["timing"] for c in children]
    _finish_repeats(runs, result)
    result["repeats"]["fresh_process"] = True
    rep = children[result["repeats"]["representative"]]
    result.update(backend_flags=rep.get("backend_flags", {}), setup=rep.get("setup", {}))
    # Each child is a single run, its profile after its own loops: never deferred.
    for key in ("kernels", "kernel_profile"):
        if key in rep:
            result[key] = rep[key]
    run_kernels.busy(result)


def _finish_repeats(runs: list[dict], result: dict) -> None:
    """The representative repeat's samples are the record's timing."""
    rep = repeats.summarize(runs)
    result["timing"] = runs[rep["representative"]]
    result["repeats"] = {**rep, "fresh_process": False}


def _per_unit(req: Request, prepared: execution.Prepared, device: torch.device, whole: dict,
              result: dict) -> list:
    """Unit spans (event marks) and their coverage of the same instance's loop;
    returns the units (their kernel time is profiled by the caller)."""
    unit_list = registry.units_for(req, prepared.model)
    profiles, spans = layerwise.profile_units(
        prepared.model, prepared.fn, unit_list, device, req.warmup,
        min(req.iters, req.protocol.unit_iters or req.iters),  # the quick CPU protocol's hooked loop: 2
        deadline=timing.deadline(req.max_seconds, req.min_iters, cap_s=req.protocol.cap_s))
    result["units"] = [p.to_dict(req.input.batch) for p in profiles]
    result["hooked_span"] = {"stats": timing.summarize(spans, req.input.batch).to_dict(), "samples_ms": spans}
    result["coverage"] = derive.coverage([u["stats"]["mean_ms"] for u in result["units"]], whole["stats"]["mean_ms"])
    result["coverage_whole"] = {"mean_ms": whole["stats"]["mean_ms"], "iters": whole["iters"],
                                "what": "the last repeat's whole-model loop, same instance, before the hooks"}
    result["coverage_reliable"] = whole["iters"] >= layerwise.COVERAGE_MIN_SAMPLES
    result["coverage_min_samples"] = layerwise.COVERAGE_MIN_SAMPLES
    return unit_list


def _add_peak_share(result: dict, peaks: dict | None, precision: str) -> None:
    if peaks:
        result["device_peak"] = {"matmul_tflops": peaks["matmul_tflops"].get(precision),
                                 "copy_gbs": peaks["copy_gbs"], "measured": peaks.get("measured")}
        result["fraction_of_peak"] = derive.fraction_of_peak(peaks, precision, result["achieved_tflops"])


def _add_roofline(result: dict, req: Request, peaks: dict | None) -> None:
    """Per unit: FLOPs, bytes moved (input + weights + output, each once, at the
    run's activation width), intensity, and which roof bounds it."""
    width = 2 if req.precision in ("fp16", "bf16") else 4
    costs = {c["label"]: c for c in result["cost"]["units"]}
    for u in result["units"]:
        c = costs[u["label"]]
        shapes = [u["in_shape"], u["out_shape"] or c["out_shape"]]
        if None in shapes:
            continue  # a functional unit between hooks: no shapes seen
        elements = sum(math.prod(s) for s in shapes) + c["params"]
        u["roofline"] = derive.roofline(c["flops"], elements * width, u["stats"]["median_ms"], peaks, req.precision)


def measure_train(req: Request, session: Session) -> dict:
    """Training steps phase by phase (and per unit for 'train-layers'), then
    inference on the same instance; peak memory of each beside the timings."""
    device = session.device
    model = registry.build_for(req, device)
    x = inputs.make(req.input, device)
    unit_list = registry.units_for(req, model) if req.per_unit else None
    result: dict = {"with_optimizer": req.with_optimizer, "loss": "cross-entropy on seeded random class targets",
                    "optimizer": f"SGD(lr={training.SGD_LR}, momentum={training.SGD_MOMENTUM})"
                    if req.with_optimizer else None}
    gpu_peaks = device.type == "cuda" and not req.per_unit  # the CPU's come from fresh processes, below
    with execution.backend_flags(req) as flags:
        got, profiles, step = training.profile_train(model, x, req, unit_list)
        result["train"] = {phase: m.to_dict() for phase, m in got.items()}
        if gpu_peaks:
            result["train_peak"] = memory.gpu_peak(step.run, device, key="train_step", settle=step.zero_grad,
                                                   what="training step (gradients cleared before it)")
        model.eval()
        with torch.inference_mode():
            prepared = execution.prepare(model, x, req)
            m = timing.run_loop(prepared.fn, timing.make_clock(req.clock, device), req.warmup, req.iters,
                                batch=req.input.batch, max_seconds=req.max_seconds, min_iters=req.min_iters,
                                desc=f"{req.model} {req.input.tag} inference")
            if gpu_peaks:
                result["inference_peak"] = memory.gpu_peak(prepared.fn, device)
        result.update(backend_flags=flags, inference=m.to_dict())
    del model, x, step, prepared
    if device.type == "cpu" and not req.per_unit:
        result["train_peak"] = memory.cpu_peak(req, train=True)
        result["inference_peak"] = memory.cpu_peak(req)
    meta_model = registry.build_for(req, "meta")
    meta_step = training.model_step(meta_model, torch.empty(req.input.shape, device="meta"), req, False)
    fwd_flops, bwd_flops = structure.step_flops(meta_step.forward, meta_step.backward)
    result["flops"] = {"forward": fwd_flops, "backward": bwd_flops}
    for phase, flops in (("forward", fwd_flops), ("backward", bwd_flops), ("total", fwd_flops + bwd_flops)):
        result["train"][phase]["achieved_tflops"] = derive.tflops(flops, result["train"][phase]["stats"]["median_ms"])
    result["inference"]["achieved_tflops"] = derive.tflops(fwd_flops, result["inference"]["stats"]["median_ms"])
    if profiles:
        result["units"] = [p.to_dict(req.input.batch) for p in profiles]
        result["coverage"] = {
            phase: derive.coverage([(u["backward"] if phase == "backward" else u)["stats"]["mean_ms"]
                                    for u in result["units"]], result["train"][phase]["stats"]["mean_ms"])
            for phase in ("forward", "backward")}
    return result


def measure_memory(req: Request, session: Session) -> dict:
    """Static memory (memlab, corrected), peak of one inference, costs per unit."""
    device = session.device
    model = registry.build_for(req, device)
    x = inputs.make(req.input, device)
    result: dict = {"static": memory.static_report(model, x)}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        alloc = torch.cuda.memory_allocated(device) / memory.MIB
        result["allocator_mib"] = alloc
        result["static_vs_allocator"] = result["static"]["static_mib"] / alloc - 1
        with torch.inference_mode(), execution.backend_flags(req) as flags:
            prepared = execution.prepare(model, x, req)
            result["backend_flags"] = flags
            result["peak"] = memory.gpu_peak(prepared.fn, device)
    else:
        del model, x
        result["peak"] = memory.cpu_peak(req)
    result["cost"] = cost(req, with_units=True).to_dict()
    return result


def measure_structure(req: Request, session: Session) -> dict:
    """torchinfo rows down to ``req.depth`` with MACs per row from our counter; all
    on the meta device (shapes and counts need no values: no memory, no compute)."""
    meta_model = registry.build_for(req, "meta")
    meta_x = torch.empty(req.input.shape, device="meta")
    rows = structure.torchinfo_rows(meta_model, meta_x, req.depth)
    # One meta pass per depth level: the rows of one level never nest, so each pass
    # attributes every op to at most one row.
    for level in range(1, req.depth + 1):
        level_rows = [r for r in rows if r["depth"] == level]
        level_units = [registry.Unit(r["path"], r["path"]) for r in level_rows]
        for r, u in zip(level_rows, structure.analyze(meta_model, meta_x, level_units).units):
            r["macs"] = u.macs
    total = structure.analyze(meta_model, meta_x)
    return {"rows": rows, "params": structure.param_count(meta_model), "macs": total.macs, "flops": total.flops,
            "cost": total.to_dict(), "depth": req.depth}


def measure_layer_bench(req: Request, session: Session) -> dict:
    """Seed 004's single layers: forward, backward, total, achieved rates."""
    with execution.backend_flags(req) as flags:
        rows = layerbench.run_set(req.layer_set, session.device, req.precision, req.clock, req.warmup, req.iters,
                                  req.max_seconds, req.min_iters)
    return {"backend_flags": flags, "rows": rows}
