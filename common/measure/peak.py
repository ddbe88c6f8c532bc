"""The device's measured limits: matrix rate per precision and copy bandwidth.

Measured once per device by the tool itself (never taken from a datasheet) and
cached in ``results/peaks/<device-tag>.json``; the timer divides achieved rates by
these to show the distance to the limit, and the per-unit roofline uses their
ratio (the ridge point) to call a unit compute- or memory-bound.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from common import env as envmod
from common import records
from common.measure import timing
from common.errors import UserError

# A square product this large fills an H100 (and takes seconds on a CPU).
MATMUL_N = {"cuda": 8192, "cpu": 2048}
COPY_BYTES = {"cuda": 2 * 2**30, "cpu": 256 * 2**20}  # far beyond any cache
WARMUP, ITERS = 3, 10
PRECISIONS = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _time(fn, device: torch.device) -> float:
    """Median ms of ``fn`` with the device's clock."""
    clock = timing.make_clock("cuda-event" if device.type == "cuda" else "perf_counter", device)
    return timing.run_loop(fn, clock, WARMUP, ITERS, desc="peak").stats.median_ms


def matmul_tflops(device: torch.device, precision: str) -> float:
    n = MATMUL_N[device.type]
    gen = torch.Generator(device=device).manual_seed(0)
    # Random operands: zeros run measurably faster than real data.
    a = torch.randn(n, n, generator=gen, device=device).to(PRECISIONS[precision])
    b = torch.randn(n, n, generator=gen, device=device).to(PRECISIONS[precision])
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        ms = _time(lambda: a @ b, device)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    return 2 * n**3 / (ms * 1e-3) / 1e12


def copy_gbs(device: torch.device) -> float:
    """Device-to-device copy, counting bytes read plus bytes written."""
    n = COPY_BYTES[device.type]
    src = torch.empty(n, dtype=torch.uint8, device=device).random_(0, 255)
    dst = torch.empty_like(src)
    ms = _time(lambda: dst.copy_(src), device)
    return 2 * n / (ms * 1e-3) / 1e9


def supported(device: torch.device) -> list[str]:
    if device.type == "cpu":
        return ["fp32"]  # tf32 is CUDA-only; this CPU emulates bf16/fp16 matmuls (minutes each)
    out = ["fp32", "tf32", "fp16"]
    return out + (["bf16"] if torch.cuda.is_bf16_supported() else [])


def measure(device: torch.device) -> dict:
    env = envmod.collect(device)
    peaks = {p: matmul_tflops(device, p) for p in supported(device)}
    return {"env": env, "matmul_tflops": peaks, "copy_gbs": copy_gbs(device),
            "method": f"median of {ITERS} after {WARMUP} warm-up: {MATMUL_N[device.type]}^3 matmul per "
                      f"precision (random data); {COPY_BYTES[device.type] // 2**20} MiB copy, read + write bytes"}


def path_for(tag: str, results: Path = records.RESULTS) -> Path:
    return Path(results) / "peaks" / f"{tag}.json"


def load(tag: str, results: Path = records.RESULTS) -> dict | None:
    p = path_for(tag, results)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def fraction(peaks: dict | None, precision: str, tflops: float) -> float | None:
    """Achieved rate as a fraction of the measured peak for that precision."""
    if not peaks:
        return None
    peak = peaks["matmul_tflops"].get(precision)
    return tflops / peak if peak else None


def ridge_flop_per_byte(peaks: dict, precision: str) -> float | None:
    """Arithmetic intensity where the roofline turns from memory- to compute-bound."""
    peak = peaks["matmul_tflops"].get(precision)
    return peak * 1e12 / (peaks["copy_gbs"] * 1e9) if peak else None


def roofline(flops: int, bytes_moved: int, median_ms: float, peaks: dict | None, precision: str) -> dict:
    """One unit on the roofline: intensity, achieved rate, and which roof bounds it."""
    intensity = flops / bytes_moved if bytes_moved else None
    row = {"flops": flops, "bytes": bytes_moved, "intensity": intensity,
           "achieved_tflops": flops / (median_ms * 1e-3) / 1e12 if median_ms > 0 else None}
    ridge = ridge_flop_per_byte(peaks, precision) if peaks else None
    if ridge is not None and intensity is not None:
        row["bound"] = "compute" if intensity >= ridge else "memory"
        # The attainable rate at this intensity: min(compute roof, bandwidth x intensity).
        roof = min(peaks["matmul_tflops"][precision], peaks["copy_gbs"] * 1e9 * intensity / 1e12)
        row["fraction_of_roof"] = row["achieved_tflops"] / roof if roof else None
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m common.measure.peak", description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", metavar="DEV", help="auto | cpu | cuda | cuda:N (default: auto)")
    ap.add_argument("--results", type=Path, default=records.RESULTS, metavar="DIR",
                    help="results folder holding peaks/ (default: the repository's results/)")
    args = ap.parse_args(argv)
    try:
        device = envmod.resolve_device(args.device)
    except UserError as exc:
        sys.stderr.write(f"{ap.prog}: error: {exc}\n")
        return exc.exit_code
    result = measure(device)
    out = path_for(envmod.device_tag(result["env"]), args.results)
    records.ensure_writable(out.parent)
    records.write_atomic(out, json.dumps(result, indent=1) + "\n")
    rates = "  ".join(f"{k} {v:.1f} TFLOP/s" for k, v in result["matmul_tflops"].items())
    print(f"{result['env']['device_name']}: {rates}  copy {result['copy_gbs']:.0f} GB/s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
