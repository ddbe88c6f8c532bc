"""The environment a number was measured in: device, driver, versions, flags."""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import re
import socket
import subprocess
from typing import TYPE_CHECKING, Iterator
import uuid

from common.errors import UserError

# torch is imported where it is used: a sweep's Dask workers name their CPU (cpu_identity)
# and never build a model, so they start without it.
if TYPE_CHECKING:
    import torch


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """PyTorch's CPU threads set to ``n`` (None: left as they are) for the block and
    restored after it: a request's --threads must not leak into the caller's later work."""
    import torch

    check_threads(n)
    before = torch.get_num_threads()
    try:
        if n:
            torch.set_num_threads(n)
        yield
    finally:
        torch.set_num_threads(before)


def too_many_threads(n: int | None) -> str | None:
    """Why ``--threads n`` is refused (after the flag's name), or None: threads beyond the
    cores this process may use wait on each other and disturb every timing."""
    cores = len(cpu_affinity() or ()) or os.cpu_count() or 1
    if n and n > cores:
        return f"{n} is more than the {cores} core(s) this process may use; use --threads {cores} or fewer"
    return None


def check_threads(n: int | None) -> None:
    """``too_many_threads`` as a UserError: a request built elsewhere (a sweep task, a child)."""
    why = too_many_threads(n)
    if why:
        raise UserError(f"--threads {why}")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks the GPU when present; ``cuda``/``cuda:N`` must exist."""
    import torch

    if name == "auto":
        name = "cuda:0" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return torch.device("cpu")  # "cpu:0" names the same device
    if dev.type != "cuda":
        raise UserError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but no CUDA GPU is available")
    index = 0 if dev.index is None else dev.index
    if index >= torch.cuda.device_count():
        raise UserError(f"device {name!r} does not exist: {torch.cuda.device_count()} GPU(s) present")
    return torch.device("cuda", index)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_smi(query: str) -> list[list[str]]:
    """Rows of ``nvidia-smi --query-gpu=QUERY`` (every GPU of the host, whatever
    CUDA_VISIBLE_DEVICES says); [] where nvidia-smi is missing or fails."""
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [[c.strip() for c in line.split(",")] for line in out.stdout.strip().splitlines() if line.strip()]


def _driver_version() -> str:
    rows = _nvidia_smi("driver_version")
    return rows[0][0] if rows and rows[0][0] else "unknown"


def gpu_identity(device: torch.device, props: object) -> dict:
    """Which physical GPU ``device`` is: its UUID (as nvidia-smi writes it) and its
    index among the host's GPUs (nvidia-smi's numbering, not the process's, which
    CUDA_VISIBLE_DEVICES renumbers from 0); a sweep refuses two workers on one UUID."""
    raw = getattr(props, "uuid", None)
    uuid = None if raw is None else str(raw) if str(raw).startswith("GPU-") else f"GPU-{raw}"
    index = 0 if device.index is None else device.index
    physical = next((int(r[0]) for r in _nvidia_smi("index,uuid") if len(r) == 2 and r[1] == uuid), None)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if physical is None and visible:
        entries = [e.strip() for e in visible.split(",")]
        physical = int(entries[index]) if index < len(entries) and entries[index].isdigit() else None
    return {"gpu_index": physical if physical is not None else index, "gpu_uuid": uuid,
            "cuda_visible_devices": visible}


def cpu_affinity() -> list[int] | None:
    """The CPUs this process may run on (``os.sched_getaffinity``); None where unknown."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def cpu_governor(root: str = "/sys/devices/system/cpu") -> str:
    """The frequency governor(s) of the CPUs this process may use, e.g. 'performance'
    or 'powersave, performance'; 'unreadable' where cpufreq is not exposed (VMs, containers)."""
    cpus = cpu_affinity() or range(os.cpu_count() or 1)
    seen = []
    for c in cpus:
        try:
            with open(f"{root}/cpu{c}/cpufreq/scaling_governor") as f:
                g = f.read().strip()
        except OSError:
            continue
        if g and g not in seen:
            seen.append(g)
    return ", ".join(seen) if seen else "unreadable"


def cpu_facts() -> dict:
    """Threads, affinity and governor: what a CPU timing depends on besides the model."""
    import torch

    aff = cpu_affinity()
    return {"interop_threads": torch.get_num_interop_threads(), "cpu_affinity": aff,
            "cpu_affinity_count": len(aff) if aff is not None else None, "cpu_governor": cpu_governor(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def collect(device: torch.device) -> dict:
    """Everything a reader needs to know about where a number came from."""
    import torch

    env = {
        # Milliseconds order runs started within one second; the run id tells runs apart
        # (common.records keeps each concurrent run of one request, and never one twice).
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
        "run_id": uuid.uuid4().hex,
        "host": socket.gethostname(),
        "host_cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        **cpu_facts(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            device_name=props.name,
            device_memory_mib=props.total_memory / 2**20,
            sm_count=props.multi_processor_count,
            driver=_driver_version(),
            **gpu_identity(device, props),
        )
    else:
        env.update(device_name=env["host_cpu"], driver=None)
    env["device_type"] = device.type
    return env


def cpu_identity() -> dict:
    """Host, CPU model and device tag of this machine's CPU, as ``collect`` and
    ``device_tag`` give them, without importing torch."""
    name = cpu_model()
    return {"host": socket.gethostname(), "device_name": name,
            "tag": device_tag({"device_type": "cpu", "host_cpu": name})}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def device_tag(env: dict) -> str:
    """Folder name for a device: ``nvidia-h100-80gb-hbm3`` or ``cpu-amd-epyc``."""
    if env["device_type"] == "cuda":
        return slug(env["device_name"])
    return "cpu-" + slug(env["host_cpu"])
