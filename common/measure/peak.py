"""The device's measured limits: matrix rate per precision and copy bandwidth.

Measured once per device by the tool itself (never taken from a datasheet) and
recorded in ``results/records/<device-tag>/peak/peak.json``; the timer divides achieved rates by
these to show the distance to the limit, and the per-unit roofline uses their
ratio (the ridge point) to call a unit compute- or memory-bound. A CPU's rates scale with
its threads, so a CPU record names the intra-op threads it ran with and lives at
``peak/peak_<N>t.json``: results/runtimes.md divides a run only by the peak of its own
thread count.
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
        # The float precisions the CPU runtimes execute (results/runtimes.md): fp32, and bf16 where
        # oneDNN has it natively (AVX512-BF16 / AMX; elsewhere it is emulated, minutes per product).
        # tf32 is CUDA-only; no CPU run executes fp16. No int8: PyTorch's int8 products
        # (torch._int_mm, the quantised linear) run slower than the runtimes' own int8 kernels
        # achieve on whole models, so their rate is no ceiling.
        native_bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        return ["fp32"] + (["bf16"] if native_bf16 else [])
    out = ["fp32", "tf32", "fp16"]
    return out + (["bf16"] if torch.cuda.is_bf16_supported() else [])


def measure(device: torch.device) -> dict:
    """The peak record of ``device``, with PyTorch's intra-op threads as they are set now."""
    env = envmod.collect(device)
    peaks = {p: matmul_tflops(device, p) for p in supported(device)}
    result = {"matmul_tflops": peaks, "copy_gbs": copy_gbs(device),
              "method": f"median of {ITERS} after {WARMUP} warm-up: {MATMUL_N[device.type]}^3 matmul per "
                        f"precision (random data); "
                        f"{COPY_BYTES[device.type] // MIB} MiB copy, read + write bytes"}
    request = {"kind": "peak", "device": str(device), "threads": torch.get_num_threads()}
    return records.make_record("peak", envmod.device_tag(env), request, env, result)


STEM = "peak"  # a GPU's peak record: results/records/<tag>/peak/peak.json


def stem(rec: dict) -> str:
    """``peak`` on a GPU; ``peak_<N>t`` on the CPU, whose rates depend on its threads."""
    return f"{STEM}_{rec['request']['threads']}t" if rec["env"].get("device_type") == "cpu" else STEM


def path_for(tag: str, results: Path = records.RESULTS, name: str = STEM) -> Path:
    return records.record_path(results, tag, "peak", name)


def load(tag: str, results: Path = records.RESULTS) -> dict | None:
    """The device's measured peaks (a GPU peak record's result), or None when not measured.
    The timer's CPU runs get none: their threads vary per request, a CPU peak record's do not."""
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
    try:
        with envmod.cpu_threads(args.threads):
            rec = measure(device)
    except UserError as exc:
        sys.stderr.write(f"{ap.prog}: error: {exc}\n")
        return exc.exit_code
    out = path_for(rec["device_tag"], args.results, stem(rec))
    records.write_record(out, rec)
    rates = "  ".join(f"{k} {v:.3g} TFLOP/s" for k, v in rec["result"]["matmul_tflops"].items())
    print(f"{rec['env']['device_name']}, {rec['request']['threads']} thread(s): {rates}  "
          f"copy {rec['result']['copy_gbs']:.0f} GB/s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
