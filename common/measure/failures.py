"""What a failed measurement means: the device ran out of memory, the build or
device cannot run the mode, or neither (a bug, which must surface).

A leaf module (no project imports besides errors), so that both the mode search
(``execution``) and the OOM probe (``oom``) can classify errors without a cycle.
"""
from __future__ import annotations

import signal

import torch

from common.errors import UserError

# Words of an allocator failure (CUDA's caching allocator, the CPU allocator, glibc).
OOM_WORDS = ("out of memory", "can't allocate memory", "not enough memory", "failed to allocate")
# Words with which PyTorch, cuDNN, Inductor and Triton say an op, a dtype or a
# feature is not there on this build or device: a mode they cannot run.
UNSUPPORTED_WORDS = ("not implemented for", "not supported", "unsupported", "no kernel image",
                     "is not available", "cannot find a working triton", "not compiled with",
                     "requires a gpu", "only supported on")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors it was raised from (compile wraps the real error)."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def first_line(exc: BaseException, limit: int = 160) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


def is_oom(exc: BaseException) -> bool:
    """True when ``exc`` (or an error it wraps) is the device running out of memory."""
    for e in _chain(exc):
        if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
            return True
        if isinstance(e, RuntimeError) and any(w in str(e).lower() for w in OOM_WORDS):
            return True
    return False


def unsupported_reason(exc: BaseException) -> str | None:
    """The reason when ``exc`` says the build/device cannot run a mode (a check of
    ``execution.check_supported``, a missing kernel, an op or dtype without an
    implementation); None for any other error."""
    for e in _chain(exc):
        if isinstance(e, (UserError, NotImplementedError)):
            return first_line(e)
        if isinstance(e, RuntimeError) and any(w in str(e).lower() for w in UNSUPPORTED_WORDS):
            return first_line(e)
    return None


def child_failure(returncode: int, last_line: str, timed_out_s: float | None = None) -> tuple[str, bool]:
    """Why a measuring child process ended without a result, and whether it ran out of
    memory: a memory error it printed last, or a SIGKILL the parent did not send (the
    kernel's out-of-memory killer). A timeout the parent enforced (``timed_out_s``),
    other signals and other exits keep their own reason."""
    if timed_out_s is not None:
        return f"timed out after {timed_out_s:g} s; last output: {last_line}", False
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode).name
        except ValueError:
            sig = f"signal {-returncode}"
        oom = -returncode == signal.SIGKILL
        why = " (sent by the kernel's out-of-memory killer: out of memory)" if oom else ""
        return f"killed by {sig}{why}; last output: {last_line}", oom
    oom = any(w in last_line.lower() for w in OOM_WORDS) or "MemoryError" in last_line
    return f"exit {returncode}: {last_line}", oom
