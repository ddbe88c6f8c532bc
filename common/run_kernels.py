"""GPU kernel profiles of timing and per-unit requests: when they are taken, and
how they are merged into a record.

A CUDA profiler pass (``torch.profiler`` with CUDA activity, i.e. CUPTI) leaves
CUPTI attached to the process: on an H200, launch-bound timed loops run later in
the same process were 10-32% slower than in a fresh process. So a profile never
precedes a timed loop of its process:

- a single run (one request per process) profiles right after its own timed
  loops, on the last repeat's instance (``kernels.WHEN_OWN_LOOPS``);
- a driver (many requests per process) sets ``Session.defer_kernels``: each
  record is saved with ``kernel_profile.status = "pending"`` and no kernel
  fields, and a final phase (``run.add_kernels``) re-builds each request's model
  in the mode measured, warms it up, profiles it and merges the kernel fields
  into the saved record (``kernels.WHEN_DEFERRED``);
- ``--no-kernels`` (``Request.kernels`` False) takes no profile at all, and the
  record says so (``kernel_profile.status = "not taken"``).

On a device without kernel profiling (the CPU) none of these fields is written.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from common import inputs, registry
from common.measure import execution, kernels
from common.spec import Request

PENDING = {"status": "pending",
           "note": "kernel profile deferred until every timed loop of this driver process has run"}
NOT_TAKEN = {"status": "not taken",
             "note": "--no-kernels: no kernel profile was taken (no kernel time, busy fraction or per-unit kernel time)"}


def wanted(req: Request, device: torch.device) -> bool:
    """Whether ``req``'s record gets a kernel profile: inference timing on a device
    that can profile kernels, unless --no-kernels."""
    return req.kernels and req.kind in ("timing", "layers") and kernels.supported(device)


def profile_prepared(prepared: execution.Prepared, device: torch.device, unit_list: list | None) -> dict:
    """Kernel profiles of a prepared (warm) instance: with units first (per-unit
    kernel time), then the whole model without hooks. Call inside the run's
    ``inference_mode`` and ``backend_flags``."""
    got: dict = {"units": None}
    if unit_list is not None:
        got["units"] = kernels.profile(prepared.fn, device, None, prepared.model, unit_list)
    got["whole"] = kernels.profile(prepared.fn, device, None)
    return got


def profile_fresh(req: Request, run_req: Request, device: torch.device) -> dict:
    """The deferred profile: ``req``'s model built anew and prepared in the mode
    measured (``run_req``: a fastest search's pick), warmed up as the timed run
    was (its warm-up count and minimum time; not a timed loop), then profiled."""
    model = registry.build_for(req, device)
    x = inputs.make(req.input, device)
    with torch.inference_mode(), execution.backend_flags(run_req):
        prepared = execution.prepare(model, x, run_req)
        warm(prepared.fn, req.warmup, req.warmup_s, device)
        unit_list = registry.units_for(req, prepared.model) if req.per_unit else None
        got = profile_prepared(prepared, device, unit_list)
    del model, x, prepared
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the next deferred request builds its own model
    return got


def warm(fn: Callable[[], object], iters: int, seconds: float, device: torch.device,
         now: Callable[[], float] = time.monotonic) -> int:
    """Call ``fn`` ``iters`` times and, with ``iters`` > 0, for at least ``seconds``
    (the timed run's warm-up rule), so the profiled kernels run at steady clocks.
    Returns the calls made."""
    t0, done = now(), 0
    while done < iters or (iters and now() - t0 < seconds):
        fn()
        done += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return done


def settle(req: Request, device: torch.device, deferred: bool, result: dict, got: dict | None) -> None:
    """After a request's timed loops (its repeats summarized): merge the profile
    taken right after them, or say that it is pending (a driver) or not taken."""
    if got is not None:
        merge(result, got, kernels.WHEN_OWN_LOOPS)
    elif wanted(req, device) and deferred:
        result["kernel_profile"] = dict(PENDING)
    elif req.kind in ("timing", "layers") and kernels.supported(device) and not req.kernels:
        result["kernel_profile"] = dict(NOT_TAKEN)


def merge(result: dict, got: dict, when: str) -> None:
    """Kernel fields of ``profile_prepared``'s output into a result: the whole
    model's kernel time and busy fraction, and with units each unit's kernel time,
    the hooked pass's totals and its coverage."""
    kt = got.get("units")
    if kt is not None:
        result["unit_kernels"] = {k: v for k, v in kt.items() if k != "units_ms"}
        for u in result["units"]:
            u["kernel_ms"] = (kt.get("units_ms") or {}).get(u["label"])
        result["kernel_coverage"] = kt.get("coverage")
    result["kernels"] = {**got["whole"], "when": when}
    result["kernel_profile"] = {"status": "taken", "when": when}
    busy(result)


def busy(result: dict) -> None:
    """Busy fraction = kernel time per iteration / the median of the repeats' medians."""
    k = result.get("kernels")
    if k and k.get("kernel_ms") is not None:
        k["busy"] = k["kernel_ms"] / result["repeats"]["median_of_medians_ms"]
        k["busy_against"] = "the median of the repeats' wall-time medians"
        k["launch_bound"] = k["busy"] < kernels.LAUNCH_BOUND_BUSY
