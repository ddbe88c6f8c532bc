"""GPU kernel time beside wall time: a few profiled iterations outside the timed loop.

``torch.profiler`` (CUDA activity, i.e. CUPTI) records every device activity
(kernels, memsets, memcpys) with its device start and duration, and the host-side
runtime/driver call that launched it (``cudaLaunchKernel``, ``cudaGraphLaunch``,
``cuLaunchKernel``...), linked by a correlation id. From that trace:

- **kernel time per iteration** = the length of the *union* of the device
  intervals launched during that iteration (kernels overlapping on several
  streams count once);
- **busy fraction** = median kernel time per iteration / wall-time median of the
  timed loop; below ``LAUNCH_BOUND_BUSY`` the GPU waits on the host (the run is
  *launch-bound*: a CUDA graph or torch.compile is the remedy);
- **per-unit kernel time**: the unit hooks push a ``record_function`` range at a
  unit's forward pre-hook and pop it at its post-hook; a kernel belongs to the unit
  whose host range contains its *launch* (not its execution, which the host does
  not wait for). A launch between two module units goes to the functional unit
  between them (``Unit.path is None``), else to nothing ("outside every unit").
  Per unit, the union of its kernels' intervals. Kernel coverage = sum of the
  units' kernel time / the iteration's kernel time: it does not depend on the
  host's speed, and is 1 up to kernels launched outside every unit.

The arithmetic works on plain trace events (``Chrome trace`` dicts: ``cat``,
``name``, ``ts``/``dur`` in microseconds, ``args.correlation``) so that it is
tested on a fake trace; ``profile`` makes the real one.
"""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from common.derive import LAUNCH_BOUND_BUSY  # noqa: F401 - re-exported; the renderer reads it there
from common.measure.timing import SAMPLE_DECIMALS

# Profiled iterations (after one unprofiled call): enough for a stable median,
# few enough that the trace stays small.
PROFILED_ITERS = 5
# The kernels a record names, by device time per iteration: enough to see which
# library kernels a mode runs (e.g. fp16 against bf16), few enough to keep records small.
TOP_KERNELS = 15
ITERATION = "backbone-profile:iteration"
UNIT_PREFIX = "backbone-profile:unit:"

DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "memcpy", "memset"}
LAUNCH_CATS = {"cuda_runtime", "cuda_driver", "runtime", "driver"}
ANNOTATION_CATS = {"user_annotation"}


@dataclass(frozen=True)
class Interval:
    start: float  # microseconds (trace clock)
    end: float


def union_us(intervals: Iterable[Interval]) -> float:
    """Length of the union of ``intervals`` (overlaps counted once)."""
    total, cur_s, cur_e = 0.0, None, None
    for iv in sorted(intervals, key=lambda i: i.start):
        if cur_e is None or iv.start > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = iv.start, iv.end
        else:
            cur_e = max(cur_e, iv.end)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


@dataclass(frozen=True)
class DeviceOp:
    """One device activity and the host moment its launch began."""

    name: str
    device: Interval
    launch: float | None  # host ts of the launching call; None: no correlated launch seen


def parse(events: list[dict]) -> tuple[list[DeviceOp], list[tuple[str, Interval]]]:
    """Device activities (with their launch times) and host annotation ranges of a trace."""
    launches: dict = {}
    ranges: list[tuple[str, Interval]] = []
    device: list[dict] = []
    for e in events:
        if e.get("ph") not in (None, "X") or "ts" not in e:
            continue
        cat = str(e.get("cat", "")).lower()
        if cat in DEVICE_CATS:
            device.append(e)
        elif cat in LAUNCH_CATS:
            corr = (e.get("args") or {}).get("correlation")
            if corr is not None:
                launches[corr] = float(e["ts"])
        elif cat in ANNOTATION_CATS:
            ranges.append((e["name"], Interval(float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)))))
    ops = [DeviceOp(e.get("name", "?"), Interval(float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0))),
                    launches.get((e.get("args") or {}).get("correlation")))
           for e in device]
    return ops, ranges


def _inside(t: float, iv: Interval) -> bool:
    return iv.start <= t <= iv.end


def attribute(ops: list[DeviceOp], ranges: list[tuple[str, Interval]], units: list[tuple[str, bool]]) -> dict:
    """Kernel time per iteration, and per unit when ``units`` is given.

    ``units``: (label, is_module) in execution order; a module unit's host range
    is the annotation ``UNIT_PREFIX + label`` inside the iteration; a functional
    unit (is_module False) takes the launches between its neighbours' ranges (or
    the iteration's start/end at either end). Returns, in ms:
    ``{"iterations": [kernel ms per iteration], "units": {label: [ms per iteration]},
    "outside_units": [ms per iteration], "unlaunched": count of device ops with no launch}``.
    """
    iters = sorted((iv for name, iv in ranges if name == ITERATION), key=lambda i: i.start)
    unit_ranges = [(name[len(UNIT_PREFIX):], iv) for name, iv in ranges if name.startswith(UNIT_PREFIX)]
    out: dict = {"iterations": [], "units": {label: [] for label, _ in units}, "outside_units": [],
                 "unlaunched": sum(op.launch is None for op in ops), "by_name": {}}
    for it in iters:
        mine = [op for op in ops if op.launch is not None and _inside(op.launch, it)]
        out["iterations"].append(union_us(op.device for op in mine) / 1e3)
        for op in mine:  # summed durations (not a union): what each kernel costs on its own
            ms_calls = out["by_name"].setdefault(op.name, [0.0, 0])
            ms_calls[0] += (op.device.end - op.device.start) / 1e3
            ms_calls[1] += 1
        if not units:
            continue
        inside = {label: iv for label, iv in unit_ranges if _inside(iv.start, it)}
        owner = _owners(units, inside, it)
        per_unit: dict[str, list[Interval]] = {label: [] for label, _ in units}
        outside: list[Interval] = []
        for op in mine:
            label = next((lab for lab, lo, hi in owner if lo <= op.launch <= hi), None)
            (per_unit[label] if label is not None else outside).append(op.device)
        for label, ivs in per_unit.items():
            out["units"][label].append(union_us(ivs) / 1e3)
        out["outside_units"].append(union_us(outside) / 1e3)
    return out


def _owners(units: list[tuple[str, bool]], inside: dict[str, Interval], it: Interval) -> list[tuple[str, float, float]]:
    """(label, from, to) host windows: module units their ranges; functional ones the gap
    between the neighbouring module units (the iteration's edges at either end)."""
    windows = []
    for i, (label, is_module) in enumerate(units):
        if is_module:
            if label in inside:
                windows.append((label, inside[label].start, inside[label].end))
            continue
        before = next((inside[lab].end for lab, mod in reversed(units[:i]) if mod and lab in inside), it.start)
        after = next((inside[lab].start for lab, mod in units[i + 1:] if mod and lab in inside), it.end)
        windows.append((label, before, after))
    return windows


def summary(attr: dict, wall_median_ms: float | None) -> dict:
    """Record fields from ``attribute``'s output: medians/means, busy fraction, coverage."""
    per_iter = [round(ms, SAMPLE_DECIMALS) for ms in attr["iterations"]]
    if not per_iter:
        return {"profiled_iters": 0, "kernel_ms": None, "busy": None, "launch_bound": None,
                "method": METHOD, "unlaunched_ops": attr["unlaunched"]}
    kernel_ms = statistics.median(per_iter)
    busy = kernel_ms / wall_median_ms if wall_median_ms else None
    out = {"profiled_iters": len(per_iter), "kernel_ms": kernel_ms, "kernel_ms_mean": statistics.fmean(per_iter),
           "samples_ms": per_iter, "busy": busy, "launch_bound": busy is not None and busy < LAUNCH_BOUND_BUSY,
           "launch_bound_below": LAUNCH_BOUND_BUSY, "unlaunched_ops": attr["unlaunched"], "method": METHOD}
    if attr.get("by_name"):
        n = len(per_iter)
        top = sorted(attr["by_name"].items(), key=lambda kv: -kv[1][0])[:TOP_KERNELS]
        out["top_kernels"] = [{"name": name, "ms_per_iter": round(ms / n, SAMPLE_DECIMALS), "calls_per_iter": calls / n}
                              for name, (ms, calls) in top]
        out["kernel_names_per_iter"] = sum(c for _, c in attr["by_name"].values()) / n
    if attr["units"]:
        units = {label: statistics.fmean(v) if v else 0.0 for label, v in attr["units"].items()}
        whole = statistics.fmean(per_iter)
        out["units_ms"] = units
        out["outside_units_ms"] = statistics.fmean(attr["outside_units"]) if attr["outside_units"] else 0.0
        out["coverage"] = sum(units.values()) / whole if whole > 0 else None
    return out


METHOD = (f"torch.profiler (CUDA activity), {PROFILED_ITERS} iterations after the timed loop; per iteration the "
          "union of the device intervals (kernels, memcpy, memset) launched in it")
# Where a record's kernel numbers came from (``kernels.when``). A CUDA profiler pass
# leaves CUPTI attached: launch-bound timed loops later in the same process ran
# 10-32% slower on an H200. So a profile never precedes a timed loop of its process:
# a single run profiles right after its own loops, a driver after all of its loops.
WHEN_OWN_LOOPS = "right after this request's timed loops, on its last repeat's instance (one request per process)"
WHEN_DEFERRED = "after every timed loop of the process, on a fresh instance"


def supported(device: torch.device) -> bool:
    """Whether kernel time can be profiled on ``device`` (CUDA activity: GPUs only);
    the one test of it, so that CPU tests can stand a fake profiler in."""
    return device.type == "cuda"


class UnitRanges:
    """Forward hooks that push ``UNIT_PREFIX + label`` at a unit's pre-hook and pop it at its post-hook."""

    def __init__(self, model: nn.Module, units: list) -> None:
        modules = dict(model.named_modules())
        self.handles = []
        for u in units:
            if u.path is None:
                continue
            m = modules[u.path]
            stack: list = []

            def pre(_m, _a, label=u.label, stack=stack):
                rf = torch.autograd.profiler.record_function(UNIT_PREFIX + label)
                rf.__enter__()
                stack.append(rf)

            def post(_m, _a, _o, stack=stack):
                if stack:
                    stack.pop().__exit__(None, None, None)

            self.handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def trace(fn: Callable[[], object], device: torch.device, iters: int = PROFILED_ITERS) -> list[dict]:
    """Chrome-trace events of ``iters`` calls of ``fn``, each inside an ``ITERATION`` range."""
    from torch.profiler import ProfilerActivity, profile as tprofile

    fn()  # one unprofiled call: nothing the profiler sees is a first call
    torch.cuda.synchronize(device)
    with tprofile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            with torch.autograd.profiler.record_function(ITERATION):
                fn()
            torch.cuda.synchronize(device)
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)
    return data["traceEvents"] if isinstance(data, dict) else data


def profile(fn: Callable[[], object], device: torch.device, wall_median_ms: float | None,
            model: nn.Module | None = None, units: list | None = None) -> dict:
    """Kernel time, busy fraction (and per-unit kernel time with ``model``/``units``).
    Never raises for a profiler failure: the record says why it has no kernel time."""
    hooks = UnitRanges(model, units) if units else None
    try:
        events = trace(fn, device)
    except Exception as exc:  # noqa: BLE001 - the profiler is optional evidence, not the measurement
        return {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}",
                "method": METHOD}
    finally:
        if hooks:
            hooks.remove()
    ops, ranges = parse(events)
    pairs = [(u.label, u.path is not None) for u in units] if units else []
    return summary(attribute(ops, ranges, pairs), wall_median_ms)
