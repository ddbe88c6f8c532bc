"""A memory guard for CPU runs: estimate a run's footprint before measuring and
refuse, in one line naming the largest batch that fits, what cannot fit.

On a GPU running out of memory is a clean error (caught and answered with the
batch that fits); on the CPU an allocation that nearly fits drives the machine
into swap or the kernel's OOM killer instead. The estimate comes from one pass on
the meta device (no memory, no compute) that follows every op output while it is
alive: the peak of live activations, plus the weights, buffers and input (and for
a training step every forward output, which autograd keeps for the backward, plus
gradients and optimizer state).
"""
from __future__ import annotations

import weakref

import psutil
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from common import registry
from common.errors import UserError
from common.spec import Request

# The estimate leaves out the allocator's slack and the framework's own memory:
# refuse when it exceeds this share of the memory available now.
HEADROOM = 0.8
GIB = 2**30


class _LiveBytes(TorchDispatchMode):
    """Bytes of op outputs alive at once (views and in-place results add nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = self.total = 0

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        returns = func._schema.returns
        if returns and returns[0].alias_info is None:
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor):
                    nbytes = t.numel() * t.element_size()
                    self.live += nbytes
                    self.total += nbytes
                    weakref.finalize(t, self._free, nbytes)
        self.peak = max(self.peak, self.live)
        return out


def estimate_bytes(req: Request) -> int:
    """Estimated peak memory of one inference (or training step) of ``req``."""
    model = registry.build_for(req, "meta")
    x = torch.empty(req.input.shape, device="meta")
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    mode = _LiveBytes()
    with torch.inference_mode(), mode:
        model(x)
    if req.is_train:  # autograd keeps the forward's outputs; gradients and momentum double/triple the weights
        return weights * (3 if req.with_optimizer else 2) + buffers + x.numel() * 4 + mode.total
    return weights + buffers + x.numel() * 4 + mode.peak


def check_cpu(req: Request, available: int | None = None) -> None:
    """Raise one line when ``req`` on the CPU would not fit in the memory available."""
    if not req.device.startswith("cpu") or req.kind in ("structure", "layer-bench"):
        return
    available = psutil.virtual_memory().available if available is None else available
    need = estimate_bytes(req)
    budget = HEADROOM * available
    if need <= budget:
        return
    one = estimate_bytes(req.with_batch(1))
    per_image = max((need - one) / max(req.input.batch - 1, 1), 1)
    fits = int((budget - one) // per_image) + 1 if one <= budget else 0
    hint = f"batch {fits} fits" if fits >= 1 else "not even batch 1 fits"
    raise UserError(f"not enough memory for {req.model} at {req.input.describe()}: the run needs about "
                    f"{need / GIB:.1f} GiB (estimate) and {available / GIB:.1f} GiB is available; {hint} "
                    f"(largest batch under {HEADROOM:.0%} of the available memory)")
