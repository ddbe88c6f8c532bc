"""Two bad-input cases that need more than a command line: a sweep interrupted
mid-run (Ctrl-C, i.e. SIGINT to the terminal's whole process group, or SIGTERM),
and a CPU batch beyond what the memory guard lets through. Each function runs
the case for real in fresh processes and returns one row in the shape of
``scripts/bad_inputs.py``'s rows (what, command, code, line, one_line, written,
traceback) plus ``ok``, the case's own verdict: for a sweep, one line, exit 130
or 143, no traceback, the summary record written and no process left (records of
finished tasks are kept, not "nothing written"); for the guard, one line, exit 2,
no traceback, nothing written.

    python scripts/limit_cases.py [sweep-sigint|sweep-sigterm|sweep-sigterm-group|guard]...   # prints the rows as JSON lines
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Small, slow enough tasks that some finish and some are running when the signal comes.
SWEEP = ["--device", "cpu", "--workers", "2", "--models", "resnet18", "--inputs", "32x32", "40x40", "48x48",
         "56x56", "64x64", "72x72", "--iters", "400", "--warmup", "0", "--threads", "1", "--no-dashboard",
         "--name", "interrupted"]


def terminal_lines(raw: bytes) -> list[str]:
    """stderr as a terminal shows it at the end (each line as its last carriage return left it)."""
    return [seg for line in raw.decode("utf-8", "replace").split("\n") if (seg := line.split("\r")[-1].strip())]


def _session_alive(sid: int) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True).stdout
    return [ln.strip() for ln in out.splitlines() if ln.split()[1:2] == [str(sid)]]


def interrupted_sweep(sig: int = signal.SIGINT, to_group: bool = True, out: Path | None = None,
                      after_records: int = 1, iters: int | None = None, workers: int | None = None) -> dict:
    """A real local sweep (2 CPU workers, tiny inputs) in its own session; once
    ``after_records`` timing records exist, ``sig`` goes to the whole process group
    (a terminal's Ctrl-C) or, without ``to_group``, to the sweep's process only.
    ``iters`` replaces SWEEP's timed iterations (the tests' shorter tasks: six tasks on
    two workers leave some unfinished at the first record whatever their length); ``workers``
    replaces its worker count."""
    sweep = list(SWEEP)
    if iters is not None:
        sweep[sweep.index("--iters") + 1] = str(iters)
    if workers is not None:
        sweep[sweep.index("--workers") + 1] = str(workers)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(out or tmp)
        argv = [sys.executable, "-m", "common", "sweep", *sweep, "--out-dir", str(out)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        # A terminal's Ctrl-C, even where this runs in the background (which ignores SIGINT, and
        # an ignored signal stays ignored in the sweep it starts).
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        timing = out / "results" / "records"
        t0 = time.monotonic()
        while proc.poll() is None and time.monotonic() - t0 < 600:
            if len(list(timing.glob("*/timing/*.json"))) >= after_records:
                break
            time.sleep(0.2)
        sent = proc.poll() is None
        if sent:
            os.killpg(proc.pid, sig) if to_group else proc.send_signal(sig)
        stdout, raw = proc.communicate(timeout=300)
        leftover = []
        for _ in range(150):  # workers and their runs need a moment to go (up to 30 s on a loaded machine)
            leftover = _session_alive(proc.pid)
            if not leftover:
                break
            time.sleep(0.2)
        summaries = list(timing.glob("*/sweep/interrupted.json"))
        summary = json.loads(summaries[0].read_text())["result"] if summaries else None
        records = sorted(p.name for p in timing.glob("*/timing/*.json"))
        lines = terminal_lines(raw)
        # The sweep's own opening line is not part of the answer to the signal.
        answer = [ln for ln in lines if " task(s) on " not in ln]
        name = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}.get(sig, str(sig))
        ok = (sent and len(answer) == 1 and proc.returncode in (130, 143) and b"Traceback" not in raw
              and summary is not None and not leftover)
        return {"ok": ok,"what": f"sweep: {name} to {'the process group' if to_group else 'the sweep'}"
                f"{' (Ctrl-C in a terminal)' if to_group and sig == signal.SIGINT else ''} mid-run",
                "command": " ".join(["python", "-m", "common", "sweep", *sweep]), "code": proc.returncode,
                "line": answer[-1] if answer else "", "one_line": len(answer) == 1, "lines": lines,
                "written": len(records), "traceback": b"Traceback" in raw, "signal_sent": sent,
                "summary": summary, "records": records, "stdout": stdout.decode(), "leftover": leftover}


def guard_at_limit(model: str = "resnet18", size: str = "1024x2048", available_gib: float | None = None) -> dict:
    """A CPU timer run at a batch beyond the largest the memory guard lets through
    (measured by the guard's own probe here, then typed as a user would)."""
    sys.path.insert(0, str(ROOT))
    import psutil

    from common import guard, inputs
    from common.spec import Request

    available = psutil.virtual_memory().available if available_gib is None else int(available_gib * guard.GIB)
    req = Request(kind="timing", model=model, device="cpu", clock="perf_counter", input=inputs.resolve(None, size, 1))
    fp = guard.footprint(req, int(guard.HEADROOM * available))
    # Half as much again as the largest batch the guard lets through: still refused
    # if other processes free some memory before the run starts.
    batch = (fp.largest(guard.HEADROOM * available) * 3 + 1) // 2 + 1
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "common", "time", "--model", model, "--device", "cpu", "--size", size,
                "--batch", str(batch), "--iters", "2", "--warmup", "0", "--out-dir", tmp]
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        written = [p for p in Path(tmp).rglob("*") if p.is_file()]
    lines = terminal_lines(proc.stderr)
    ok = len(lines) == 1 and proc.returncode == 2 and b"Traceback" not in proc.stderr and not written \
        and "not enough memory" in lines[0]
    return {"ok": ok,"what": f"CPU batch beyond what the memory guard lets through ({model} {size} batch {batch})",
            "command": " ".join(["python", *argv[1:-2]]), "code": proc.returncode,
            "line": lines[-1] if lines else "", "one_line": len(lines) == 1, "written": len(written),
            "traceback": b"Traceback" in proc.stderr, "batch": batch}


CASES = {"sweep-sigint": lambda: interrupted_sweep(signal.SIGINT),
         "sweep-sigterm": lambda: interrupted_sweep(signal.SIGTERM, to_group=False),
         "sweep-sigterm-group": lambda: interrupted_sweep(signal.SIGTERM),
         "guard": guard_at_limit}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(CASES):
        print(json.dumps(CASES[name]()))
