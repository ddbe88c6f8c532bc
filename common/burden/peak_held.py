"""The measured "peak held (CPU)" of the burden table: torch.profiler's allocator events.

Why a third way of measuring peak memory: the burden analysis runs on the ``meta``
device (no memory at all), and ``common.measure.memory.cpu_peak`` (peak RSS of a fresh
process) counts the interpreter, the libraries and the allocator's cached pages of
each model. Here one inference (CPU, batch 1, random weights) runs under
``torch.profiler`` with ``profile_memory=True``; the peak is the highest running sum
of the CPU allocator's allocation/free events during that forward: the activations
and temporaries PyTorch held beyond the resident parameters, buffers and input.

The runs happen in one worker process (one torch import for every job), fed by a
thread beside the main analysis. A worker that dies or overruns its time fails that
job only, with the reason it ended (``failures.child_failure``); the next job starts a fresh
worker.

    python -m common.burden.peak_held    # the worker: JSON jobs on stdin, results on stdout
"""
from __future__ import annotations

import gc
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import torch

from common import records
from common.measure.failures import child_failure
from common.registry import zoo
from common.burden.analysis import make_input

METHOD = ("worker process, CPU, batch 1, random weights, first inference: torch.profiler "
          "(profile_memory=True) allocation/free events of the forward, highest running sum "
          "(parameters, buffers and input were allocated before and are excluded)")
DEVICE = "cpu"
WORKER = [sys.executable, "-m", "common.burden.peak_held"]


def measure_peak(name: str, height: int, width: int, threads: int) -> dict:
    """One inference of ``name`` (CPU, batch 1) under torch.profiler's memory profiling:
    the highest running sum of allocations minus frees during the forward."""
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads)
    model = zoo.build(zoo.resolve(name), (height, width), "cpu")[0]
    x = make_input((height, width), 1, "cpu")
    t0 = time.perf_counter()
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model(x)
    seconds = time.perf_counter() - t0
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    running = peak = 0
    for e in events:
        running += e.nbytes()
        peak = max(peak, running)
    resident = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers(), x])
    return {"status": "measured", "peak_bytes": peak, "resident_bytes": resident, "threads": threads,
            "forward_s": seconds, "allocation_events": len(events)}


def worker() -> int:
    """Jobs on stdin, one JSON line each; one JSON result line per job on stdout. Anything
    else printed (profiler notices, warnings) goes to stderr."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    warnings.simplefilter("ignore")
    for line in sys.stdin:
        job = json.loads(line)
        try:
            res = measure_peak(job["name"], job["height"], job["width"], job["threads"])
        except Exception as exc:  # noqa: BLE001 - reported to the parent, the worker goes on
            res = {"status": "failed", "reason": zoo.oneline(exc)}
        gc.collect()
        out.write(json.dumps(res) + "\n")
        out.flush()
    return 0


class PeakRunner:
    """Feeds peak-memory jobs to one worker process, in a thread beside the main
    analysis. ``command`` replaces the worker (tests)."""

    def __init__(self, threads: int, timeout_s: float, command: list[str] | None = None):
        self.threads, self.timeout_s = threads, timeout_s
        self.command = command or WORKER
        self.jobs: queue.Queue = queue.Queue()
        self.results: dict[str, dict] = {}
        self.submitted = 0
        self.done = threading.Event()
        self._log = tempfile.TemporaryFile(mode="w+")
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def submit(self, name: str, size: tuple[int, int]) -> None:
        self.submitted += 1
        self.jobs.put({"name": name, "height": size[0], "width": size[1], "threads": self.threads})

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), PYTHONPATH=str(records.ROOT),
                   PYTHONDONTWRITEBYTECODE="1")
        return subprocess.Popen(self.command, cwd=str(records.ROOT), env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=self._log, text=True)

    def _last_log_line(self) -> str:
        try:
            self._log.seek(0)
            lines = [ln.strip() for ln in self._log.read().splitlines() if ln.strip()]
            self._log.seek(0, 2)
            return lines[-1][:200] if lines else "no output"
        except OSError:
            return "no output"

    def _one(self, proc: subprocess.Popen, job: dict) -> tuple[dict, bool]:
        """The result of one job, and whether the worker is still usable."""
        proc.stdin.write(json.dumps(job) + "\n")
        proc.stdin.flush()
        fired = threading.Event()  # set only when the timer itself killed the worker

        def overrun() -> None:
            fired.set()
            proc.kill()

        timer = threading.Timer(self.timeout_s, overrun)
        timer.start()
        try:
            line = proc.stdout.readline()
        finally:
            timer.cancel()
        if line:
            return json.loads(line), True
        rc = proc.wait()
        why, oom = child_failure(rc, self._last_log_line(), self.timeout_s if fired.is_set() else None)
        return {"status": "failed", "reason": f"worker process {why}", "out_of_memory": oom}, False

    def _loop(self) -> None:
        proc = None
        while (job := self.jobs.get()) is not None:
            try:
                if proc is None or proc.poll() is not None:
                    proc = self._start()
                res, alive = self._one(proc, job)
                proc = proc if alive else None
            except (OSError, ValueError) as exc:
                res, proc = {"status": "failed", "reason": zoo.oneline(exc)}, None
            self.results[job["name"]] = {**res, "device": DEVICE, "method": METHOD}
        if proc is not None:
            proc.stdin.close()
            proc.wait(timeout=60)
        self.done.set()

    def finish(self, progress: bool = True) -> dict[str, dict]:
        from tqdm import tqdm

        self.jobs.put(None)
        with tqdm(total=self.submitted, desc="peak memory (CPU)", unit="model", file=sys.stderr,
                  disable=not progress) as bar:
            while not self.done.wait(0.5):
                bar.n = len(self.results)
                bar.refresh()
            bar.n = len(self.results)
            bar.refresh()
        self._thread.join()
        return self.results


if __name__ == "__main__":
    sys.exit(worker())
