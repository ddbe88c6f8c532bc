"""Single-layer benchmarks (seed 004): forward, backward and their total for one
layer at a time, with the achieved FLOP rate and bytes moved per second.

Two sets, described as data: ``seed004`` is seed 004's (3 -> 64 channels on one
224x224 image, Dense 1024 -> 512 at batch 1), which a modern GPU finishes in a
few microseconds, so launch overhead dominates; ``large`` loads such a GPU
(batch 8, 64 -> 64 channels at 224x224, Dense 4096 -> 4096 at batch 256).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode
from tqdm import tqdm

from common import derive, inputs
from common.measure import execution, structure, training
from common.measure.timing import Limits, MIN_ITERS, make_marks


@dataclass(frozen=True)
class LayerCase:
    name: str  # seed 004's label
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]

def _set(c_in: int, channels: int, batch: int, dense: tuple[int, int, int]) -> tuple[LayerCase, ...]:
    """Seed 004's layer list at a given width: convs c_in -> channels (kernel/stride,
    'same' padding), pools 3x3/2, BatchNorm2d, and one Dense layer (in, out, batch)."""
    image = (batch, c_in, 224, 224)
    d_in, d_out, d_batch = dense
    return (
        LayerCase("Conv3x3/1", lambda: nn.Conv2d(c_in, channels, 3, stride=1, padding=1), image),
        LayerCase("Conv5x5/1", lambda: nn.Conv2d(c_in, channels, 5, stride=1, padding=2), image),
        LayerCase("Conv3x3/2", lambda: nn.Conv2d(c_in, channels, 3, stride=2, padding=1), image),
        LayerCase("Conv5x5/2", lambda: nn.Conv2d(c_in, channels, 5, stride=2, padding=2), image),
        LayerCase("MaxPool3x3/2", lambda: nn.MaxPool2d(3, stride=2, padding=1), image),
        LayerCase("MeanPool3x3/2", lambda: nn.AvgPool2d(3, stride=2, padding=1), image),
        LayerCase("BatchNorm", lambda: nn.BatchNorm2d(c_in), image),
        LayerCase("Dense", lambda: nn.Linear(d_in, d_out), (d_batch, d_in)),
    )


SETS: dict[str, tuple[LayerCase, ...]] = {
    "seed004": _set(3, 64, 1, (1024, 512, 1)),
    "large": _set(64, 64, 8, (4096, 4096, 256)),
}


def _elements(shape: tuple[int, ...] | torch.Size) -> int:
    return math.prod(shape)


def bytes_moved(layer: nn.Module, in_shape: tuple, out_shape: tuple, width: int | dict[str, int]) -> dict[str, int]:
    """Each tensor read or written once (a lower bound: caches and re-reads are
    ignored). Forward: input, weights, output. Backward: output gradient, input,
    weights, input gradient, weight gradients. ``width``: bytes per element, one
    for all, or per tensor ({"input", "weight", "output"}, see ``op_widths``); a
    gradient has the width of the tensor it is the gradient of."""
    wd = width if isinstance(width, dict) else {"input": width, "weight": width, "output": width}
    w = sum(p.numel() for p in layer.parameters())
    x, y = _elements(in_shape) * wd["input"], _elements(out_shape) * wd["output"]
    w *= wd["weight"]
    return {"forward": x + w + y, "backward": y + x + w + x + w}


_COPIES = {"_to_copy", "to", "copy_", "clone", "detach", "lift_fresh"}


class _OpTensors(TorchDispatchMode):
    """The tensor arguments of every op that computes (no views, no dtype casts)."""

    def __init__(self):
        super().__init__()
        self.ops: list[list[torch.Tensor]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket.__name__ not in _COPIES and not func.is_view:
            self.ops.append([a for a in pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)])
        return out


def op_widths(forward: Callable[[], torch.Tensor], in_shape: tuple) -> dict[str, int]:
    """Bytes per element of the input, weights and output as the layer's op really
    reads and writes them, from one forward (under the run's autocast): autocast
    casts the operands of convolutions and matrix products to fp16/bf16 but leaves
    pooling and batch norm in fp32, so the width is read from the tensors, never
    assumed from the precision."""
    mode = _OpTensors()
    with torch.no_grad(), mode:
        out = forward()
    op = next(args for args in mode.ops if any(tuple(a.shape) == tuple(in_shape) for a in args))
    x = next(a for a in op if tuple(a.shape) == tuple(in_shape))
    others = [a for a in op if a is not x]
    weight = max(others, key=lambda a: a.numel()) if others else x
    return {"input": x.element_size(), "weight": weight.element_size(), "output": out.element_size()}


def measure_case(case: LayerCase, device: torch.device, precision: str, clock: str, warmup: int, iters: int,
                 max_seconds: float | None = None, min_iters: int = MIN_ITERS) -> dict:
    """Time one layer's training steps; FLOPs from a pass on the meta device,
    bytes from the element sizes the op really uses (``op_widths``)."""
    layer = case.build().to(device)
    x = torch.randn(case.input_shape, generator=torch.Generator().manual_seed(inputs.SEED)).to(device)
    step = training.layer_step(layer, x, autocast=lambda: execution.autocast_for(precision, device))
    widths = op_widths(step.forward, case.input_shape)
    got = training.train_loop(step, make_marks(clock, device), Limits(warmup, iters, max_seconds, min_iters),
                              batch=case.input_shape[0], desc=case.name)
    with torch.device("meta"):
        meta_layer = case.build()
    meta_step = training.layer_step(meta_layer, torch.empty(case.input_shape, device="meta"))
    fwd_flops, bwd_flops = structure.step_flops(meta_step.forward, meta_step.backward)
    with torch.no_grad():
        out_shape = tuple(meta_layer(torch.empty(case.input_shape, device="meta")).shape)
    moved = bytes_moved(meta_layer, case.input_shape, out_shape, widths)
    moved["total"] = moved["forward"] + moved["backward"]
    flops = {"forward": fwd_flops, "backward": bwd_flops, "total": fwd_flops + bwd_flops}
    row: dict = {"layer": case.name, "module": str(meta_layer), "input_shape": list(case.input_shape),
                 "output_shape": list(out_shape), "params": sum(p.numel() for p in meta_layer.parameters()),
                 "bytes_per_element": widths}
    for phase in ("forward", "backward", "total"):
        m = got[phase].to_dict()
        median = m["stats"]["median_ms"]
        m.update(flops=flops[phase], bytes=moved[phase], achieved_tflops=derive.tflops(flops[phase], median),
                 achieved_gbs=derive.gbs(moved[phase], median))
        row[phase] = m
    return row


def run_set(name: str, device: torch.device, precision: str, clock: str, warmup: int, iters: int,
            max_seconds: float | None = None, min_iters: int = MIN_ITERS) -> list[dict]:
    return [measure_case(case, device, precision, clock, warmup, iters, max_seconds, min_iters)
            for case in tqdm(SETS[name], desc=f"layer set {name}", leave=False)]
