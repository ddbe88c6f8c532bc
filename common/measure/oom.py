"""After running out of memory: the largest halved batch that fits.

``one_step_fits`` runs ONE inference of the request at another batch through
``execution.prepare`` (so precision, channels-last, CUDA graph and compile apply,
as in the timed run), or one training step for a training request.
"""
from __future__ import annotations

import gc
from typing import Callable

import torch

from common import inputs, registry
from common.measure import execution, training
from common.measure.failures import is_oom  # noqa: F401 - re-exported: oom.is_oom
from common.spec import Request


def largest_fitting_batch(batch: int, fits: Callable[[int], bool]) -> tuple[int | None, list[int]]:
    """Halve ``batch`` until ``fits(b)``; returns (the batch that fit or None, batches tried)."""
    tried = []
    b = batch // 2
    while b >= 1:
        tried.append(b)
        if fits(b):
            return b, tried
        b //= 2
    return None, tried


def one_step_fits(req: Request, batch: int) -> bool:
    """One inference (or training step) of ``req`` at ``batch``: does it fit in memory?
    Any error other than running out of memory propagates."""
    req = req.with_batch(batch)
    device = torch.device(req.device)
    model = x = None
    try:
        model = registry.build_for(req, device)
        x = inputs.make(req.input, device)
        with execution.backend_flags(req):
            if req.is_train:
                training.model_step(model, x, req, req.with_optimizer).run()
            else:
                with torch.inference_mode():
                    # prepare applies channels-last, compiles and captures the CUDA graph
                    # (running the model as many times as that takes); then one inference.
                    execution.prepare(model, x, req).fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # an asynchronous failure surfaces here, not later
        return True
    except Exception as exc:  # noqa: BLE001 - only memory errors mean "does not fit"
        if is_oom(exc):
            return False
        raise
    finally:
        model = x = None
        if device.type == "cuda":
            gc.collect()  # a failed capture or compile leaves reference cycles holding device memory
            torch.cuda.empty_cache()
