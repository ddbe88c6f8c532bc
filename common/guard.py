"""A memory guard for CPU runs: estimate a run's footprint before measuring and
refuse, in one line naming the largest batch that fits, what cannot fit; and a
limit on the address space while measuring, so that whatever the estimate missed
ends as an allocation error (one line) and never as the kernel's OOM kill.

On a GPU running out of memory is a clean error (caught and answered with the
batch that fits); on the CPU an allocation that nearly fits drives the machine
into swap or the kernel's OOM killer instead (exit 137, no line).

Two estimates. The first comes from one pass on the meta device (no memory, no
compute) that follows every op output while it is alive: the peak of live
activations, plus the weights, buffers and input (and for a training step every
forward output, which autograd keeps for the backward, plus gradients and
optimizer state). It misses the kernels' workspaces and layout copies (VGG-16 at
Cityscapes: about 1.0 GiB of activations per image on the meta device, 1.5 GiB
measured), so it decides alone only when FAST_FACTOR times it still fits. Else
the second decides: one image at the request's size measured in a fresh process
(``memory.cpu_peak`` under an address-space limit): that process's framework,
the model, and the peak RSS growth of the step, the last taken per image and
scaled with the batch times MARGIN. docs/methods.md compares both with peaks
measured at batch 1, 2 and 4 (``scripts/guard_table.py``).
"""
from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from common import registry
from common.errors import ChildFailed, UserError
from common.spec import Request

# The estimates leave out the allocator's slack: refuse when one exceeds this
# share of the memory available now.
HEADROOM = 0.8
GIB = 2**30
# The measured growth of one image, times this, per image of the batch: the growth
# per image is not quite constant in the batch (the kernels pick other algorithms
# and workspaces), and the timed loop may fragment the heap a little beyond one step.
MARGIN = 1.25
# Without a measurement the meta-device estimate times FAST_FACTOR, plus a fresh
# process's framework (FRAMEWORK), must fit: far below the memory available there is
# nothing to measure (docs/methods.md's table compares this bound with measured peaks).
FAST_FACTOR = 3.0
FRAMEWORK = GIB
# Address space a process maps beyond its resident memory: thread stacks and the
# C library's per-thread heaps (64 MiB reserved each), per thread, plus a constant.
MAP_SLACK, MAP_PER_THREAD = GIB, 128 * 2**20


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
    if not _guarded(req):
        return
    available = psutil.virtual_memory().available if available is None else available
    budget = HEADROOM * available
    meta = estimate_bytes(req)
    if FAST_FACTOR * meta + FRAMEWORK <= budget:
        return
    fp = footprint(req, int(budget))
    need = fp.need(req.input.batch)
    if need <= budget:
        return
    fits = fp.largest(budget)
    hint = f"batch {fits} fits" if fits >= 1 else "not even batch 1 fits"
    raise UserError(f"not enough memory for {req.model} at {req.input.describe()}: the run needs about "
                    f"{need / GIB:.1f} GiB ({fp.describe()}) and {available / GIB:.1f} GiB is available; {hint} "
                    f"(largest batch under {HEADROOM:.0%} of the available memory)")


def _guarded(req: Request) -> bool:
    return req.device.startswith("cpu") and req.kind not in ("structure", "layer-bench")


@dataclass(frozen=True)
class Footprint:
    """One probe: a fresh process's framework, the model and input it built, and
    the peak RSS growth of ``batch`` images' step (bytes)."""
    framework: int
    built: int
    growth: int
    batch: int

    @property
    def per_image(self) -> float:
        return self.growth / self.batch

    def need(self, batch: int) -> int:
        """The estimated peak RSS of a fresh process running ``batch`` images' step."""
        return int(self.framework + self.built + MARGIN * self.per_image * batch)

    def largest(self, budget: float) -> int:
        return max(int((budget - self.framework - self.built) // max(MARGIN * self.per_image, 1)), 0)

    def describe(self) -> str:
        return (f"measured: {self.per_image / GIB:.2f} GiB per image at batch {self.batch} x {MARGIN:g} margin, "
                f"plus {(self.framework + self.built) / GIB:.1f} GiB for the framework and model")


def probe_batch(req: Request) -> int:
    """A training step's batch norm needs two values per channel: train probes use two images."""
    return 2 if req.is_train else 1


def footprint(req: Request, budget: int) -> Footprint:
    """The request's step at ``probe_batch`` images, measured in a fresh process
    that may map at most ``budget`` beyond its model and input: one line if even that
    does not fit, whatever the step does."""
    b = probe_batch(req)
    if estimate_bytes(req.with_batch(b)) > budget:
        raise UserError(f"not enough memory for {req.model} at {req.input.describe()}: even batch {b} needs about "
                        f"{estimate_bytes(req.with_batch(b)) / GIB:.1f} GiB (meta-device estimate, a lower bound) "
                        f"and {budget / HEADROOM / GIB:.1f} GiB is available")
    try:
        return _probe(req.with_batch(b), budget)
    except (MemoryError, ChildFailed) as exc:
        raise UserError(f"not enough memory for {req.model} at {req.input.describe()}: a probe of batch {b} in a "
                        f"process limited to {budget / GIB:.1f} GiB ({HEADROOM:.0%} of the available memory) "
                        f"failed: {str(exc).splitlines()[0][:200]}") from None


_PROBED: dict[Request, Footprint] = {}  # the throughput search asks at many batches: one probe per request


def _probe(req: Request, budget: int) -> Footprint:
    if req in _PROBED:
        return _PROBED[req]
    from common.measure import memory

    got = memory.cpu_peak(req, train=req.is_train, limit_bytes=budget + _map_slack(req))
    growth = got["peak_train_step_mib" if req.is_train else "peak_inference_mib"]
    if growth is None:  # the peak could not be reset: the whole process's peak bounds the step's
        growth = got["peak_rss_mib"] - got["resident_mib"]
    mib = 2**20
    fp = _PROBED[req] = Footprint(framework=int(got["start_mib"] * mib),
                                  built=int((got["resident_mib"] - got["start_mib"]) * mib),
                                  growth=int(growth * mib), batch=req.input.batch)
    return fp


def _map_slack(req: Request) -> int:
    return MAP_SLACK + MAP_PER_THREAD * (req.threads or torch.get_num_threads())


@contextlib.contextmanager
def address_limit(req: Request, available: int | None = None) -> Iterator[None]:
    """While measuring ``req`` on the CPU, this process may map at most HEADROOM of
    the memory available (plus thread stacks and heaps) beyond what it maps now: an
    allocation beyond is a MemoryError, reported in one line, where the kernel would
    have killed the process. The earlier limit is restored afterwards."""
    if not _guarded(req):
        yield
        return
    import resource

    from common.measure import memory

    available = psutil.virtual_memory().available if available is None else available
    old = resource.getrlimit(resource.RLIMIT_AS)
    memory.limit_address_space(int(HEADROOM * available) + _map_slack(req))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)
