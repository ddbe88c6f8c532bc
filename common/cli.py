"""The one argparse definition shared by every entry point, and the two commands:
``timer`` (whole-model / per-unit latency) and ``mem`` (memory report, structure)."""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from typing import Callable
from pathlib import Path

import torch

from common import env as envmod
from common import inputs, registry, records
from common.measure import execution, layerbench, layerwise, memory, peak, structure, timing, training
from common.render import txt as report
from common.argtypes import non_negative, positive
from common.errors import OutOfMemory, UserError
from common.spec import CLOCKS, COMPILE_MODES, PRECISIONS, RunSpec


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + line
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _device_options(p: argparse.ArgumentParser, outputs: str) -> None:
    p.add_argument("--device", default="auto", metavar="DEV",
                   help="auto | cpu | cuda | cuda:N; auto picks the GPU when present (default: auto)")
    p.add_argument("--threads", type=positive(int), metavar="N",
                   help="CPU threads for PyTorch (default: PyTorch's choice, recorded)")
    p.add_argument("--tag", metavar="NAME", help="device folder name (default: derived from the device)")
    p.add_argument("--out-dir", type=Path, default=records.ROOT, metavar="DIR",
                   help=f"root for {outputs} and results/ outputs (default: the repository)")


def _loop_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warmup", type=non_negative, default=25, metavar="N",
                   help="warm-up iterations on the timed instance (default: 25, the seeds' protocol)")
    p.add_argument("--iters", type=positive(int), default=300, metavar="N",
                   help="timed iterations (default: 300, the seeds' protocol)")
    p.add_argument("--max-seconds", type=positive(float), metavar="S",
                   help="stop the timed loop after S seconds once --min-iters ran (default: no limit)")
    p.add_argument("--min-iters", type=positive(int), default=timing.MIN_ITERS, metavar="N",
                   help=f"fewest iterations with --max-seconds (default: {timing.MIN_ITERS})")
    p.add_argument("--clock", choices=CLOCKS, metavar="CLOCK",
                   help="cuda-event | perf_counter (default: cuda-event on a GPU, perf_counter on the CPU)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", metavar="P",
                   help="fp32 (IEEE, TF32 off) | tf32 | fp16 | bf16 (autocast) (default: fp32)")


def build_parser(tool: str, family: str | None) -> argparse.ArgumentParser:
    names = registry.family_models(family) if family else list(registry.REGISTRY)
    p = _Parser(prog=f"{family + '_profiler/' if family else ''}{tool}.py",
                description="Whole-model and per-unit latency, inference or training step." if tool == "timer"
                else "Memory report (static, peak, MACs/FLOPs, feature memory) or model structure.")
    p.add_argument("--model", required=True, choices=names, metavar="NAME",
                   help=f"backbone to profile: {', '.join(names)}")
    p.add_argument("--input", default="cityscapes", choices=list(inputs.PRESETS), metavar="PRESET",
                   help="input preset: cityscapes 1x3x1024x2048, pascal 1x3x500x334, imagenet 1x3x224x224 "
                        "(default: cityscapes)")
    p.add_argument("--size", metavar="HxW", help="custom input height x width; overrides --input")
    p.add_argument("--batch", type=positive(int), default=1, metavar="N", help="batch size (default: 1)")
    _device_options(p, "<family>_profiler/")
    if tool == "timer":
        p.add_argument("--pass", dest="pass_", choices=("infer", "train"), default="infer", metavar="PASS",
                       help="infer: inference latency; train: forward, backward and total of a training "
                            "step (cross-entropy loss), with inference beside it (default: infer)")
        p.add_argument("--with-optimizer", action="store_true",
                       help=f"with --pass train: also time an SGD step (lr {training.SGD_LR}, momentum "
                            f"{training.SGD_MOMENTUM}) as its own column (default: off, parameters untouched)")
        p.add_argument("--layers", action="store_true", help="time every unit (layer/block) with hooks")
        p.add_argument("--depth", type=int, default=1, choices=(1, 2), metavar="D",
                       help="per-unit granularity: 1 top-level units, 2 also ResNet blocks (default: 1)")
        _loop_options(p)
        p.add_argument("--channels-last", action="store_true", help="NHWC memory format for model and input")
        p.add_argument("--cudnn-benchmark", action="store_true",
                       help="let cuDNN autotune its algorithms (default: off, PyTorch's default)")
        p.add_argument("--cuda-graph", action="store_true", help="capture once after warm-up, time replays")
        p.add_argument("--mode", choices=("as-given", "fastest"), default="as-given", metavar="MODE",
                       help="as-given: the flags above; fastest: try every supported precision / "
                            "memory format / graph / compile combination briefly, then measure the best "
                            "(default: as-given)")
        p.add_argument("--search-compile", action=argparse.BooleanOptionalAction, default=True,
                       help="with --mode fastest: include the torch.compile(max-autotune) candidate, "
                            "which takes minutes to compile (default: on)")
        p.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE",
                       help="torch.compile with MODE: default | reduce-overhead | max-autotune "
                            "(compile time reported apart)")
    else:
        p.add_argument("--struct", action="store_true",
                       help="write the model-structure table instead of the memory report")
        p.add_argument("--depth", type=positive(int), default=3, metavar="D",
                       help="structure table depth (default: 3)")
    return p


def _spec(args: argparse.Namespace, device: torch.device) -> RunSpec:
    entry = registry.get(args.model)
    inp = inputs.resolve(args.input, args.size, args.batch)
    inputs.check_fits(inp, entry.min_side, args.model)
    is_timer = hasattr(args, "iters")
    spec = RunSpec(
        model=args.model, input=inp, device=str(device),
        clock=(args.clock or ("cuda-event" if device.type == "cuda" else "perf_counter")) if is_timer else "none",
        warmup=getattr(args, "warmup", 0), iters=getattr(args, "iters", 1),
        max_seconds=getattr(args, "max_seconds", None), min_iters=getattr(args, "min_iters", timing.MIN_ITERS),
        precision=getattr(args, "precision", "fp32"), channels_last=getattr(args, "channels_last", False),
        cudnn_benchmark=getattr(args, "cudnn_benchmark", False), cuda_graph=getattr(args, "cuda_graph", False),
        compile=getattr(args, "compile", None), depth=args.depth if is_timer else 1,
    )
    if is_timer:
        execution.check_supported(spec)
        if args.layers and (spec.cuda_graph or spec.compile):
            raise UserError("--layers times eager execution with hooks; drop --cuda-graph/--compile")
        if args.pass_ == "train" and (spec.cuda_graph or spec.compile or args.mode == "fastest"):
            raise UserError("--pass train times eager training steps; drop --cuda-graph/--compile/--mode fastest")
        if args.with_optimizer and args.pass_ != "train":
            raise UserError("--with-optimizer needs --pass train")
    return spec


def _stem(spec: RunSpec, suffix: str = "") -> str:
    return "_".join(p for p in (spec.model, spec.input.tag, spec.variant, suffix) if p)


@dataclass(frozen=True)
class _Run:
    """Where one timer run writes, proven writable before anything is measured."""

    device: torch.device
    spec: RunSpec
    env: dict
    tag: str
    folder: Path
    rec_dir: Path
    kind: str


def _prepare_run(args: argparse.Namespace) -> _Run:
    device = envmod.resolve_device(args.device)
    spec = _spec(args, device)
    entry = registry.get(spec.model)
    env = envmod.collect(device)
    tag = args.tag or envmod.device_tag(env)
    base = args.out_dir / f"{entry.family}_profiler" / f"{spec.model}_stats" / tag
    folder = records.ensure_writable(base / "layers" if args.layers else base)
    kind = ("train-" if args.pass_ == "train" else "") + ("layers" if args.layers else "timing")
    rec_dir = records.ensure_writable(records.record_dir(args.out_dir / "results", tag, kind))
    return _Run(device, spec, env, tag, folder, rec_dir, kind)


def run_timer(args: argparse.Namespace) -> list[Path]:
    run = _prepare_run(args)
    if args.pass_ == "train":
        return run_train(args, run)
    device, spec, env, tag, folder, rec_dir, rec_kind = (run.device, run.spec, run.env, run.tag, run.folder,
                                                         run.rec_dir, run.kind)
    result: dict = {}
    if args.mode == "fastest":
        spec, result["fastest"] = execution.search_fastest(spec, device, eager_only=args.layers,
                                                           with_compile=args.search_compile)
    # A search's record keeps its own name: it never replaces an as-given run of the mode it picked.
    stem = _stem(spec, "_".join(p for p in ("fastest" if args.mode == "fastest" else "",
                                            f"depth{spec.depth}" if args.layers and spec.depth > 1 else "") if p))
    rec_path = rec_dir / f"{stem}.json"

    model = registry.build(spec.model, device)
    x = inputs.make(spec.input, device)
    with torch.inference_mode(), execution.backend_flags(spec) as flags:
        prepared = execution.prepare(model, x, spec)
        m = timing.run_loop(prepared.fn, timing.make_clock(spec.clock, device), spec.warmup, spec.iters,
                            batch=spec.input.batch, max_seconds=spec.max_seconds, min_iters=spec.min_iters,
                            desc=f"{spec.model} {spec.input.tag}")
        result.update(backend_flags=flags, timing=m.to_dict(), setup=prepared.setup)
        if args.layers:
            unit_list = registry.units(spec.model, prepared.model, spec.depth)
            profiles, spans = layerwise.profile_units(
                prepared.model, prepared.fn, unit_list, device, spec.warmup, spec.iters,
                deadline=timing.deadline(spec.max_seconds, spec.min_iters))
            result["units"] = [p.to_dict(spec.input.batch) for p in profiles]
            span_stats = timing.summarize(spans, spec.input.batch).to_dict()
            result["hooked_span"] = {"stats": span_stats, "samples_ms": spans}
            unit_sum = sum(u["stats"]["mean_ms"] for u in result["units"])
            result["coverage"] = unit_sum / result["timing"]["stats"]["mean_ms"]
    cost = _cost(spec, with_units=args.layers)
    result["cost"] = cost.to_dict()
    result["gflops"] = cost.flops * 1e-9
    med = result["timing"]["stats"]["median_ms"]
    result["achieved_tflops"] = cost.flops / (med * 1e-3) / 1e12
    peaks = peak.load(tag, args.out_dir / "results")
    if peaks:
        result["device_peak"] = {"matmul_tflops": peaks["matmul_tflops"].get(spec.precision),
                                 "copy_gbs": peaks["copy_gbs"], "measured": peaks["env"]["date"]}
        result["fraction_of_peak"] = peak.fraction(peaks, spec.precision, result["achieved_tflops"])
    for cand in result.get("fastest", {}).get("candidates", []):
        if "median_ms" in cand:
            cand["achieved_tflops"] = cost.flops / (cand["median_ms"] * 1e-3) / 1e12
            cand["fraction_of_peak"] = peak.fraction(peaks, cand["precision"], cand["achieved_tflops"]) \
                if peaks else None
    if args.layers:
        _add_roofline(result, spec, peaks)
    rec = records.make_record(rec_kind, spec.to_dict(), env, result)
    text = report.layers_txt(rec) if args.layers else report.timing_txt(rec)
    out = folder / f"{stem}.txt"
    records.write_atomic(out, text)
    records.write_record(rec_path, rec)
    return [out, rec_path]


def run_train(args: argparse.Namespace, run: _Run) -> list[Path]:
    """Training steps phase by phase (and per unit with --layers), then inference
    on the same instance; peak memory of each beside the whole-model timings."""
    spec, device = run.spec, run.device
    stem = _stem(spec, "train" + ("-sgd" if args.with_optimizer else "")
                 + (f"_depth{spec.depth}" if args.layers and spec.depth > 1 else ""))
    model = registry.build(spec.model, device)
    x = inputs.make(spec.input, device)
    units = registry.units(spec.model, model, spec.depth) if args.layers else None
    result: dict = {"with_optimizer": args.with_optimizer, "loss": "cross-entropy on seeded random class targets",
                    "optimizer": f"SGD(lr={training.SGD_LR}, momentum={training.SGD_MOMENTUM})"
                    if args.with_optimizer else None}
    with execution.backend_flags(spec) as flags:
        got, profiles, step = training.profile_train(
            model, x, spec, args.with_optimizer, units)
        result["train"] = {phase: m.to_dict() for phase, m in got.items()}
        gpu_peaks = device.type == "cuda" and not args.layers  # the CPU's come from fresh processes, below
        if gpu_peaks:
            result["train_peak"] = memory.gpu_peak(step.run, device, key="train_step", settle=step.zero_grad,
                                                   what="training step (gradients cleared before it)")
        model.eval()
        with torch.inference_mode():
            prepared = execution.prepare(model, x, spec)
            m = timing.run_loop(prepared.fn, timing.make_clock(spec.clock, device), spec.warmup, spec.iters,
                                batch=spec.input.batch, max_seconds=spec.max_seconds, min_iters=spec.min_iters,
                                desc=f"{spec.model} {spec.input.tag} inference")
            if gpu_peaks:
                result["inference_peak"] = memory.gpu_peak(prepared.fn, device)
        result.update(backend_flags=flags, inference=m.to_dict())
    del model, x, step, prepared
    if device.type == "cpu" and not args.layers:
        h, w, b, th = spec.input.height, spec.input.width, spec.input.batch, torch.get_num_threads()
        result["train_peak"] = memory.cpu_peak(spec.model, h, w, b, th, train=True)
        result["inference_peak"] = memory.cpu_peak(spec.model, h, w, b, th)
    meta_model = registry.build(spec.model, "meta")
    meta_step = training.model_step(meta_model, torch.empty(spec.input.shape, device="meta"), spec, False)
    fwd_flops, bwd_flops = structure.step_flops(meta_step.forward, meta_step.backward)
    result["flops"] = {"forward": fwd_flops, "backward": bwd_flops}
    for phase, flops in (("forward", fwd_flops), ("backward", bwd_flops), ("total", fwd_flops + bwd_flops)):
        result["train"][phase]["achieved_tflops"] = flops / (result["train"][phase]["stats"]["median_ms"] * 1e-3) / 1e12
    if profiles:
        result["units"] = [p.to_dict(spec.input.batch) for p in profiles]
        for phase in ("forward", "backward"):
            unit_sum = sum((u["backward"] if phase == "backward" else u)["stats"]["mean_ms"] for u in result["units"])
            result.setdefault("coverage", {})[phase] = unit_sum / result["train"][phase]["stats"]["mean_ms"]
    rec = records.make_record(run.kind, spec.to_dict(), run.env, result)
    out = run.folder / f"{stem}.txt"
    rec_path = run.rec_dir / f"{stem}.json"
    records.write_atomic(out, report.train_txt(rec))
    records.write_record(rec_path, rec)
    return [out, rec_path]


def _add_roofline(result: dict, spec: RunSpec, peaks: dict | None) -> None:
    """Per unit: FLOPs, bytes moved (input + weights + output, each once, at the
    run's activation width), intensity, and which roof bounds it."""
    width = 2 if spec.precision in ("fp16", "bf16") else 4
    costs = {c["label"]: c for c in result["cost"]["units"]}
    for u in result["units"]:
        c = costs[u["label"]]
        shapes = [u["in_shape"], u["out_shape"] or c["out_shape"]]
        if None in shapes:
            continue  # a functional unit between hooks: no shapes seen
        elements = sum(math.prod(s) for s in shapes) + c["params"]
        u["roofline"] = peak.roofline(c["flops"], elements * width, u["stats"]["median_ms"], peaks, spec.precision)


def _cost(spec: RunSpec, with_units: bool) -> structure.Cost:
    """Costs from a pass on the meta device: no memory, no compute."""
    meta_model = registry.build(spec.model, "meta")
    x = torch.empty(spec.input.shape, device="meta")
    units = registry.units(spec.model, meta_model, spec.depth) if with_units else None
    return structure.analyze(meta_model, x, units)


def run_mem(args: argparse.Namespace) -> list[Path]:
    device = torch.device("cpu") if args.struct else envmod.resolve_device(args.device)
    spec = _spec(args, device)
    entry = registry.get(spec.model)
    env = envmod.collect(device)
    fam = args.out_dir / f"{entry.family}_profiler"
    if args.struct:
        tag = "any"  # the structure does not depend on the device
        folder = records.ensure_writable(fam / "model_structures")
    else:
        tag = args.tag or envmod.device_tag(env)
        folder = records.ensure_writable(fam / "memory_reports" / tag)
    kind = "structure" if args.struct else "memory"
    stem = _stem(spec)
    rec_path = records.record_path(args.out_dir / "results", tag, kind, stem)
    records.ensure_writable(rec_path.parent)

    if args.struct:
        rec = records.make_record(kind, spec.to_dict(), env, _structure(spec, args.depth))
        text = report.structure_txt(rec)
    else:
        result = _memory(spec, device, args.threads or torch.get_num_threads())
        rec = records.make_record(kind, spec.to_dict(), env, result)
        text = report.memory_txt(rec)
    out = folder / f"{stem}.txt"
    records.write_atomic(out, text)
    records.write_record(rec_path, rec)
    return [out, rec_path]


def _memory(spec: RunSpec, device: torch.device, threads: int) -> dict:
    model = registry.build(spec.model, device)
    x = inputs.make(spec.input, device)
    result: dict = {"static": memory.static_report(model, x)}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        alloc = torch.cuda.memory_allocated(device) / memory.MIB
        result["allocator_mib"] = alloc
        result["static_vs_allocator"] = result["static"]["static_mib"] / alloc - 1
        with torch.inference_mode(), execution.backend_flags(spec) as flags:
            result["backend_flags"] = flags
            result["peak"] = memory.gpu_peak(lambda: model(x), device)
    else:
        del model, x
        h, w, b = spec.input.height, spec.input.width, spec.input.batch
        result["peak"] = memory.cpu_peak(spec.model, h, w, b, threads)
    result["cost"] = _cost(spec, with_units=True).to_dict()
    return result


def _structure(spec: RunSpec, depth: int) -> dict:
    model = registry.build(spec.model, "cpu")
    rows = structure.torchinfo_rows(model, inputs.make(spec.input, "cpu"), depth)
    # MACs per row from our FLOP counter, one meta pass per depth level (the rows of
    # one level never nest, so each pass attributes every op to at most one row).
    meta_model = registry.build(spec.model, "meta")
    meta_x = torch.empty(spec.input.shape, device="meta")
    for level in range(1, depth + 1):
        level_rows = [r for r in rows if r["depth"] == level]
        level_units = [registry.Unit(r["path"], r["path"]) for r in level_rows]
        for r, u in zip(level_rows, structure.analyze(meta_model, meta_x, level_units).units):
            r["macs"] = u.macs
    total = structure.analyze(meta_model, meta_x)
    return {"rows": rows, "params": structure.param_count(model), "macs": total.macs, "flops": total.flops,
            "cost": total.to_dict(), "depth": depth}


def build_layer_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="layer_profiler/timer.py",
                description="Single-layer benchmarks (seed 004): forward, backward, total, achieved rates.")
    p.add_argument("--set", dest="layer_set", default="seed004", choices=list(layerbench.SETS), metavar="SET",
                   help="seed004: seed 004's shapes (3->64 channels, one 224x224 image, Dense 1024->512); "
                        "large: batch 8, 64->64 channels, Dense 4096->4096 at batch 256 (default: seed004)")
    _device_options(p, "layer_profiler/")
    _loop_options(p)
    return p


def run_layers(args: argparse.Namespace) -> list[Path]:
    device = envmod.resolve_device(args.device)
    clock = args.clock or ("cuda-event" if device.type == "cuda" else "perf_counter")
    probe = RunSpec(model="layers", input=inputs.resolve("imagenet", None), device=str(device), clock=clock,
                    precision=args.precision)
    execution.check_supported(probe)
    env = envmod.collect(device)
    tag = args.tag or envmod.device_tag(env)
    folder = records.ensure_writable(args.out_dir / "layer_profiler" / "layer_stats" / tag)
    stem = "_".join(p for p in (args.layer_set, probe.variant) if p)
    rec_path = records.record_path(args.out_dir / "results", tag, "layer-bench", stem)
    records.ensure_writable(rec_path.parent)
    with execution.backend_flags(probe) as flags:
        rows = layerbench.run_set(args.layer_set, device, args.precision, clock, args.warmup, args.iters,
                                  args.max_seconds, args.min_iters)
    spec = {"set": args.layer_set, "device": str(device), "precision": args.precision, "variant": probe.variant,
            "clock": clock, "warmup": args.warmup, "iters": args.iters, "max_seconds": args.max_seconds,
            "min_iters": args.min_iters}
    rec = records.make_record("layer-bench", spec, env, {"backend_flags": flags, "rows": rows})
    out = folder / f"{stem}.txt"
    records.write_atomic(out, report.layerbench_txt(rec))
    records.write_record(rec_path, rec)
    return [out, rec_path]


def _oom_message(spec_text: str, first_line: str, fits: int | None, tried: list[int]) -> str:
    hint = ""
    if tried:
        hint = (f"; batch {fits} fits" if fits else "; no smaller batch fits either") + \
               f" (tried {', '.join(map(str, tried))})"
    return f"out of memory at {spec_text}{hint}: {first_line[:200]}"


def _is_oom(exc: BaseException) -> bool:
    msg = str(exc)
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(exc, RuntimeError)
        and any(k in msg for k in ("out of memory", "can't allocate memory", "not enough memory")))


def largest_fitting_batch(batch: int, fits: Callable[[int], bool]) -> tuple[int | None, list[int]]:
    """Halve ``batch`` until ``fits(b)``; returns (the batch that fit or None, batches tried)."""
    tried = []
    b = batch // 2
    while b >= 1:
        tried.append(b)
        if fits(b):
            return b, tried
        b //= 2
    return None, tried


def _smaller_batch(args: argparse.Namespace) -> tuple[int | None, list[int]]:
    """After running out of memory: the largest halved batch that fits, searched
    only on a GPU, where running out is a clean error (on the CPU an allocation
    that nearly fits can summon the kernel's OOM killer)."""
    if not _searchable(args):
        return None, []
    torch.cuda.empty_cache()
    return largest_fitting_batch(args.batch, lambda b: _one_step_fits(args, b))


def _searchable(args: argparse.Namespace) -> bool:
    return envmod.resolve_device(args.device).type == "cuda"


def _one_step_fits(args: argparse.Namespace, batch: int) -> bool:
    """One inference (or training step) of the run at ``batch``: does it fit in memory?"""
    device = envmod.resolve_device(args.device)
    spec = replace(_spec(args, device), input=inputs.resolve(args.input, args.size, batch))
    try:
        model = registry.build(spec.model, device)
        x = inputs.make(spec.input, device)
        with execution.backend_flags(spec):
            if getattr(args, "pass_", "infer") == "train":
                training.model_step(model, x, spec, False).run()
            else:
                with torch.inference_mode(), execution.autocast(spec):
                    model(x)
        return True
    except Exception as exc:  # noqa: BLE001 - only memory errors mean "does not fit"
        if _is_oom(exc):
            return False
        raise
    finally:
        model = x = None
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _guarded(prog: str, what: str, threads: int | None, work: Callable[[], list[Path]],
             smaller: Callable[[], tuple[int | None, list[int]]] = lambda: (None, [])) -> int:
    """Run ``work``; every error a user can cause ends as one line on stderr and
    an exit code. ``smaller`` looks for a batch that fits after running out of memory."""
    oom = None
    try:
        if threads:
            torch.set_num_threads(threads)
        written = work()
    except UserError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return exc.exit_code
    except (RuntimeError, MemoryError) as exc:
        msg = str(exc)
        if not _is_oom(exc):
            if "too small" in msg or "can't be greater than actual input size" in msg:
                sys.stderr.write(f"{prog}: error: input too small for {what}: {msg.splitlines()[0][:200]}\n")
                return UserError.exit_code
            raise
        oom = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    except ValueError as exc:
        if "more than 1 value per channel" not in str(exc):
            raise
        sys.stderr.write(f"{prog}: error: input too small for a training step at {what}: batch norm "
                         "needs more than one value per channel; use a larger --batch or --size\n")
        return UserError.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted; no output was written for {what}\n")
        return 130
    if oom is not None:
        # Outside the handler, so the failed run's tensors are already freed.
        fits, tried = smaller()
        sys.stderr.write(f"{prog}: error: {_oom_message(what, oom, fits, tried)}\n")
        return OutOfMemory.exit_code
    for path in written:
        print(path)
    return 0


def main_layers(argv: list[str] | None = None) -> int:
    parser = build_layer_parser()
    args = parser.parse_args(argv)
    return _guarded(parser.prog, f"layer set {args.layer_set}", args.threads, lambda: run_layers(args))


def main(tool: str, family: str | None = None, argv: list[str] | None = None) -> int:
    parser = build_parser(tool, family)
    args = parser.parse_args(argv)
    what = f"{args.model} input {args.size or args.input} batch {args.batch}"
    if tool == "timer":
        return _guarded(parser.prog, what, args.threads, lambda: run_timer(args), lambda: _smaller_batch(args))
    return _guarded(parser.prog, what, args.threads, lambda: run_mem(args))


if __name__ == "__main__":  # python -m common.cli timer|mem ARGS: any registered model, its family's outputs
    if sys.argv[1:2] not in (["timer"], ["mem"]):
        sys.stderr.write("usage: python -m common.cli timer|mem --model NAME [options]\n")
        sys.exit(2)
    sys.exit(main(sys.argv[1], None, sys.argv[2:]))
