"""Execution modes: backend flags, precision, memory format, CUDA graphs, compile.

``prepare`` turns (model, input, req) into a zero-argument callable that runs one
inference exactly as the request asks; everything costly (compilation, graph capture)
happens inside ``prepare``, never inside the timed loop.
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

from common import inputs, paths, registry
from common.measure import failures, timing
from common.errors import UserError
from common.spec import Request

# Warm-up calls on a side stream before capturing a CUDA graph (cuDNN picks its
# algorithms and the allocator settles during these).
GRAPH_CAPTURE_WARMUP = 3
INDUCTOR_FREEZING = True
# Calls during compile setup: the first compiles; reduce-overhead / max-autotune
# record their CUDA graphs on the following ones.
COMPILE_CALLS = 3
# Inductor's persistent caches (FX graphs, generated kernels, autotuning results) under
# the project's cache folder, so that a later process compiles the same model in a
# fraction of the first time; the counters say whether this compile hit them.
COMPILE_CACHE = "inductor"
CACHE_COUNTERS = ("fxgraph_cache_hit", "fxgraph_cache_miss", "fxgraph_cache_bypass")


def check_supported(req: Request) -> None:
    """Reject modes this device or build cannot run, with the reason."""
    on_cpu = torch.device(req.device).type == "cpu"
    if req.precision == "int8" and req.kind != "timing":
        raise UserError("--precision int8 (post-training quantisation) times whole-model inference only")
    if on_cpu and req.precision == "tf32":
        raise UserError("precision tf32 is a CUDA matrix-unit mode; on the CPU use fp32, fp16 or bf16")
    if on_cpu and req.cuda_graph:
        raise UserError("--cuda-graph needs a CUDA device; this run is on the CPU")
    if on_cpu and req.cudnn_benchmark:
        raise UserError("--cudnn-benchmark needs a CUDA device; this run is on the CPU")
    if req.clock == "cuda-event" and on_cpu:
        raise UserError("--clock cuda-event needs a CUDA device; use perf_counter on the CPU")
    if not on_cpu and req.precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserError(f"bf16 is not supported on {torch.cuda.get_device_name(req.device)}")
    if req.compile and req.cuda_graph and req.compile != "default":
        raise UserError(f"--compile {req.compile} captures its own CUDA graphs; drop --cuda-graph "
                        "or use --compile default")
    if req.compile:
        try:
            importlib.import_module("torch._dynamo")
        except Exception as exc:  # pragma: no cover - depends on the build
            raise UserError(f"--compile is not available in this PyTorch build: {exc}") from None


@contextlib.contextmanager
def backend_flags(req: Request) -> Iterator[dict]:
    """Set cuDNN/matmul flags for the run, yield them as recorded, restore after."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    tf32 = req.precision == "tf32"
    cudnn.benchmark = req.cudnn_benchmark
    cudnn.allow_tf32 = tf32  # PyTorch defaults this to True: "fp32" would silently be TF32
    matmul.allow_tf32 = tf32
    try:
        yield current_flags()
    finally:
        cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved


def current_flags() -> dict:
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    return {
        "cudnn.enabled": cudnn.enabled,
        "cudnn.benchmark": cudnn.benchmark,
        "cudnn.deterministic": cudnn.deterministic,
        "cudnn.allow_tf32": cudnn.allow_tf32,
        "matmul.allow_tf32": matmul.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def autocast(req: Request) -> contextlib.AbstractContextManager:
    return autocast_for(req.precision, req.device)


def autocast_for(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """Autocast to fp16/bf16; a no-op context for fp32 and tf32."""
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


@dataclass
class Prepared:
    fn: Callable[[], torch.Tensor]
    model: nn.Module
    x: torch.Tensor
    setup: dict = field(default_factory=dict)  # compile / capture seconds


def prepare(model: nn.Module, x: torch.Tensor, req: Request) -> Prepared:
    """Call inside ``torch.inference_mode()`` and ``backend_flags(req)``."""
    if req.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    setup: dict = {}
    runner: Callable[[torch.Tensor], torch.Tensor] = model
    if req.compile:
        runner, setup = _compiled(model, x, req)

    def eager() -> torch.Tensor:
        with autocast(req):
            return runner(x)

    if not req.cuda_graph:
        return Prepared(eager, model, x, setup)

    t0 = time.perf_counter()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(GRAPH_CAPTURE_WARMUP):
            eager()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = eager()
    _sync(req)
    setup["graph_capture_s"] = time.perf_counter() - t0

    def replay() -> torch.Tensor:
        graph.replay()
        return out

    return Prepared(replay, model, x, setup)


def _compiled(model: nn.Module, x: torch.Tensor, req: Request) -> tuple[Callable, dict]:
    """``torch.compile(model, mode=req.compile)``, compiled by calling it (never in the
    timed loop); the setup as recorded: seconds, freezing, cache folder and hits."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(paths.cache_root() / COMPILE_CACHE))
    inductor = importlib.import_module("torch._inductor.config")
    counters = importlib.import_module("torch._dynamo.utils").counters["inductor"]
    before = {k: counters[k] for k in CACHE_COUNTERS}
    runner = torch.compile(model, mode=req.compile)
    t0 = time.perf_counter()
    # Freezing (inference only) lets Inductor treat weights as constants: it
    # folds batch norm into the convolutions, as a deployed model would.
    with inductor.patch(freezing=INDUCTOR_FREEZING), autocast(req):
        for _ in range(COMPILE_CALLS):
            runner(x)  # compiles (and records its own graphs); never in the timed loop
    _sync(req)
    return runner, {"compile_s": time.perf_counter() - t0, "inductor_freezing": INDUCTOR_FREEZING,
                    "compiled": f"torch.compile(mode={req.compile!r}), Inductor freezing "
                                f"{'on' if INDUCTOR_FREEZING else 'off'}, {COMPILE_CALLS} calls before timing",
                    "compile_cache": {"dir": paths.cache_shown(os.environ["TORCHINDUCTOR_CACHE_DIR"]),
                                      **{k: counters[k] - before[k] for k in CACHE_COUNTERS}}}


def _sync(req: Request) -> None:
    if torch.device(req.device).type == "cuda":
        torch.cuda.synchronize(req.device)


# Candidates of --mode fastest, as overrides of the request: the modes
# of the README's table (eager fp32 and TF32, bf16 channels-last, + CUDA graph,
# compiled) and their fp16 / cuDNN-autotuned neighbours. Eager ones first: they
# also serve --layers, which cannot hook a graph or compiled model. Compiled ones
# last, cheapest to compile first: reduce-overhead (Inductor's kernels + CUDA graphs)
# compiles in about a minute; max-autotune also benchmarks every GEMM/convolution
# choice (minutes for ResNet-50 at Cityscapes on an H100 with a cold cache), so it
# is tried once, in bf16 (fp16 differs from bf16 in batch norm's kernel, which
# Inductor's freezing folds away: results/kernels.md).
FASTEST_CANDIDATES: tuple[dict, ...] = (
    {"precision": "fp32"},
    {"precision": "tf32"},
    {"precision": "bf16", "channels_last": True},
    {"precision": "fp16", "channels_last": True},
    {"precision": "bf16", "channels_last": True, "cuda_graph": True},
    {"precision": "fp16", "channels_last": True, "cuda_graph": True},
    {"precision": "bf16", "channels_last": True, "cudnn_benchmark": True, "cuda_graph": True},
    {"precision": "bf16", "channels_last": True, "compile": "reduce-overhead"},
    {"precision": "fp16", "channels_last": True, "compile": "reduce-overhead"},
    {"precision": "bf16", "channels_last": True, "compile": "max-autotune"},
)
SEARCH_WARMUP, SEARCH_SECONDS = 5, 1.0  # a short look at each candidate
# On the CPU an iteration can take seconds (and an fp16 one, emulated where the chip has
# no fp16 matrix unit, ten times that): there the look is one warm-up call and no sample
# starts that would end past SEARCH_CPU_CAP_S (never below two samples).
SEARCH_CPU_WARMUP, SEARCH_CPU_CAP_S = 1, 4.0


def search_seconds(req: Request) -> float:
    """Timing per candidate: SEARCH_SECONDS, or less where the request bounds its own
    loops (``--max-seconds``): a user who bounds a run bounds its search too."""
    return min(SEARCH_SECONDS, req.max_seconds) if req.max_seconds else SEARCH_SECONDS


def search_fastest(req: Request, device: torch.device, eager_only: bool,
                   with_compile: bool = True) -> tuple[Request, dict]:
    """Time every supported candidate briefly on fresh model instances; return the
    request in the mode with the lowest median, and what was tried: each timed
    candidate with its raw samples, each skipped one with the reason (a mode the
    build or device cannot run, or "out of memory"). Any other error propagates.
    ``info["picked_mode"]`` holds the mode measured (see ``records.measured``)."""
    tried = []
    look_s = search_seconds(req)
    t_search = time.perf_counter()
    for overrides in FASTEST_CANDIDATES:
        cand = req.with_mode(overrides)
        row: dict = {"mode": cand.mode, "variant": cand.variant, "precision": cand.precision}
        tried.append(row)
        if eager_only and (cand.cuda_graph or cand.compile):
            row["skipped"] = "not with --layers (hooks need eager execution)"
            continue
        if cand.compile and not with_compile:
            row["skipped"] = "compile left out of this search (--no-search-compile)"
            continue
        try:
            check_supported(cand)
            model = registry.build_for(cand, device)
            x = inputs.make(cand.input, device)
            with torch.inference_mode(), backend_flags(cand):
                run = prepare(model, x, cand)
                clock = timing.make_clock(cand.clock, device)
                on_cpu = device.type == "cpu"
                m = timing.run_loop(run.fn, clock, SEARCH_CPU_WARMUP if on_cpu else SEARCH_WARMUP, cand.iters,
                                    max_seconds=look_s, min_iters=3, desc=f"search {cand.mode}",
                                    cap_s=SEARCH_CPU_CAP_S if on_cpu else None)
            row.update(median_ms=m.stats.median_ms, setup=run.setup, timing=m.to_dict())
        except Exception as exc:  # noqa: BLE001 - classified below; anything else propagates
            if failures.is_oom(exc):  # does not fit in this mode: recorded, the search goes on
                row.update(skipped="out of memory", out_of_memory=True, error=failures.first_line(exc))
            elif (reason := failures.unsupported_reason(exc)) is not None:  # a mode this build/device cannot run
                row["skipped"] = reason
            else:
                raise  # a bug, not a mode to skip
        finally:
            model = x = run = None  # free before the next candidate
            if device.type == "cuda":
                gc.collect()  # a failed capture or compile leaves reference cycles holding device memory
                torch.cuda.empty_cache()
    timed = [(r["median_ms"], i) for i, r in enumerate(tried) if "median_ms" in r]
    if not timed:
        raise UserError("--mode fastest: no candidate mode could run: " + "; ".join(r["skipped"] for r in tried))
    best = FASTEST_CANDIDATES[min(timed)[1]]
    picked = req.with_mode(best)
    return picked, {"candidates": tried, "picked": picked.mode, "search_s": time.perf_counter() - t_search,
                    "picked_mode": {**picked.mode_dict(), "variant": picked.variant, "mode": picked.mode},
                    "search": (f"{SEARCH_CPU_WARMUP} warm-up, then {look_s:g} s of timing per candidate (at least 3 "
                               f"samples, none starting that would end past {SEARCH_CPU_CAP_S:g} s, never below 2)"
                               if device.type == "cpu" else
                               f"{SEARCH_WARMUP} warm-up, then {look_s:g} s of timing per candidate")}
