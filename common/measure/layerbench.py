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
from tqdm import tqdm

from common import inputs
from common.measure import execution, structure, training
from common.measure.timing import MIN_ITERS, make_marks


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


def bytes_moved(layer: nn.Module, in_shape: tuple, out_shape: tuple, width: int) -> dict[str, int]:
    """Each tensor read or written once (a lower bound: caches and re-reads are
    ignored). Forward: input, weights, output. Backward: output gradient, input,
    weights, input gradient, weight gradients."""
    w = sum(p.numel() for p in layer.parameters())
    x, y = _elements(in_shape), _elements(out_shape)
    return {"forward": (x + w + y) * width, "backward": (y + x + w + x + w) * width}


def measure_case(case: LayerCase, device: torch.device, precision: str, clock: str, warmup: int, iters: int,
                 max_seconds: float | None = None, min_iters: int = MIN_ITERS) -> dict:
    """Time one layer's training steps; FLOPs from a pass on the meta device."""
    layer = case.build().to(device)
    x = torch.randn(case.input_shape, generator=torch.Generator().manual_seed(inputs.SEED)).to(device)
    step = training.layer_step(layer, x, autocast=lambda: execution.autocast_for(precision, device))
    got = training.train_loop(step, make_marks(clock, device), warmup, iters, batch=case.input_shape[0],
                              max_seconds=max_seconds, min_iters=min_iters, desc=case.name)
    with torch.device("meta"):
        meta_layer = case.build()
    meta_step = training.layer_step(meta_layer, torch.empty(case.input_shape, device="meta"))
    fwd_flops, bwd_flops = structure.step_flops(meta_step.forward, meta_step.backward)
    with torch.no_grad():
        out_shape = tuple(meta_layer(torch.empty(case.input_shape, device="meta")).shape)
    width = 2 if precision in ("fp16", "bf16") else 4
    moved = bytes_moved(meta_layer, case.input_shape, out_shape, width)
    moved["total"] = moved["forward"] + moved["backward"]
    flops = {"forward": fwd_flops, "backward": bwd_flops, "total": fwd_flops + bwd_flops}
    row: dict = {"layer": case.name, "module": str(meta_layer), "input_shape": list(case.input_shape),
                 "output_shape": list(out_shape), "params": sum(p.numel() for p in meta_layer.parameters())}
    for phase in ("forward", "backward", "total"):
        m = got[phase].to_dict()
        seconds = m["stats"]["median_ms"] * 1e-3
        m.update(flops=flops[phase], bytes=moved[phase], achieved_tflops=flops[phase] / seconds / 1e12,
                 achieved_gbs=moved[phase] / seconds / 1e9)
        row[phase] = m
    return row


def run_set(name: str, device: torch.device, precision: str, clock: str, warmup: int, iters: int,
            max_seconds: float | None = None, min_iters: int = MIN_ITERS) -> list[dict]:
    return [measure_case(case, device, precision, clock, warmup, iters, max_seconds, min_iters)
            for case in tqdm(SETS[name], desc=f"layer set {name}", leave=False)]
