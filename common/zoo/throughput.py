"""Throughput: images/s at the largest batch that fits, and at the user's batch,
in eager fp32 and in the fastest mode. A record of its own kind ("throughput"):
throughput is never a latency column.

The largest batch is searched upward from the user's batch by doubling while one
step fits (``common.measure.oom.one_step_fits``: one inference through
``execution.prepare``, so the mode's precision, memory format, graph and compile
apply), then by halving the interval between the last batch that fit and the
first that did not, until it is within 1/16 of the batch. On the CPU nothing is
run to find it (an allocation that nearly fits can summon the kernel's OOM
killer): a batch fits when the meta-device estimate of its footprint
(``common.guard``) fits the memory available. At the largest batch, the fastest
mode is also timed by ``torch.utils.benchmark`` (``blocked_autorange``) as a
cross-check of the project's loop.
"""
from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from common import guard, inputs, paths, records, registry
from common.errors import UserError
from common.measure import execution, failures, oom, timing
from common.spec import Request

# Largest batch tried (images). None on a GPU: doubling until a step runs out of
# memory (a cap of 1024, then 4096, was reached by every catalogue model on an H200,
# so the tables showed the cap). MAX_BATCH only ends a search that never runs out.
CAP: dict[str, int | None] = {"cuda": None, "cpu": 64}
MAX_BATCH = 1 << 17
BENCH_MIN_RUN_S = 1.0  # torch.utils.benchmark's blocked_autorange min_run_time
# A batch that fit for one inference can run out of memory when timed (the timed loop
# and the benchmark cross-check hold more, and the allocator fragments): as timm's
# benchmark does, the timing backs off by this fraction of the batch and tries again.
BACK_OFF = 1 / 8
KIND = "throughput"


def search_largest(start: int, fits: Callable[[int], bool], cap: int | None) -> tuple[int | None, list[int]]:
    """The largest batch ``b <= cap`` (``MAX_BATCH`` without a cap) with ``fits(b)``: doubling from ``start``, then
    halving the interval (last fit, first failure) until it is within 1/16 of the
    batch. When ``start`` does not fit, the halved batches below it (``oom``'s
    search). Returns (that batch or None, every batch tried in order)."""
    cap = cap or MAX_BATCH
    tried = [start]
    if not fits(start):
        found, below = oom.largest_fitting_batch(start, fits)
        return found, tried + below
    lo, hi = start, None
    b = start * 2
    while b <= cap:
        tried.append(b)
        if not fits(b):
            hi = b
            break
        lo, b = b, b * 2
    if hi is None:
        if lo < cap:  # the cap itself, between the last doubling and it
            tried.append(cap)
            if fits(cap):
                return cap, tried
            hi = cap
        else:
            return lo, tried
    while hi - lo > max(1, lo // 16):
        mid = (lo + hi) // 2
        tried.append(mid)
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo, tried


def _cpu_fits(req: Request) -> Callable[[int], bool]:
    def fits(b: int) -> bool:
        try:
            guard.check_cpu(req.with_batch(b))
        except UserError:
            return False
        return True

    return fits


def _gpu_fits(req: Request) -> Callable[[int], bool]:
    return lambda b: oom.one_step_fits(req, b)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def time_at(req: Request, batch: int, device: torch.device, bench: bool = False) -> dict:
    """Images/s of ``req``'s mode at ``batch``: the request's protocol (warm-up, iterations,
    --max-seconds), raw samples kept; with ``bench``, torch.utils.benchmark beside it."""
    req = req.with_batch(batch)
    model = registry.build_for(req, device)
    x = inputs.make(req.input, device)
    out: dict = {"batch": batch}
    try:
        with torch.inference_mode(), execution.backend_flags(req):
            prepared = execution.prepare(model, x, req)
            m = timing.run_loop(prepared.fn, timing.make_clock(req.clock, device), req.warmup, req.iters,
                                batch=batch, max_seconds=req.max_seconds, min_iters=req.min_iters,
                                desc=f"{req.model} {req.mode} batch {batch}")
            out["timing"] = m.to_dict()
            out["images_per_s"] = m.stats.fps
            out["setup"] = prepared.setup
            if bench:
                from torch.utils import benchmark

                # the same thread count as our loop (the Timer's default is one thread)
                t = benchmark.Timer(stmt="fn()", globals={"fn": prepared.fn}, num_threads=torch.get_num_threads())
                b = t.blocked_autorange(min_run_time=BENCH_MIN_RUN_S)
                ips = batch / b.median
                out["benchmark_check"] = {
                    "method": f"torch.utils.benchmark.Timer.blocked_autorange(min_run_time={BENCH_MIN_RUN_S:g}), "
                              "median per call, same thread count",
                    "median_ms": b.median * 1e3, "images_per_s": ips, "runs": len(b.times),
                    "relative_difference": (m.stats.fps - ips) / ips,
                    "against": "images/s from the mean of the project's loop"}
    finally:
        model = x = prepared = None  # noqa: F841 - freed before the next batch
        _free(device)
    return out


def measure_mode(req: Request, device: torch.device, name: str, cap: int, bench: bool) -> dict:
    fits = _gpu_fits(req) if device.type == "cuda" else _cpu_fits(req)
    largest, tried = search_largest(req.input.batch, fits, cap)
    _free(device)
    row: dict = {"name": name, "mode": {**req.mode_dict(), "variant": req.variant, "mode": req.mode},
                 "largest_batch": largest,
                 "search": {"tried": tried, "cap": cap, **({"ceiling": MAX_BATCH} if cap is None else {}),
                            "method": ("one inference per batch through execution.prepare (this mode)"
                                       if device.type == "cuda" else
                                       "meta-device footprint estimate against the memory available (common.guard)")}}
    if largest is None:
        row["error"] = "out of memory at every batch tried"
        return row
    row["at_user_batch"] = time_at(req, req.input.batch, device)
    row["at_largest"] = (row["at_user_batch"] if largest == req.input.batch and not bench
                         else time_backing_off(req, largest, device, bench))
    return row


def time_backing_off(req: Request, largest: int, device: torch.device, bench: bool) -> dict:
    """``time_at`` the largest batch; where timing it runs out of memory, at batches
    ``BACK_OFF`` smaller until one is timed (never below the request's batch). The
    batches that ran out of memory when timed are recorded."""
    batch, ran_out = largest, []
    while True:
        try:
            out = time_at(req, batch, device, bench=bench)
        except Exception as exc:  # noqa: BLE001 - only running out of memory backs off
            if not failures.is_oom(exc) or batch <= req.input.batch:
                raise
            ran_out.append(batch)
            _free(device)
            batch = max(req.input.batch, batch - max(1, int(batch * BACK_OFF)))
            continue
        if ran_out:
            out["backed_off"] = {"ran_out_of_memory_when_timed": ran_out, "step": BACK_OFF}
        return out


def measure(req: Request, device: torch.device, cap: int | None = None) -> dict:
    """The throughput record's result: eager fp32 and the fastest mode, each at
    its largest batch and at the request's batch."""
    cap = cap or CAP[device.type]
    cap = max(cap, req.input.batch) if cap else None
    eager = req.with_mode({"precision": "fp32"})
    modes = [measure_mode(eager, device, "eager fp32", cap, bench=False)]
    picked, info = execution.search_fastest(replace(req, kind="timing"), device, eager_only=False,
                                            with_compile=req.search_compile)
    picked = replace(picked, kind=KIND)
    modes.append(measure_mode(picked, device, "fastest", cap, bench=True))
    return {"user_batch": req.input.batch, "modes": modes,
            "fastest": {k: v for k, v in info.items()},
            "note": "images/s = 1000 / mean ms x batch; throughput and latency are separate measurements"}


def request_of(req: Request) -> Request:
    """A throughput request as recorded: the eager fp32 request (modes are in the result)."""
    return replace(req.with_mode({"precision": "fp32"}), kind=KIND, search="as-given")


def measure_and_save(req: Request, session: object, cap: int | None = None) -> list[Path]:
    """Measure, write the record and its .txt (``common.render.zoo`` renders it again)."""
    from common.render import throughput as render_tp

    req = request_of(req)
    records.ensure_writable(session.record_path(req).parent)  # type: ignore[attr-defined]
    result = measure(req, session.device, cap)  # type: ignore[attr-defined]
    rec = records.make_record(KIND, session.tag, req.to_dict(), session.env, result)  # type: ignore[attr-defined]
    rec["model"] = registry.metadata(req)
    path = session.record_path(req)  # type: ignore[attr-defined]
    current = {**rec, "_path": str(path)}
    txt = paths.inside(render_tp.throughput_txt_path(current, session.root), session.root,  # type: ignore[attr-defined]
                       ".txt path")

    def write_txt() -> None:  # with the record: both replaced or neither
        txt.parent.mkdir(parents=True, exist_ok=True)
        records.write_atomic(txt, render_tp.throughput_txt(current))

    where = records.write_record(path, rec, then=write_txt)
    return [txt, where] if where == path else [where]
