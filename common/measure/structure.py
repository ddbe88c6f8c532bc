"""Parameters, MACs/FLOPs and feature memory, whole model and per unit.

One pass of the model under a dispatch mode sees every ATen op:
- FLOPs come from PyTorch's own formulas (``torch.utils.flop_counter``); MACs =
  FLOPs / 2, since those formulas count a multiply-add as two FLOPs. Ops with no
  formula (batch norm, activations, pooling, adds) are named, not guessed.
- Feature memory follows convnet-burden (seed 003): every intermediate output
  counted once at float32 (4 bytes), no memory reuse; in-place ops (ReLU with
  ``inplace=True``, ``+=``) and views add nothing.
The pass runs on the ``meta`` device by default, so a Cityscapes-sized ResNet-101
costs no memory and no compute.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from common.derive import MIB
from common.registry import Unit

FEATURE_BYTES = 4  # convnet-burden assumes float32 activations


@dataclass
class UnitCost:
    label: str
    path: str | None
    params: int = 0
    flops: int = 0
    feature_bytes: int = 0
    out_shape: list[int] | None = None

    @property
    def macs(self) -> int:
        return self.flops // 2


@dataclass
class Cost:
    params: int
    param_bytes: int  # at the model's own dtype (float32 here)
    buffer_bytes: int
    flops: int
    feature_bytes: int  # convnet-burden convention, input image excluded
    input_bytes: int
    uncounted_ops: dict[str, int]  # op name -> calls with no FLOP formula
    units: list[UnitCost] = field(default_factory=list)
    # Parameters no op of the forward reads (auxiliary heads in eval()), counted in
    # ``params`` too; ``unused`` names them by their outermost modules.
    params_unused: int = 0
    unused: list[str] = field(default_factory=list)
    params_in_units: int = 0  # parameters read by the forward that module units hold, each once

    @property
    def macs(self) -> int:
        return self.flops // 2

    def to_dict(self) -> dict:
        return {
            "params": self.params,
            "param_mib": self.param_bytes / MIB,
            "buffer_mib": self.buffer_bytes / MIB,
            "macs": self.macs,
            "flops": self.flops,
            "feature_mib": self.feature_bytes / MIB,
            "input_mib": self.input_bytes / MIB,
            "uncounted_ops": self.uncounted_ops,
            "params_unused": self.params_unused,
            "unused": self.unused,
            "params_in_units": self.params_in_units,
            "units": [
                {"label": u.label, "path": u.path, "params": u.params, "macs": u.macs, "flops": u.flops,
                 "feature_mib": u.feature_bytes / MIB, "out_shape": u.out_shape}
                for u in self.units
            ],
        }


def _is_alias(func: torch._ops.OpOverload) -> bool:
    """True for views and in-place ops: their output is an existing tensor."""
    returns = func._schema.returns
    return bool(returns) and returns[0].alias_info is not None


def _is_view(func: torch._ops.OpOverload) -> bool:
    """An alias that writes nothing: metadata only, no arithmetic."""
    returns = func._schema.returns
    return _is_alias(func) and not returns[0].alias_info.is_write


class _CostMode(TorchDispatchMode):
    def __init__(self, registry: dict, params: dict[int, nn.Parameter], gap_after: dict[int, int]):
        super().__init__()
        self.registry = registry
        self.current = -1  # index of the unit running now; -1: outside any unit
        self.enclosing: list[int] = []  # units the running one is nested in, innermost last
        # Ops outside every unit belong to the functional unit of their gap: the one
        # listed right after the last unit to finish (``gap_after``), else to none (-1).
        self.finished = -1
        self.gap_after = gap_after
        self.params = params  # id -> parameter, of the whole model
        self.read: dict[int, int] = {}  # parameter id -> bucket of the first op reading it
        self.flops: Counter = Counter()
        self.feature: Counter = Counter()
        self.uncounted: Counter = Counter()
        self.last_shape: dict[int, list[int]] = {}

    @property
    def bucket(self) -> int:
        return self.current if self.current != -1 else self.gap_after.get(self.finished, -1)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func.overloadpacket
        for t in tree_flatten((args, kwargs))[0]:
            if id(t) in self.params:
                self.read.setdefault(id(t), self.bucket)
        if packet not in self.registry:
            # Composite ops (conv2d, linear, batch_norm) reach the mode whole in
            # recent PyTorch: count what they decompose into, as FlopCounterMode does.
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        if packet in self.registry:
            self.flops[self.bucket] += self.registry[packet](*args, **kwargs, out_val=out)
        elif not _is_view(func) and not str(packet).startswith("aten.empty"):
            self.uncounted[str(packet)] += 1
        # Only the op's result: auxiliary outputs (max-pool indices, batch norm's
        # saved statistics) are not features.
        t = out[0] if isinstance(out, (tuple, list)) else out
        if isinstance(t, torch.Tensor):
            self.last_shape[self.bucket] = list(t.shape)
            if not _is_alias(func):
                self.feature[self.bucket] += t.numel() * FEATURE_BYTES
        return out


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def analyze(model: nn.Module, x: torch.Tensor, units: list[Unit] | None = None) -> Cost:
    """Run ``model(x)`` once (under ``inference_mode``) and account for its cost."""
    units = units or []
    modules = dict(model.named_modules())
    params = {id(p): p for p in model.parameters()}
    # The functional unit listed right after unit i holds the ops run between i and the next unit.
    gap_after = {i - 1: i for i, u in enumerate(units) if u.path is None}
    mode = _CostMode(FlopCounterMode(display=False).flop_registry, params, gap_after)
    costs = [UnitCost(u.label, u.path) for u in units]
    held: set[int] = set()  # parameters of module units
    handles = []
    for i, u in enumerate(units):
        if u.path is None:
            continue
        m = modules[u.path]
        costs[i].params = param_count(m)
        held.update(id(p) for p in m.parameters())

        def pre(_m, _a, i=i):
            mode.enclosing.append(mode.current)
            mode.current = i

        def post(_m, _a, _out, i=i):
            # Back to the enclosing unit (-1 when units do not nest): with nested
            # units each op is charged to the innermost unit running it.
            mode.current = mode.enclosing.pop() if mode.enclosing else -1
            if mode.current == -1:
                mode.finished = i

        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        with torch.inference_mode(), mode:
            model(x)
    finally:
        for h in handles:
            h.remove()
    for i, c in enumerate(costs):
        c.flops = mode.flops.get(i, 0)
        c.feature_bytes = mode.feature.get(i, 0)
        c.out_shape = mode.last_shape.get(i)
        if c.path is None:  # parameters read in the gap that no module unit holds (a shared module's)
            c.params = sum(params[k].numel() for k, b in mode.read.items() if b == i and k not in held)
    unused = [k for k in params if k not in mode.read]
    return Cost(
        params=param_count(model),
        param_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        flops=sum(mode.flops.values()),
        feature_bytes=sum(mode.feature.values()),
        input_bytes=x.numel() * FEATURE_BYTES,
        uncounted_ops=dict(sorted(mode.uncounted.items())),
        units=costs,
        params_unused=sum(params[k].numel() for k in unused),
        unused=outermost(model, set(unused)),
        params_in_units=sum(params[k].numel() for k in mode.read if k in held),
    )


def outermost(model: nn.Module, ids: set[int]) -> list[str]:
    """The fewest names covering the parameters ``ids``: the outermost modules all of
    whose parameters are among them, and any loose parameter's own name."""
    out: list[str] = []
    covered: set[int] = set()
    for path, m in model.named_modules():
        own = {id(p) for p in m.parameters()}
        if path and own and own <= ids and not own <= covered:
            out.append(path)
            covered |= own
    out += [n for n, p in model.named_parameters() if id(p) in ids and id(p) not in covered]
    return out


def step_flops(forward: Callable[[], torch.Tensor], backward: Callable[[torch.Tensor], None]) -> tuple[int, int]:
    """FLOPs of one forward and of the backward that follows it (PyTorch's own
    formulas; run it on the meta device to make it free)."""
    with FlopCounterMode(display=False) as fwd:
        out = forward()
    with FlopCounterMode(display=False) as bwd:
        backward(out)
    return fwd.get_total_flops(), bwd.get_total_flops()


def torchinfo_rows(model: nn.Module, x: torch.Tensor, depth: int) -> list[dict]:
    """One row per module down to ``depth`` (module path, type, output shape,
    parameters, kernel size, MACs), from torchinfo. Runs one real forward on x's
    device. A row's parameters are its own and its children's, counted once."""
    import torchinfo

    stats = torchinfo.summary(model, input_data=x, depth=depth, verbose=0, device=x.device, mode="eval",
                              col_names=("output_size", "num_params", "kernel_size", "mult_adds"))
    paths = {id(m): name for name, m in model.named_modules()}
    rows = []
    for info in stats.summary_list:
        if info.depth == 0 or info.depth > depth:
            continue
        rows.append({
            "path": paths.get(id(info.module), info.var_name),
            "depth": info.depth,
            "type": info.class_name,
            "out_shape": list(info.output_size) if info.output_size else None,
            "params": param_count(info.module),
            "kernel": list(info.kernel_size) if isinstance(info.kernel_size, (list, tuple)) else info.kernel_size,
            "macs": info.macs,
        })
    return rows
