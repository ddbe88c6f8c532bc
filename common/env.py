"""The environment a number was measured in: device, driver, versions, flags."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess

import torch

from common.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks the GPU when present; ``cuda``/``cuda:N`` must exist."""
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


def _driver_version() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def collect(device: torch.device) -> dict:
    """Everything a reader needs to know about where a number came from."""
    env = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host_cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
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
        )
    else:
        env.update(device_name=env["host_cpu"], driver=None)
    env["device_type"] = device.type
    return env


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def device_tag(env: dict) -> str:
    """Folder name for a device: ``nvidia-h100-80gb-hbm3`` or ``cpu-amd-epyc``."""
    if env["device_type"] == "cuda":
        return slug(env["device_name"])
    return "cpu-" + slug(env["host_cpu"])
