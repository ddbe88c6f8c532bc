"""Training-step timing: forward, backward and (optionally) the optimizer step,
each between its own marks, as seed 004 reports them.

One iteration: gradients cleared (untimed), mark, forward (model + loss), mark,
backward, mark, [optimizer step, mark], one wait for the last mark. *Total* is
forward + backward of the same iteration, so it has statistics of its own.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from common import inputs
from common.measure import execution, layerwise
from common.registry import Unit
from common.spec import SGD_LR, SGD_MOMENTUM, Request
from common.measure.timing import Limits, Marks, Measurement, deadline, make_marks

PHASES = ("forward", "backward", "total", "optimizer")


@dataclass
class TrainStep:
    """What one timed iteration runs; built by ``model_step`` or ``layer_step``."""

    forward: Callable[[], torch.Tensor]  # returns what ``backward`` differentiates
    backward: Callable[[torch.Tensor], None]
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer | None = None

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def run(self) -> None:
        self.zero_grad()
        self.backward(self.forward())
        if self.optimizer:
            self.optimizer.step()


def model_step(model: nn.Module, x: torch.Tensor, req: Request, with_optimizer: bool) -> TrainStep:
    """The model in train mode on a seeded input and seeded class targets, with a
    cross-entropy loss (computed inside the forward phase)."""
    model.train()
    if req.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    classes = _output_classes(model, x)
    generator = torch.Generator().manual_seed(inputs.SEED + 1)
    target = torch.randint(0, classes, (x.shape[0],), generator=generator).to(x.device)
    loss_fn = nn.CrossEntropyLoss()

    def forward() -> torch.Tensor:
        with execution.autocast(req):
            return loss_fn(model(x), target)

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=SGD_LR, momentum=SGD_MOMENTUM) if with_optimizer else None
    return TrainStep(forward, lambda loss: loss.backward(), params, opt)


def _output_classes(model: nn.Module, x: torch.Tensor) -> int:
    """The model's output width from a pass on the meta device (no compute, no
    memory): the weights are swapped for meta stand-ins for that one call."""
    stand_ins = {name: torch.empty_like(t, device="meta")
                 for name, t in [*model.named_parameters(), *model.named_buffers()]}
    with torch.no_grad():
        return torch.func.functional_call(model, stand_ins, (x.to("meta"),)).shape[1]


def layer_step(layer: nn.Module, x: torch.Tensor,
               autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> TrainStep:
    """A single layer in train mode: the backward takes a fixed all-ones output
    gradient and computes the input's gradient too (as for a layer inside a network)."""
    layer.train()
    x = x.detach().requires_grad_(True)

    def forward() -> torch.Tensor:
        with autocast():
            return layer(x)

    with torch.no_grad():
        grad = torch.ones_like(forward())
    params = [p for p in layer.parameters() if p.requires_grad] + [x]
    return TrainStep(forward, lambda out: out.backward(grad), params)


def train_loop(step: TrainStep, marks: Marks, limits: Limits, *, batch: int = 1,
               now: Callable[[], float] = time.monotonic, hooks: "layerwise._UnitHooks | None" = None,
               desc: str = "train step") -> dict[str, Measurement]:
    """Warm up, then time up to ``iters`` training steps phase by phase (as
    ``timing.run_loop``: ``max_seconds`` counts from the first timed step).
    With ``hooks`` (``layerwise.unit_hooks``) every unit's forward and backward
    spans are collected too. Returns a Measurement per phase of ``PHASES`` run."""
    warmup, iters = limits.warmup, limits.iters
    for _ in tqdm(range(warmup), desc=f"{desc} warm-up", leave=False, disable=warmup == 0):
        if hooks:
            hooks.reset()
        step.run()
    marks.sync()  # nothing of the warm-up left queued when the budget's clock starts
    samples: dict[str, list[float]] = {p: [] for p in PHASES if p != "optimizer" or step.optimizer}
    stopped_early = False
    done = deadline(limits.max_seconds, limits.min_iters, now)
    for n in tqdm(range(iters), desc=desc, leave=False):
        step.zero_grad()  # outside the timed region
        if hooks:
            hooks.reset()
        a = marks.mark()
        out = step.forward()
        b = marks.mark()
        step.backward(out)
        c = marks.mark()
        last = c
        if step.optimizer:
            step.optimizer.step()
            last = marks.mark()
        marks.finish(last)
        samples["forward"].append(marks.elapsed(a, b))
        samples["backward"].append(marks.elapsed(b, c))
        samples["total"].append(marks.elapsed(a, c))
        if step.optimizer:
            samples["optimizer"].append(marks.elapsed(c, last))
        if hooks:
            hooks.collect((a, b), (b, c))
        if n + 1 < iters and done(n + 1):
            stopped_early = True
            break
    return {p: Measurement(s, batch, marks.clock, warmup, iters, stopped_early) for p, s in samples.items()}


def profile_train(model: nn.Module, x: torch.Tensor, req: Request,
                  units: list[Unit] | None) -> tuple[dict[str, Measurement], list | None, TrainStep]:
    """Time training steps of ``model`` (whole model, or per unit with ``units``),
    with an SGD step when ``req.with_optimizer``; returns the measurements, the
    unit profiles and the step (for its peak memory)."""
    device = torch.device(req.device)
    step = model_step(model, x, req, req.with_optimizer)
    marks = make_marks(req.clock, device) if units is None else layerwise.unit_marks(device)
    hooks = layerwise.unit_hooks(model, units, marks) if units else None
    try:
        got = train_loop(step, marks, Limits(req.warmup, req.iters, req.max_seconds, req.min_iters),
                         batch=req.input.batch, hooks=hooks, desc=f"{req.model} {req.input.tag} train")
    finally:
        if hooks:
            hooks.remove()
    return got, hooks.profiles if hooks else None, step
