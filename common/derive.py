"""Derived figures, computed in one place from measured ones: achieved rates,
share of the device's measured peak, per-unit coverage and the roofline.

``peaks`` is the result of a peak record (``python -m common.measure.peak``):
``{"matmul_tflops": {precision: TFLOP/s}, "copy_gbs": GB/s}``.
"""
from __future__ import annotations

import math

MIB = 2**20  # memory is reported in MiB (2^20 bytes), everywhere in the project
# Below this busy fraction (kernel time / wall time) the GPU idles waiting for the
# host to launch work: the record is marked launch-bound (common.measure.kernels).
LAUNCH_BOUND_BUSY = 0.8
# Repeats whose medians spread more than this are marked unstable (common.measure.repeats).
UNSTABLE_SPREAD = 0.05


def tflops(flops: float, ms: float) -> float | None:
    """Achieved TFLOP/s of ``flops`` done in ``ms`` milliseconds; None for a zero or unknown time."""
    return flops / (ms * 1e-3) / 1e12 if ms and ms > 0 and math.isfinite(ms) else None


def gbs(nbytes: float, ms: float) -> float | None:
    """Achieved GB/s (10^9 bytes) of ``nbytes`` moved in ``ms`` milliseconds."""
    return nbytes / (ms * 1e-3) / 1e9 if ms and ms > 0 and math.isfinite(ms) else None


def fraction_of_peak(peaks: dict | None, precision: str, achieved_tflops: float | None) -> float | None:
    """Achieved rate as a fraction of the measured matrix peak for that precision."""
    if not peaks or achieved_tflops is None:
        return None
    peak = peaks["matmul_tflops"].get(precision)
    return achieved_tflops / peak if peak else None


def ridge_flop_per_byte(peaks: dict, precision: str) -> float | None:
    """Arithmetic intensity where the roofline turns from memory- to compute-bound."""
    peak = peaks["matmul_tflops"].get(precision)
    return peak * 1e12 / (peaks["copy_gbs"] * 1e9) if peak else None


def roofline(flops: int, bytes_moved: int, median_ms: float, peaks: dict | None, precision: str) -> dict:
    """One unit on the roofline: intensity, achieved rate, and which roof bounds it."""
    intensity = flops / bytes_moved if bytes_moved else None
    row = {"flops": flops, "bytes": bytes_moved, "intensity": intensity, "achieved_tflops": tflops(flops, median_ms)}
    ridge = ridge_flop_per_byte(peaks, precision) if peaks else None
    if ridge is not None and intensity is not None:
        row["bound"] = "compute" if intensity >= ridge else "memory"
        # The attainable rate at this intensity: min(compute roof, bandwidth x intensity).
        roof = min(peaks["matmul_tflops"][precision], peaks["copy_gbs"] * 1e9 * intensity / 1e12)
        achieved = row["achieved_tflops"]
        row["fraction_of_roof"] = achieved / roof if roof and achieved is not None else None
    return row


def coverage(unit_ms: list[float], whole_ms: float) -> float | None:
    """Sum of the units' times over the whole model's time, from the same run."""
    return sum(unit_ms) / whole_ms if whole_ms and whole_ms > 0 else None


def kernel_coverage(result: dict) -> float | None:
    """The units' kernel time (per-unit profiled pass, one range per unit) over the
    whole model's kernel time profiled without hooks: an independent reference (the
    hooked pass against its own total, ``result['kernel_coverage']``, is 1 by construction)."""
    whole = (result.get("kernels") or {}).get("kernel_ms_mean")
    units = result.get("units") or []
    if not whole or not units or any(u.get("kernel_ms") is None for u in units):
        return None
    return coverage([u["kernel_ms"] for u in units], whole)


# A functional unit (ops between module units) taking more than this share of the
# units' summed time while holding no parameters and no MACs is flagged: time the
# per-unit table cannot place (a forward that runs blocks no unit exposes, or heavy
# parameter-free ops).
FLAG_SHARE = 0.05


def functional_flags(units: list[dict], cost_units: list[dict], threshold: float = FLAG_SHARE) -> dict:
    """The functional units' share of the units' summed mean time, and those above
    ``threshold`` with no parameters and no MACs (``units``: a per-unit record's
    timed units; ``cost_units``: its cost's units, matched by label)."""
    total = sum(u["stats"]["mean_ms"] for u in units)
    costs = {c["label"]: c for c in cost_units}
    share = {u["label"]: u["stats"]["mean_ms"] / total if total > 0 else 0.0 for u in units}
    functional = [u for u in units if u["path"] is None]
    flagged = [{"label": u["label"], "share": share[u["label"]], "note": u["note"]} for u in functional
               if share[u["label"]] > threshold and not costs.get(u["label"], {}).get("params")
               and not costs.get(u["label"], {}).get("macs")]
    return {"threshold": threshold, "functional_share": sum(share[u["label"]] for u in functional),
            "flagged": flagged}
