"""Generic units of any model: top-level children at depth 1, their children at
depth 2, in execution order (the blocks of a container the forward iterates over
without calling it, a top-level ModuleList say, stand in its place), found by tracing one forward pass on the meta device
(see ``generic``'s docstring for the rules: every executed module once, shared
modules timed inside the functional units around them, functional gaps named)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn

from common.registry.backbones import Unit


@dataclass
class Trace:
    """One forward pass as a sequence: ("pre", path), ("post", path), ("op", aten name)."""

    events: list[tuple[str, str]] = field(default_factory=list)

    def calls(self) -> Counter:
        return Counter(p for kind, p in self.events if kind == "pre")

    def spans(self) -> dict[str, tuple[int, int]]:
        """First call's (pre index, post index) of every module called."""
        out: dict[str, tuple[int, int]] = {}
        open_: dict[str, list[int]] = {}
        for i, (kind, p) in enumerate(self.events):
            if kind == "pre":
                open_.setdefault(p, []).append(i)
            elif kind == "post" and open_.get(p):
                start = open_[p].pop()
                out.setdefault(p, (start, i))
        return out


def trace(model: nn.Module, x: torch.Tensor) -> Trace:
    """Record module entries/exits and the non-view ATen ops of one forward pass."""
    from torch.utils._python_dispatch import TorchDispatchMode

    tr = Trace()

    class Ops(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            returns = func._schema.returns
            view = bool(returns) and returns[0].alias_info is not None and not returns[0].alias_info.is_write
            if not view and func.overloadpacket.__name__ not in ("detach", "empty", "empty_like"):
                tr.events.append(("op", func.overloadpacket.__name__))
            return func(*args, **(kwargs or {}))

    handles = []
    for path, mod in model.named_modules():
        if not path:
            continue
        handles.append(mod.register_forward_pre_hook(lambda m, a, p=path: tr.events.append(("pre", p))))
        handles.append(mod.register_forward_hook(lambda m, a, o, p=path: tr.events.append(("post", p))))
    try:
        with torch.inference_mode(), Ops():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return tr


def select_units(model: nn.Module, tr: Trace, depth: int) -> list[str]:
    """Module paths of the units at ``depth``, in execution order (see the module doc)."""
    calls, spans = tr.calls(), tr.spans()
    children = {p: [f"{p}.{n}" if p else n for n, _ in m.named_children()] for p, m in model.named_modules()}

    def running(path: str) -> list[str]:
        """The children of ``path`` that run; a child never called itself (a
        ModuleList, or a Sequential the forward iterates over) is replaced by its
        own children that run, at the same level: its blocks become units."""
        out: list[str] = []
        for k in children.get(path, []):
            out += [k] if calls[k] >= 1 else running(k)
        return out

    def pick(path: str, level: int) -> list[str]:
        kids = running(path)
        if level >= depth or not kids:
            return [path]
        return [u for k in kids if calls[k] == 1 for u in pick(k, level + 1)]

    chosen = [u for k in running("") if calls[k] == 1 for u in pick(k, 1)]
    chosen.sort(key=lambda p: spans[p][0])
    kept: list[str] = []
    for p in chosen:  # a unit run inside another unit counts there
        if kept and spans[p][1] < spans[kept[-1]][1]:
            continue
        kept.append(p)
    return kept


def gap_note(events: list[tuple[str, str]], calls: Counter) -> str:
    """What runs between two units: the modules called there (shared ones with
    their call counts) and the ops. A module only entered or only left in the gap
    (a parent of the next unit or of the last one) encloses it: not named, and
    what runs inside it here is."""
    stack: list[int] = []
    whole: set[int] = set()  # indices of the pre and post events of modules run wholly in the gap
    for i, (kind, p) in enumerate(events):
        if kind == "pre":
            stack.append(i)
        elif kind == "post" and stack and events[stack[-1]][1] == p:
            whole.update((stack.pop(), i))
    shared, ops, depth = Counter(), Counter(), 0
    for i, (kind, p) in enumerate(events):
        if kind == "op":
            ops[p] += depth == 0
        elif i in whole:
            shared[p] += kind == "pre" and depth == 0
            depth += 1 if kind == "pre" else -1
    parts = [f"{p} x{calls[p]} shared" if calls[p] > 1 else p for p, n in shared.items() if n]
    parts += [f"{op}" + (f" x{n}" if n > 1 else "") for op, n in ops.most_common() if n]
    entered = [p for i, (kind, p) in enumerate(events) if kind == "pre" and i not in whole]
    return ", ".join(parts) or f"no ops (entering {', '.join(entered)})"


def units_from_trace(model: nn.Module, tr: Trace, depth: int) -> list[Unit]:
    paths = select_units(model, tr, depth)
    spans, calls = tr.spans(), tr.calls()
    units: list[Unit] = []
    gaps = 0
    bounds = [(-1, -1)] + [spans[p] for p in paths] + [(len(tr.events), len(tr.events))]
    for i in range(len(bounds) - 1):
        between = tr.events[bounds[i][1] + 1: bounds[i + 1][0]]
        if any(kind in ("op", "pre") for kind, _ in between):
            gaps += 1
            note = gap_note(between, calls)
            units.append(Unit(f"functional{gaps}", None, f"functional: {note}"))
        if i < len(paths):
            units.append(Unit(paths[i], paths[i]))
    return units
