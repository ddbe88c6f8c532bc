"""Per-unit timing with forward pre/post hooks on the unmodified model.

Each hook drops a time mark (a CUDA event recorded on the stream, or
``perf_counter`` on the CPU); the device is synchronized once per iteration,
never per unit, so the units run back to back as they do without hooks. A unit's
time is the span between its own pre and post marks; a functional unit
(``Unit.path is None``) spans the gap between the neighbouring module units.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from common.errors import UserError
from common.models import Unit
from common.timing import summarize


class _CudaMarks:
    clock = "cuda-event"

    def mark(self) -> torch.cuda.Event:
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev

    def finish(self, last: object) -> None:
        last.synchronize()  # type: ignore[attr-defined]

    @staticmethod
    def elapsed(a: object, b: object) -> float:
        return a.elapsed_time(b)  # type: ignore[attr-defined]


class _HostMarks:
    clock = "perf_counter"

    def mark(self) -> float:
        return time.perf_counter()

    def finish(self, last: object) -> None:
        pass

    @staticmethod
    def elapsed(a: object, b: object) -> float:
        return (b - a) * 1e3  # type: ignore[operator]


@dataclass
class UnitProfile:
    unit: Unit
    module_type: str
    in_shape: tuple | None = None
    out_shape: tuple | None = None
    samples_ms: list[float] = field(default_factory=list)

    def to_dict(self, batch: int) -> dict:
        return {
            "label": self.unit.label,
            "path": self.unit.path,
            "note": self.unit.note,
            "type": self.module_type,
            "in_shape": list(self.in_shape) if self.in_shape else None,
            "out_shape": list(self.out_shape) if self.out_shape else None,
            "stats": summarize(self.samples_ms, batch).to_dict(),
            "samples_ms": self.samples_ms,
        }


def _shape(x: object) -> tuple | None:
    if isinstance(x, torch.Tensor):
        return tuple(x.shape)
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        return tuple(x[0].shape)
    return None


def profile_units(
    model: nn.Module,
    fn: Callable[[], object],
    units: list[Unit],
    device: torch.device,
    warmup: int,
    iters: int,
    *,
    deadline: Callable[[int], bool] = lambda n: False,
) -> tuple[list[UnitProfile], list[float]]:
    """Time every unit of one forward pass, ``iters`` times after ``warmup``.

    Returns the unit profiles and the per-iteration span from the first to the
    last mark (the hooked forward pass). ``deadline(n)`` lets the caller stop
    early after ``n`` iterations.
    """
    modules = dict(model.named_modules())
    missing = [u.path for u in units if u.path is not None and u.path not in modules]
    if missing:
        raise UserError(f"unit module(s) not found in the model: {', '.join(missing)}")
    marks = _CudaMarks() if device.type == "cuda" else _HostMarks()
    profiles = [UnitProfile(u, type(modules[u.path]).__name__ if u.path else "functional") for u in units]
    # Per iteration: boundary marks keyed by (unit index, "pre"|"post").
    seen: dict[tuple[int, str], object] = {}
    handles = []

    def add_hooks(i: int, module: nn.Module) -> None:
        def pre(_m: nn.Module, args: tuple) -> None:
            if (i, "pre") in seen:
                raise UserError(f"unit {units[i].label!r} ran twice in one forward pass; units must run once")
            seen[(i, "pre")] = marks.mark()
            if profiles[i].in_shape is None:
                profiles[i].in_shape = _shape(args)

        def post(_m: nn.Module, _args: tuple, out: object) -> None:
            seen[(i, "post")] = marks.mark()
            if profiles[i].out_shape is None:
                profiles[i].out_shape = _shape(out)

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))

    for i, u in enumerate(units):
        if u.path is not None:
            add_hooks(i, modules[u.path])

    def one_pass() -> tuple[object, object]:
        seen.clear()
        start = marks.mark()
        fn()
        end = marks.mark()
        return start, end

    def boundary(i: int, side: str, start: object, end: object) -> object:
        """The mark where unit i begins ("pre") or ends ("post"); functional
        units borrow their neighbours' marks (or the pass's start/end)."""
        if units[i].path is not None:
            return seen[(i, side)]
        j = i - 1 if side == "pre" else i + 1
        if not 0 <= j < len(units):
            return start if side == "pre" else end
        return boundary(j, "post" if side == "pre" else "pre", start, end)

    spans: list[float] = []
    try:
        for _ in range(warmup):
            one_pass()
        for n in tqdm(range(iters), desc="per-unit timing", leave=False):
            start, end = one_pass()
            marks.finish(end)
            absent = [units[i].label for i, u in enumerate(units) if u.path and (i, "post") not in seen]
            if absent:
                raise UserError(f"unit(s) never ran in the forward pass: {', '.join(absent)}")
            for i, p in enumerate(profiles):
                p.samples_ms.append(marks.elapsed(boundary(i, "pre", start, end), boundary(i, "post", start, end)))
            spans.append(marks.elapsed(start, end))
            if deadline(n + 1):
                break
    finally:
        for h in handles:
            h.remove()
    return profiles, spans
