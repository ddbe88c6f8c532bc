"""The device's measured limits: matrix rate per precision and copy bandwidth.

Measured once per device by the tool itself (never taken from a datasheet) and
recorded in ``results/records/<device-tag>/peak/peak.json``; the timer divides achieved rates by
these to show the distance to the limit, and the per-unit roofline uses their
ratio (the ridge point) to call a unit compute- or memory-bound.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from common import env as envmod
from common import derive, records
from common.derive import MIB
from common.measure import timing
from common.errors import UserError
from common.parsers import tools

# A square product this large fills an H100 (and takes seconds on a CPU).
MATMUL_N = {"cuda": 8192, "cpu": 2048}
COPY_BYTES = {"cuda": 2048 * MIB, "cpu": 256 * MIB}  # far beyond any cache
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
    return derive.tflops(2 * n**3, ms)


def copy_gbs(device: torch.device) -> float:
    """Device-to-device copy, counting bytes read plus bytes written."""
    n = COPY_BYTES[device.type]
    src = torch.empty(n, dtype=torch.uint8, device=device).random_(0, 255)
    dst = torch.empty_like(src)
    ms = _time(lambda: dst.copy_(src), device)
    return derive.gbs(2 * n, ms)


def supported(device: torch.device) -> list[str]:
    if device.type == "cpu":
        return ["fp32"]  # tf32 is CUDA-only; this CPU emulates bf16/fp16 matmuls (minutes each)
    out = ["fp32", "tf32", "fp16"]
    return out + (["bf16"] if torch.cuda.is_bf16_supported() else [])


def measure(device: torch.device) -> dict:
    """The peak record of ``device``."""
    env = envmod.collect(device)
    peaks = {p: matmul_tflops(device, p) for p in supported(device)}
    result = {"matmul_tflops": peaks, "copy_gbs": copy_gbs(device),
              "method": f"median of {ITERS} after {WARMUP} warm-up: {MATMUL_N[device.type]}^3 matmul per "
                        f"precision (random data); {COPY_BYTES[device.type] // MIB} MiB copy, read + write bytes"}
    return records.make_record("peak", envmod.device_tag(env), {"kind": "peak", "device": str(device)}, env, result)


STEM = "peak"  # one peak record per device: results/records/<tag>/peak/peak.json


def path_for(tag: str, results: Path = records.RESULTS) -> Path:
    return records.record_path(results, tag, "peak", STEM)


def load(tag: str, results: Path = records.RESULTS) -> dict | None:
    """The device's measured peaks (a peak record's result), or None when not measured."""
    try:
        rec = json.loads(path_for(tag, results).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("schema") != records.SCHEMA:
        return None
    return {**rec["result"], "measured": rec.get("env", {}).get("date")}


def main(argv: list[str] | None = None, prog: str = "python -m common peak") -> int:
    ap = tools.peak(prog, __doc__.splitlines()[0])
    args = ap.parse_args(argv)
    try:
        device = envmod.resolve_device(args.device)
    except UserError as exc:
        sys.stderr.write(f"{ap.prog}: error: {exc}\n")
        return exc.exit_code
    rec = measure(device)
    out = path_for(rec["device_tag"], args.results)
    records.write_record(out, rec)
    rates = "  ".join(f"{k} {v:.1f} TFLOP/s" for k, v in rec["result"]["matmul_tflops"].items())
    print(f"{rec['env']['device_name']}: {rates}  copy {rec['result']['copy_gbs']:.0f} GB/s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
