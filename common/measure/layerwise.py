"""Per-unit timing with hooks on the unmodified model.

Each hook drops a time mark (a CUDA event recorded on the stream, or
``perf_counter`` on the CPU); the device is synchronized once per iteration,
never per unit, so the units run back to back as they do without hooks. A unit's
forward time is the span between its own pre and post marks; a functional unit
(``Unit.path is None``) spans the gap between the neighbouring module units.

Backward (``unit_hooks``, driven by ``training.train_loop``): tensor hooks mark the moment the gradient of
a unit's output is complete (its backward begins) and the moment the gradient of
its input is complete (its backward ends). A hook registered before an in-place
op sees the gradient of the value before that op (PyTorch's documented rule), so
in-place ReLUs are timed like any other unit. A unit whose input needs no
gradient (the stem) ends with the backward pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from common.errors import UserError
from common.registry import Unit
from common.measure.timing import Marks, make_marks, summarize

# Per-unit coverage compares the units with the whole model's loop; with fewer
# samples than this in that loop (the quick CPU protocol) the file calls it unreliable.
COVERAGE_MIN_SAMPLES = 10


@dataclass
class UnitProfile:
    unit: Unit
    module_type: str
    in_shape: tuple | None = None
    out_shape: tuple | None = None
    samples_ms: list[float] = field(default_factory=list)
    backward_ms: list[float] = field(default_factory=list)

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
            **({"backward": {"stats": summarize(self.backward_ms, batch).to_dict(), "samples_ms": self.backward_ms}}
               if self.backward_ms else {}),
        }


def _shape(x: object) -> tuple | None:
    if isinstance(x, torch.Tensor):
        return tuple(x.shape)
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        return tuple(x[0].shape)
    return None


class _UnitHooks:
    """Hooks that drop marks at every unit's boundaries during one iteration."""

    def __init__(self, model: nn.Module, units: list[Unit], marks: Marks, backward: bool):
        modules = dict(model.named_modules())
        missing = [u.path for u in units if u.path is not None and u.path not in modules]
        if missing:
            raise UserError(f"unit module(s) not found in the model: {', '.join(missing)}")
        self.units, self.marks, self.backward = units, marks, backward
        self.profiles = [UnitProfile(u, type(modules[u.path]).__name__ if u.path else "functional") for u in units]
        # Per iteration: marks keyed by (unit index, "pre"|"post"|"grad_out"|"grad_in").
        self.seen: dict[tuple[int, str], object] = {}
        # Per iteration: the keys waiting on one gradient, by (tensor id, version);
        # the tensor is held with them so that its id is not reused in the pass.
        self._waiting: dict[tuple[int, int], tuple[torch.Tensor, list[tuple[int, str]]]] = {}
        self.handles = []
        for i, u in enumerate(units):
            if u.path is not None:
                self.handles.append(modules[u.path].register_forward_pre_hook(self._pre(i)))
                self.handles.append(modules[u.path].register_forward_hook(self._post(i)))

    def reset(self) -> None:
        """Forget the last iteration's marks (call before each pass)."""
        self.seen.clear()
        self._waiting.clear()

    def _on_grad(self, t: object, key: tuple[int, str]) -> None:
        """Mark ``key`` when the gradient of ``t`` is complete. One unit's output is
        the next one's input: both keys share one hook and so one mark, else the
        host's time between two marks would count in both units' spans."""
        if not (self.backward and isinstance(t, torch.Tensor) and t.requires_grad):
            return
        moment = (id(t), t._version)
        if moment in self._waiting:
            self._waiting[moment][1].append(key)
            return
        keys = [key]
        self._waiting[moment] = (t, keys)

        def hook(_grad: torch.Tensor) -> None:
            mark = self.marks.mark()
            for k in keys:
                self.seen[k] = mark

        t.register_hook(hook)

    def _pre(self, i: int):
        def hook(_m: nn.Module, args: tuple) -> None:
            if (i, "pre") in self.seen:
                raise UserError(f"unit {self.units[i].label!r} ran twice in one forward pass; units must run once")
            self.seen[(i, "pre")] = self.marks.mark()
            if self.profiles[i].in_shape is None:
                self.profiles[i].in_shape = _shape(args)
            self._on_grad(args[0] if args else None, (i, "grad_in"))
        return hook

    def _post(self, i: int):
        def hook(_m: nn.Module, _args: tuple, out: object) -> None:
            self.seen[(i, "post")] = self.marks.mark()
            if self.profiles[i].out_shape is None:
                self.profiles[i].out_shape = _shape(out)
            self._on_grad(out[0] if isinstance(out, (tuple, list)) else out, (i, "grad_out"))
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def _forward_mark(self, i: int, side: str, start: object, end: object) -> object:
        """Where unit i's forward begins ("pre") or ends ("post"); functional
        units borrow their neighbours' marks (or the pass's start/end)."""
        if self.units[i].path is not None:
            return self.seen[(i, side)]
        j = i - 1 if side == "pre" else i + 1
        if not 0 <= j < len(self.units):
            return start if side == "pre" else end
        return self._forward_mark(j, "post" if side == "pre" else "pre", start, end)

    def _backward_mark(self, i: int, side: str, start: object, end: object) -> object:
        """Where unit i's backward begins ("grad_out") or ends ("grad_in"). The
        backward runs the units in reverse: a functional unit spans from the end
        of the next unit's backward to the start of the previous one's."""
        if self.units[i].path is not None:
            if side == "grad_in" and (i, side) not in self.seen:
                return end  # the input needs no gradient: the unit ends the pass
            return self.seen[(i, side)]
        j = i + 1 if side == "grad_out" else i - 1
        if not 0 <= j < len(self.units):
            return start if side == "grad_out" else end
        return self._backward_mark(j, "grad_in" if side == "grad_out" else "grad_out", start, end)

    def collect(self, fwd: tuple[object, object], bwd: tuple[object, object] | None = None) -> None:
        """Append this iteration's spans; ``fwd``/``bwd`` are the passes' own start and end marks."""
        for side, what in [("post", "forward")] + ([("grad_out", "backward")] if bwd else []):
            absent = [self.units[i].label for i, u in enumerate(self.units) if u.path and (i, side) not in self.seen]
            if absent:
                raise UserError(f"unit(s) never ran in the {what} pass: {', '.join(absent)}")
        el = self.marks.elapsed
        for i, p in enumerate(self.profiles):
            p.samples_ms.append(el(self._forward_mark(i, "pre", *fwd), self._forward_mark(i, "post", *fwd)))
            if bwd:
                p.backward_ms.append(el(self._backward_mark(i, "grad_out", *bwd),
                                        self._backward_mark(i, "grad_in", *bwd)))
        self.reset()


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
    marks = unit_marks(device)
    hooks = _UnitHooks(model, units, marks, backward=False)
    spans: list[float] = []
    try:
        for n in tqdm(range(warmup + iters), desc="per-unit timing", leave=False):
            hooks.reset()
            start = marks.mark()
            fn()
            end = marks.mark()
            marks.finish(end)
            if n < warmup:
                continue
            hooks.collect((start, end))
            spans.append(marks.elapsed(start, end))
            if deadline(n + 1 - warmup):
                break
    finally:
        hooks.remove()
    return hooks.profiles, spans


def unit_marks(device: torch.device) -> Marks:
    """Marks for hooks: CUDA events on a GPU whatever the run's clock, since a
    synchronizing host mark per unit would serialize the units."""
    return make_marks("cuda-event" if device.type == "cuda" else "perf_counter", device)


def unit_hooks(model: nn.Module, units: list[Unit], marks: Marks) -> _UnitHooks:
    """Forward and backward hooks for ``training.train_loop``; call ``remove()`` after."""
    return _UnitHooks(model, units, marks, backward=True)
