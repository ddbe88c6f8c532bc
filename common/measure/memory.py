"""Static memory (pytorch-memlab, corrected) and peak memory of one inference.

pytorch-memlab 0.3.x computes a tensor's memory as ``untyped_storage().size() *
element_size()``, but an untyped storage's size is already in bytes: an fp32
tensor is reported 4x too large. ``MemReporter`` below keeps memlab's listing and
replaces each figure by the storage's real byte count (rounded up to the caching
allocator's 512-byte blocks, as memlab intends). Whether memlab still has the bug
is checked on a probe tensor, so a fixed memlab is never corrected twice.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import subprocess
import sys
from typing import Callable

import torch

from common.derive import MIB
from common.errors import ChildFailed
from common.measure.failures import child_failure
from common.records import ROOT
from common.spec import Request


@functools.cache
def _memlab():
    """pytorch-memlab's reporter module, imported where a report is made: it imports pandas,
    a fifth of a second of every fresh process's start (each peak-memory child, each sweep task)."""
    with contextlib.redirect_stdout(io.StringIO()):  # memlab prints a CUDA notice on import
        from pytorch_memlab import mem_reporter
    return mem_reporter


def storage_bytes(t: torch.Tensor) -> int:
    """Bytes the caching allocator hands out for ``t``'s storage."""
    block = _memlab().PYTORCH_MIN_ALLOCATE
    return math.ceil(t.untyped_storage().nbytes() / block) * block


def _memlab_raw_bytes(t: torch.Tensor) -> int:
    """What unpatched memlab reports for a lone tensor."""
    memlab = _memlab().MemReporter
    rep = memlab()
    rep.device_mapping[t.device].append(t)
    memlab.get_stats(rep)
    return rep.device_tensor_stat[t.device][0][3]


def memlab_overcounts() -> bool:
    """True while memlab multiplies a byte count by the element size."""
    probe = torch.empty(1024, dtype=torch.float32)  # 4096 bytes, a multiple of 512
    return _memlab_raw_bytes(probe) != storage_bytes(probe)


@functools.cache
def reporter() -> type:
    """``MemReporter``: memlab's reporter, corrected (a class made once memlab is imported)."""

    class MemReporter(_memlab().MemReporter):
        """memlab's reporter with correct byte counts and named buffers/inputs."""

        def __init__(self, model: torch.nn.Module | None = None, named: dict[str, torch.Tensor] | None = None):
            super().__init__(model)
            if model is not None:
                for name, buf in model.named_buffers():
                    self.tensor_name[id(buf)] = name
            for name, t in (named or {}).items():
                self.tensor_name[id(t)] = name
            self._fix = memlab_overcounts()

        def get_stats(self) -> None:
            # memlab walks device_mapping in order, skipping empty tensors and adding
            # each parameter's .grad after it; mirror that walk to pair stats with tensors.
            order = {dev: [t for t in ts if t.numel() > 0] for dev, ts in self.device_mapping.items()}
            super().get_stats()
            if not self._fix:
                return
            for dev, tensors in order.items():
                walk = []
                for t in tensors:
                    walk.append(t)
                    if isinstance(t, torch.nn.Parameter) and t.grad is not None:
                        walk.append(t.grad)
                stats = self.device_tensor_stat[dev]
                assert len(stats) == len(walk), "memlab's tensor walk changed; update the correction"
                self.device_tensor_stat[dev] = [
                    (name, size, numel, storage_bytes(t) if mem else 0)  # 0: a storage already counted
                    for (name, size, numel, mem), t in zip(stats, walk)
                ]

    return MemReporter


def static_report(model: torch.nn.Module, x: torch.Tensor) -> dict:
    """memlab's listing of the tensors alive before inference (parameters,
    buffers, the input), their element count and corrected memory.

    memlab's own ``collect_tensor`` walks every object gc knows: right in a fresh
    process, wrong in a driver that ran other requests before (their leftovers, and
    the fake and opaque tensors a compile leaves, would count or crash the walk).
    The static set is named here instead."""
    rep = reporter()(model, {"input": x})
    tensors = [*model.parameters(), *model.buffers(), x]
    rep.device_mapping = {x.device: [t for t in tensors if t.device == x.device]}
    rep.get_stats()
    stats = rep.device_tensor_stat.get(x.device, [])
    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):
        rep.print_stats(verbose=False, target_device=x.device)
    return {
        "listing": listing.getvalue(),
        "tensors": len(stats),
        "elements": sum(s[2] for s in stats),
        "static_mib": sum(s[3] for s in stats) / MIB,
        "memlab_corrected": rep._fix,
    }


def gpu_peak(fn: Callable[[], object], device: torch.device, *, key: str = "inference",
             what: str = "inference", settle: Callable[[], None] = lambda: None) -> dict:
    """Peak allocator memory of one call of ``fn`` (an inference, or a training
    step), after one warm-up call (cuDNN workspaces and the allocator's pools are
    then in their steady state) and ``settle`` (e.g. clearing gradients)."""
    fn()
    settle()
    torch.cuda.synchronize(device)
    resident = torch.cuda.memory_allocated(device)
    reserved_before = torch.cuda.memory_reserved(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return {
        "method": f"torch.cuda.max_memory_allocated() over the 2nd {what}, minus memory_allocated() before it",
        "resident_mib": resident / MIB,
        "peak_allocated_mib": peak / MIB,
        f"peak_{key}_mib": (peak - resident) / MIB,
        "peak_reserved_mib": torch.cuda.max_memory_reserved(device) / MIB,
        "reserved_before_mib": reserved_before / MIB,
    }


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def limit_address_space(extra_bytes: int) -> None:
    """Let this process map at most ``extra_bytes`` more than it maps now, so that
    going beyond is an allocation error (one line) rather than the kernel's
    out-of-memory killer (exit 137, no line)."""
    import resource

    now = _rss_kib("VmSize") * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = now + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def cpu_peak_child(req: Request, threads: int, train: bool = False, limit_bytes: int | None = None) -> dict:
    """Run inside a fresh process: RSS growth of the first inference (or, with
    ``train``, of the first training step: forward, loss, backward, and the SGD
    step with ``req.with_optimizer``), in the request's precision (autocast) and
    memory format, as the timed run executes it. With ``limit_bytes`` the
    process may map at most that much more once the model and input are built."""
    from common import inputs, registry
    from common.measure import execution, training

    torch.set_num_threads(threads)
    start = _rss_kib("VmRSS")
    model = registry.build_for(req, "cpu")
    x = inputs.make(req.input, "cpu")
    with contextlib.ExitStack() as stack:
        stack.enter_context(execution.backend_flags(req))
        if train:
            run = training.model_step(model, x, req, req.with_optimizer).run
        else:
            stack.enter_context(torch.inference_mode())
            run = execution.prepare(model, x, req).fn  # channels-last (and compile) here, before the baseline
        before = _rss_kib("VmRSS")
        if limit_bytes is not None:
            limit_address_space(limit_bytes)
        reset = True
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM (peak RSS) to the current RSS
        except OSError:
            reset = False
        run()
        peak = _rss_kib("VmHWM")
    what = "training step" if train else "inference"
    return {
        "method": f"fresh process: VmHWM after the first {what} ({req.mode}) minus VmRSS before it "
                  "(/proc/self/status)",
        "start_mib": start / 1024,
        "resident_mib": before / 1024,
        "peak_rss_mib": peak / 1024,
        f"peak_{'train_step' if train else 'inference'}_mib": (peak - before) / 1024 if reset else None,
        "hwm_reset": reset,
    }


def cpu_peak(req: Request, train: bool = False, limit_bytes: int | None = None) -> dict:
    """Peak RSS of one inference (``train``: one training step) of ``req`` in a
    fresh process, with the request's threads (default: this process's count);
    ``limit_bytes``: the step may map at most that much (``cpu_peak_child``)."""
    threads = req.threads or torch.get_num_threads()
    args = [sys.executable, "-m", "common.measure.memory", json.dumps(req.to_dict()), str(threads),
            *(["train"] if train else []), *([f"limit={limit_bytes}"] if limit_bytes is not None else [])]
    out = subprocess.run(args, capture_output=True, text=True, cwd=str(ROOT))
    if out.returncode != 0:
        # Only a real out-of-memory is reported as one; any other failure keeps its reason.
        why, oom = child_failure(out.returncode, (out.stderr.strip().splitlines() or ["no output"])[-1])
        raise (MemoryError if oom else ChildFailed)(f"peak-memory child process failed: {why}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_main(argv: list[str]) -> None:
    """The child's entry point: REQUEST_JSON THREADS [train] [limit=BYTES]; prints one JSON line."""
    req_json, threads = argv[:2]
    req = Request.from_dict(json.loads(req_json))
    limit = next((int(a.split("=", 1)[1]) for a in argv[2:] if a.startswith("limit=")), None)
    print(json.dumps(cpu_peak_child(req, int(threads), train="train" in argv[2:], limit_bytes=limit)))


if __name__ == "__main__":
    child_main(sys.argv[1:])
