"""Clocks, the warm-up/iteration loop, and statistics derived from raw samples.

Measuring is kept apart from formatting: everything here returns numbers in
milliseconds with their raw samples; ``common.render.txt`` turns them into text.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch
from tqdm import tqdm

from common import protocol as protocols
from common.protocol import MIN_ITERS

# A run is flagged noisy when its interquartile range exceeds this fraction of
# its median (the same rule torch.utils.benchmark uses to warn about variance).
NOISE_IQR_FRACTION = 0.10
# Samples are kept to 1 ns (6 decimals of a millisecond), below the resolution of either
# clock (CUDA events: about 0.5 us; perf_counter: tens of ns): the float's other digits
# are noise, and the records that hold every sample travel to the GPU machine, whose
# copy of the tree is capped.
SAMPLE_DECIMALS = 6
# Warm-up lasts at least this much wall time as well as its iteration count, so a
# fast model reaches steady clocks (and caches, allocator, cuDNN choices) first.
WARMUP_MIN_S = 1.0


@dataclass(frozen=True)
class Stats:
    n: int
    mean_ms: float
    std_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    iqr_ms: float
    fps: float  # images per second: 1000 / mean_ms x batch
    noisy: bool

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def summarize(samples_ms: list[float], batch: int = 1) -> Stats:
    """Statistics of raw per-iteration times (ms). std is the sample std (ddof=1)."""
    if not samples_ms:
        raise ValueError("no samples to summarize")
    a = np.asarray(samples_ms, dtype=np.float64)
    q25, median, q75, p90, p99 = np.percentile(a, [25, 50, 75, 90, 99])
    mean = float(a.mean())
    iqr = float(q75 - q25)
    return Stats(
        n=len(a),
        mean_ms=mean,
        std_ms=float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        median_ms=float(median),
        p90_ms=float(p90),
        p99_ms=float(p99),
        min_ms=float(a.min()),
        max_ms=float(a.max()),
        iqr_ms=iqr,
        fps=1000.0 / mean * batch if mean > 0 else float("inf"),
        noisy=iqr > NOISE_IQR_FRACTION * float(median),
    )


@dataclass
class Measurement:
    """Raw samples of one timed loop; statistics are derived, never stored alone."""

    samples_ms: list[float]
    batch: int
    clock: str
    warmup: int
    requested_iters: int
    stopped_early: bool = False  # --max-seconds cut the loop short
    extra: dict = field(default_factory=dict)

    @property
    def stats(self) -> Stats:
        return summarize(self.samples_ms, self.batch)

    def to_dict(self) -> dict:
        return {
            "clock": self.clock,
            "warmup": self.warmup,
            "requested_iters": self.requested_iters,
            "iters": len(self.samples_ms),
            "stopped_early": self.stopped_early,
            "stats": self.stats.to_dict(),
            "samples_ms": self.samples_ms,
            **self.extra,
        }


class Clock(Protocol):
    name: str

    def start(self) -> object: ...

    def stop(self, token: object) -> float:
        """Elapsed ms since ``start`` returned ``token``, after the device finished."""
        ...

    def sync(self) -> None:
        """Wait until the device has finished all the work queued so far."""
        ...


class Marks(Protocol):
    """Time marks dropped inside one iteration (by hooks or between phases);
    ``finish`` waits once per iteration for the last mark to have happened."""

    clock: str

    def mark(self) -> object: ...

    def finish(self, last: object) -> None: ...

    def elapsed(self, a: object, b: object) -> float:
        """ms from mark ``a`` to mark ``b``."""
        ...

    def sync(self) -> None: ...


class CudaMarks:
    """CUDA events recorded on the current stream: marks cost no synchronization."""

    clock = "cuda-event"

    def mark(self) -> torch.cuda.Event:
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev

    def finish(self, last: object) -> None:
        last.synchronize()  # type: ignore[attr-defined]

    def elapsed(self, a: object, b: object) -> float:
        return round(a.elapsed_time(b), SAMPLE_DECIMALS)  # type: ignore[attr-defined]

    def sync(self) -> None:
        torch.cuda.synchronize()


class HostMarks:
    """perf_counter marks; ``sync`` (the GPU's synchronize, a no-op on the CPU)
    runs before each reading so a mark means the device finished the work."""

    clock = "perf_counter"

    def __init__(self, sync: Callable[[], None] = lambda: None):
        self._sync = sync

    def mark(self) -> float:
        self._sync()
        return time.perf_counter()

    def finish(self, last: object) -> None:
        pass

    def elapsed(self, a: object, b: object) -> float:
        return round((b - a) * 1e3, SAMPLE_DECIMALS)  # type: ignore[operator]

    def sync(self) -> None:
        self._sync()


def make_marks(clock: str, device: torch.device) -> Marks:
    if clock == "cuda-event":
        return CudaMarks()
    return HostMarks((lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None))


class MarkClock:
    """A Clock made of two marks: start, work, stop (one wait for the stop mark).
    On a GPU with perf_counter this synchronizes *before* reading the end time,
    so it times the work and not only the kernel launches."""

    def __init__(self, marks: Marks):
        self.marks = marks
        self.name = marks.clock

    def start(self) -> object:
        return self.marks.mark()

    def stop(self, token: object) -> float:
        end = self.marks.mark()
        self.marks.finish(end)
        return self.marks.elapsed(token, end)

    def sync(self) -> None:
        self.marks.sync()


def make_clock(name: str, device: torch.device) -> Clock:
    return MarkClock(make_marks(name, device))


def deadline(max_seconds: float | None, min_iters: int,
             now: Callable[[], float] = time.monotonic, cap_s: float | None = None) -> Callable[[int], bool]:
    """``done(n)``: True once ``n >= min_iters`` samples exist and ``max_seconds``
    have passed since this call, or once another sample would end past ``cap_s``
    (``common.protocol.stop_after``); always False without a time budget."""
    if max_seconds is None:
        return lambda n: False
    rule = protocols.Protocol("loop", 0, 2**62, max_seconds, min_iters, cap_s=cap_s)
    start = now()
    return lambda n: protocols.stop_after(rule, n, now() - start)


def expected_iters(n: int, elapsed_s: float, max_seconds: float, iters: int, min_iters: int) -> int:
    """How many iterations a loop bounded by ``max_seconds`` will run, judged after
    ``n`` of them took ``elapsed_s``: what a progress bar should count to."""
    if elapsed_s <= 0:
        return iters
    return max(n, min(iters, max(min_iters, math.ceil(n * max_seconds / elapsed_s))))


@dataclass(frozen=True)
class Limits:
    """How many iterations a loop warms up and times, and the time budget that may
    stop the timed part early (after ``min_iters`` samples)."""

    warmup: int
    iters: int
    max_seconds: float | None = None
    min_iters: int = MIN_ITERS


def run_loop(
    fn: Callable[[], object],
    clock: Clock,
    warmup: int,
    iters: int,
    *,
    batch: int = 1,
    max_seconds: float | None = None,
    min_iters: int = MIN_ITERS,
    now: Callable[[], float] = time.monotonic,
    desc: str = "timing",
    warmup_s: float = 0.0,
    probe: Callable[[], dict] | None = None,
    cap_s: float | None = None,
) -> Measurement:
    """Warm up ``fn`` ``warmup`` times and for at least ``warmup_s`` seconds
    (with ``warmup`` > 0), then time up to ``iters`` calls.

    With ``max_seconds`` the timed loop stops once that much wall time has passed
    since it began, but only after ``min_iters`` samples, or before a sample that would
    end past ``cap_s`` (``common.protocol``). ``probe()`` (the GPU's
    clocks) is read just before and just after the timed loop.
    """
    # The host only queues work on a GPU: a warm-up ended by host time could leave
    # thousands of iterations queued (CUDA graph replays launch in microseconds), and
    # the timed loop's budget would be spent draining them. So each warm-up iteration
    # is waited for, and nothing is queued when the probe is read and the clock starts.
    t0, done_warm = now(), 0
    with tqdm(total=warmup, desc=f"{desc} warm-up", leave=False, disable=warmup == 0) as bar:
        while done_warm < warmup or (warmup and now() - t0 < warmup_s):
            fn()
            clock.sync()
            done_warm += 1
            bar.update(1)
    clock.sync()
    extra: dict = {}
    if warmup and warmup_s:
        extra.update(warmup_min_s=warmup_s, warmup_iters_run=done_warm, warmup_seconds=now() - t0)
    if probe is not None:
        extra["clocks"] = {"start": probe()}
    samples: list[float] = []
    done = deadline(max_seconds, min_iters, now, cap_s)
    stopped_early = False
    start = now()
    with tqdm(total=iters, desc=desc, leave=False) as bar:
        for i in range(iters):
            token = clock.start()
            fn()
            samples.append(clock.stop(token))
            if max_seconds is not None:  # the bar's total and estimate follow the time budget
                bar.total = expected_iters(len(samples), now() - start, max_seconds, iters, min_iters)
            bar.update(1)
            if i + 1 < iters and done(len(samples)):
                stopped_early = True
                break
    if probe is not None:
        extra["clocks"]["end"] = probe()
    return Measurement(samples, batch, clock.name, warmup, iters, stopped_early, extra)
