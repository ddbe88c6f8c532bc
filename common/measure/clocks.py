"""The GPU's clocks, power and temperature at a moment (start and end of a timed loop).

NVML through ``pynvml`` (the ``nvidia-ml-py`` package) when it imports; else the
``torch.cuda`` helpers that exist in this build (``clock_rate``, ``power_draw``,
``temperature``, themselves NVML-backed); a value that cannot be read is
``None`` and ``source`` says "unknown". Never raises: this is evidence beside a
measurement, not the measurement.
"""
from __future__ import annotations

import contextlib

import torch

FIELDS = ("sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c")


def _nvml_handle(device: torch.device):
    import pynvml  # noqa: PLC0415 - optional

    pynvml.nvmlInit()
    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    if uuid is not None:
        text = str(uuid)
        with contextlib.suppress(Exception):
            return pynvml, pynvml.nvmlDeviceGetHandleByUUID(text if text.startswith("GPU-") else f"GPU-{text}")
    return pynvml, pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)


def _nvml(device: torch.device) -> dict:
    nv, h = _nvml_handle(device)
    out = {"source": "nvml"}
    for key, read in (("sm_clock_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
                      ("mem_clock_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
                      ("power_w", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
                      ("temperature_c", lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))):
        try:
            out[key] = float(read())
        except Exception:  # noqa: BLE001 - a field this GPU does not report
            out[key] = None
    return out


def _torch(device: torch.device) -> dict:
    out: dict = {"source": "torch.cuda"}
    for key, name in (("sm_clock_mhz", "clock_rate"), ("power_w", "power_draw"), ("temperature_c", "temperature")):
        fn = getattr(torch.cuda, name, None)
        try:
            v = fn(device) if fn else None
            out[key] = None if v is None else float(v) / (1000.0 if key == "power_w" else 1.0)
        except Exception:  # noqa: BLE001
            out[key] = None
    out["mem_clock_mhz"] = None
    return out


def snapshot(device: torch.device) -> dict:
    """{sm_clock_mhz, mem_clock_mhz, power_w, temperature_c, source}; all None on a CPU."""
    if device.type != "cuda":
        return {**dict.fromkeys(FIELDS), "source": "unknown"}
    for read in (_nvml, _torch):
        try:
            got = read(device)
        except Exception:  # noqa: BLE001 - not importable / not initialisable: try the next
            continue
        if any(got.get(k) is not None for k in FIELDS):
            return got
    return {**dict.fromkeys(FIELDS), "source": "unknown"}
