"""Worker side of a sweep: which device this worker owns, and one task run in its
own process (``python -m common request --json REQUEST`` or ``python -m common zoo ...``), so a crash, a kill or an
out-of-memory error ends that run only and never the worker or the next task.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from common.errors import UserError
from common.sweep import plan

ROOT = Path(__file__).resolve().parents[2]
_PROBED: dict[str, dict] = {}  # this worker process's device, probed once per device kind
# Run in a fresh process on the worker's GPU: the worker itself never initialises CUDA.
PROBE_CODE = ("import json, torch; from common import env; e = env.collect(torch.device('cuda', 0)); "
              "print(json.dumps({'tag': env.device_tag(e), **{k: e.get(k) for k in "
              "('host', 'device_name', 'gpu_index', 'gpu_uuid')}}))")


def visible_gpus() -> list[str]:
    """The GPUs this worker process may use: CUDA_VISIBLE_DEVICES where set, else every GPU nvidia-smi lists."""
    vis = os.environ.get("CUDA_VISIBLE_DEVICES")
    if vis is not None:
        out = []
        for e in (e.strip() for e in vis.split(",")):
            if not e or e.startswith("-"):
                break  # CUDA ignores everything from the first invalid entry on
            out.append(e)
        return out
    from common import env

    return [r[0] for r in env._nvidia_smi("index")]


def worker_name() -> str:
    return str(_worker().name) if _worker() else "local"


def _worker():
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def pinned_gpu(name: str) -> str | None:
    """This worker's GPU: the one it sees, or, where a job's workers all see several
    (a Slurm job of several GPUs), the one of its rank in the job (worker 'job-3-1' -> the second)."""
    vis = visible_gpus()
    if len(vis) <= 1:
        return vis[0] if vis else None
    rank = name.rsplit("-", 1)[-1]
    return vis[int(rank) % len(vis)] if rank.isdigit() else vis[0]


def child_env(gpu: str | None) -> dict:
    """The single run's environment: the worker's GPU only, the repository importable."""
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, CUDA_VISIBLE_DEVICES=gpu if gpu is not None else "", PYTHONUNBUFFERED="1",
                PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""))


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """A run never outlives its worker (a worker killed or closed takes its run along)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def probe(device_kind: str = "auto") -> dict:
    """Host, device tag, GPU index and UUID of this worker (cached in the worker process)."""
    if device_kind in _PROBED:
        return _PROBED[device_kind]
    name = worker_name()
    gpu = pinned_gpu(name) if device_kind != "cpu" else None
    if gpu is None:
        from common import env

        info = {**env.cpu_identity(), "gpu_index": None, "gpu_uuid": None}
    else:
        out = subprocess.run([sys.executable, "-c", PROBE_CODE], cwd=ROOT, env=child_env(gpu), capture_output=True,
                             text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"worker {name}: cannot use GPU {gpu}: {last_line(out.stderr) or out.returncode}")
        info = json.loads(out.stdout.strip().splitlines()[-1])
    info.update(worker=name, worker_name=name, gpu=gpu, device="cuda:0" if gpu is not None else "cpu")
    info["label"] = f"{info['host']} GPU {info['gpu_index']}" if gpu is not None else f"{info['host']} cpu/{name}"
    _PROBED[device_kind] = info
    return info


def last_line(text: str) -> str:
    """The last line of a run's stderr that is not a progress bar."""
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines()]
    lines = [ln for ln in lines if ln and "it/s]" not in ln and "s/it]" not in ln and "%|" not in ln]
    return lines[-1][:300] if lines else ""


def describe(code: int, stderr: str, timeout: float | None) -> str:
    if code is None:
        why = f"timed out after {timeout:g} s"
    elif code < 0:
        try:
            why = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            why = f"killed by signal {-code}"
    else:
        why = f"exit {code}"
    line = last_line(stderr)
    return f"{why}: {line}" if line else why


def _first_time(task: plan.Task, out_dir: str | None) -> bool:
    """The worker-kill test hook fires once per task and output folder (a marker file there)."""
    marker = Path(out_dir or ROOT) / f".sweep-test-killed-{hashlib.sha1(task.label.encode()).hexdigest()[:12]}"
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def run_task(task: plan.Task, out_dir: str | None, tag: str | None, device_kind: str = "auto",
             timeout: float | None = None, paths: dict[str, list[str] | str] | None = None) -> dict:
    """One request as one single run, in its own process. Returns its outcome:
    status done | skipped (a valid record exists) | failed (with reason; ``retry``
    says whether another worker could do better than a request that cannot be made).
    ``paths``: ``plan.paths_by_place``, the sweep's answer for each worker it probed;
    a worker it has not (one that joined later) works its paths out itself."""
    info = probe(device_kind)
    base = {"label": task.label, "worker": info["label"], "worker_name": info["worker"], "host": info["host"],
            "tag": tag or info["tag"], "tool": task.tool,
            "worker_addr": _worker().address if _worker() else None,
            "gpu_index": info["gpu_index"], "gpu_uuid": info["gpu_uuid"], "seconds": 0.0}
    if not plan.runs_on(task, info["device"]):  # a cluster of CPU and GPU workers: another may run it
        return {**base, "status": "failed", "reason": f"planned for {task.req().device}, this worker runs on "
                f"{info['device']}", "retry": True}
    known = (paths or {}).get(plan.place(info["device"], tag or info["tag"]))
    if known is None:
        known = plan.paths_by_place(task, {(info["device"], tag or info["tag"])}, out_dir).popitem()[1]
    if isinstance(known, str):
        return {**base, "status": "failed", "reason": known, "retry": False}
    paths = [Path(p) for p in known]
    path = paths[0]
    if all(plan.valid_record(p) for p in paths):
        return {**base, "status": "skipped", "record": str(path)}
    argv = [sys.executable, *task.argv(info["device"], out_dir, tag)]
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, env=child_env(info["gpu"]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    killer = threading.Timer(task.kill_after, proc.kill) if task.kill_after is not None else None
    if task.kill_worker_after is not None and _first_time(task, out_dir):
        killer = threading.Timer(task.kill_worker_after, os.kill, (os.getpid(), signal.SIGKILL))
    if killer:
        killer.start()
    try:
        out, err = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        code = None
    finally:
        if killer:
            killer.cancel()
    base["seconds"] = time.monotonic() - start
    missing = [p for p in paths if not plan.valid_record(p)]
    # A zoo run records its failed steps (failure records, reasons on stderr) and exits 0.
    from common.zoo.runrecord import FAILED_LINE

    failed = [ln[len(FAILED_LINE):] for ln in err.splitlines() if ln.startswith(FAILED_LINE)]
    if code == 0 and not missing and not failed:
        return {**base, "status": "done", "record": str(path), "written": out.split()}
    if code == 0 and task.tool == "zoo":
        reason = (f"{len(failed)} of {len(paths)} step(s) failed; last: {failed[-1][:250]}" if failed
                  else f"no record at {missing[0]}")
        return {**base, "status": "failed", "reason": reason, "retry": False, "record": str(path)}
    reason = describe(code, err, timeout) if code != 0 else f"exit 0 but no valid record at {path}"
    return {**base, "status": "failed", "reason": reason, "retry": code != UserError.exit_code}
