"""One analysed forward of a zoo model: ``structure.analyze`` (parameters, MACs/FLOPs,
feature memory in convnet-burden's convention), per module or for the whole model,
plus the in-place sums convnet-burden would have stored and each module's output shapes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from common.burden.fmt import ROOT_LABEL, describe  # noqa: F401 - re-exported (torch-free)
from common.measure import structure
from common.registry.backbones import Unit

LAYER_COLUMNS = ["order", "module", "type", "output", "params", "feature_bytes", "flops"]
# Element-wise arithmetic that torchvision/timm run in place (``out += identity``):
# convnet-burden stores every such sum as a new feature (only its ReLUs are in place).
_INPLACE_SUMS = {torch.ops.aten.add_, torch.ops.aten.sub_, torch.ops.aten.mul_, torch.ops.aten.div_}


class _InplaceSums(TorchDispatchMode):
    """Bytes written by in-place element-wise arithmetic (residual ``+=``): nothing in
    our convention, a new feature in convnet-burden's. Sees the ops that
    ``structure.analyze``'s own mode passes on; counts nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket in _INPLACE_SUMS and isinstance(out, torch.Tensor):
            self.bytes += out.numel() * structure.FEATURE_BYTES
        return out


def _shapes(out: Any, limit: int = 8) -> list[list[int]]:
    """Shapes of the tensors in a module's output (tensor, tuple/list, dict), at most ``limit``."""
    found: list[list[int]] = []

    def walk(o: Any) -> None:
        if len(found) >= limit:
            return
        if isinstance(o, torch.Tensor):
            found.append(list(o.shape))
        elif isinstance(o, (dict, list, tuple)):
            for v in (o.values() if isinstance(o, dict) else o):
                walk(v)

    walk(out)
    return found


def _spatial(shape: list[int]) -> bool:
    """A feature map (N,C,H,W / N,H,W,C) or token sequence (N,L,C) with extent > 1."""
    if len(shape) == 3:
        return shape[1] > 1
    if len(shape) == 4:
        return shape[2] * shape[3] > 1 and shape[1] * shape[2] > 1
    return len(shape) > 4


@dataclass
class Pass:
    size: tuple[int, int]
    batch: int
    device: str
    cost: structure.Cost
    inplace_bytes: int
    seconds: float
    order: dict[str, int] = field(default_factory=dict)  # module path -> first-call index
    outputs: dict[str, list[list[int]]] = field(default_factory=dict)  # path -> output shapes (last call)
    completed: list[str] = field(default_factory=list)  # paths in the order their calls ended

    @property
    def feature_bytes_seed_convention(self) -> int:
        return self.cost.feature_bytes + self.inplace_bytes


def make_input(size: tuple[int, int], batch: int, device: str) -> torch.Tensor:
    shape = (batch, 3, *size)
    if device == "meta":
        return torch.empty(shape, device="meta")
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


def run_pass(model: nn.Module, size: tuple[int, int], batch: int, device: str,
             per_layer: bool = False, trunk: str | None = None) -> Pass:
    """``structure.analyze`` of one forward; with ``per_layer`` every module is a unit
    (self costs) and its calls are recorded; else only ``trunk``'s output is."""
    x = make_input(size, batch, device)
    modules = dict(model.named_modules())
    p = Pass(size, batch, device, cost=None, inplace_bytes=0, seconds=0.0)  # type: ignore[arg-type]
    handles = []
    hooked = modules if per_layer else ({trunk: modules[trunk]} if trunk in modules else {})
    for path, m in hooked.items():
        def pre(_m, _a, path=path):
            p.order.setdefault(path, len(p.order))

        def post(_m, _a, out, path=path):
            p.outputs[path] = _shapes(out)
            p.completed.append(path)

        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    units = [Unit(path or ROOT_LABEL, path) for path in modules] if per_layer else None
    sums = _InplaceSums()
    t0 = time.perf_counter()
    try:
        with sums:
            p.cost = structure.analyze(model, x, units)
    finally:
        for h in handles:
            h.remove()
    p.seconds = time.perf_counter() - t0
    p.inplace_bytes = sums.bytes
    return p


def find_trunk(model: nn.Module, p: Pass) -> str | None:
    """The module whose output is the model's last feature map, for the sweep's "feature
    size" (convnet-burden reports its last fully-convolutional features): torchvision's
    ``backbone`` for segmentation/detection, else the last module to finish whose output
    is a feature map or token sequence with spatial extent > 1."""
    if "backbone" in dict(model.named_children()):
        return "backbone"
    for path in reversed(p.completed):
        shapes = p.outputs.get(path)
        if path and shapes and _spatial(shapes[0]):
            return path
    return None


def layer_rows(model: nn.Module, p: Pass) -> list[list]:
    """LAYER_COLUMNS per module with a cost (self params, feature bytes, FLOPs), in
    first-call order (modules never called last, order None)."""
    modules = dict(model.named_modules())
    rows = []
    for (path, m), u in zip(modules.items(), p.cost.units):
        own = sum(t.numel() for t in m.parameters(recurse=False))
        if not (own or u.flops or u.feature_bytes):
            continue
        rows.append([p.order.get(path), path or ROOT_LABEL, type(m).__name__,
                     describe(p.outputs.get(path), batch_first=False), own, u.feature_bytes, u.flops])
    rows.sort(key=lambda r: (r[0] is None, r[0] if r[0] is not None else 0))
    return rows


def whole_cost(p: Pass) -> dict:
    """The base figures of one pass, as recorded."""
    c = p.cost
    return {"size": list(p.size), "batch": p.batch, "device": p.device, "params": c.params,
            "param_bytes": c.param_bytes, "buffer_bytes": c.buffer_bytes, "input_bytes": c.input_bytes,
            "macs": c.macs, "flops": c.flops, "feature_bytes": c.feature_bytes,
            "feature_bytes_seed_convention": p.feature_bytes_seed_convention,
            "uncounted_ops": c.uncounted_ops, "seconds": round(p.seconds, 3)}


def sweep_cost(p: Pass, trunk: str | None) -> dict:
    """One row of a size sweep, as recorded."""
    return {"macs": p.cost.macs, "flops": p.cost.flops, "feature_bytes": p.cost.feature_bytes,
            "seconds": round(p.seconds, 3), "feature_bytes_seed_convention": p.feature_bytes_seed_convention,
            "trunk_out": p.outputs.get(trunk) if trunk else None}
