"""Cross-check our whole-model timer against torch.utils.benchmark, in one run.

For each model and input: our protocol loop (the device's clock, the seeds' 25 +
300 iterations unless bounded) and ``Timer(...).blocked_autorange()`` time the same
callable on the same model instance and input, in this process; the per-unit
coverage (sum of the units' mean times over the whole model's mean) is measured
in the same run too (``--no-coverage`` leaves it out). Nothing is read from
earlier records. The result is a schema-2 record of kind ``timer-check`` at
``<results>/records/<tag>/timer-check/timer_check.json``.
Not a test: it reports, it does not assert.

``--fresh-process N`` checks instead what a user of ``timer.py`` gets: N rounds,
each one fresh-process run of our timer (``python -m common.run``, as
``timer.py --fresh-process`` runs a repeat) and one fresh-process run of
``torch.utils.benchmark`` on its own new instance, in alternating order so that a
drift of the machine (a noisy neighbour, clock changes) falls on both alike. It
compares the median of each side's N medians (record stem ``timer_check_fresh``).

    python -m common check-timer [--models resnet18 ...] [--inputs cityscapes pascal] [--max-seconds S]
    python -m common check-timer --device cpu --models resnet18 resnet50 --inputs pascal --fresh-process 8 \
        --warmup 5 --iters 30
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils import benchmark

from common import derive, inputs, records, registry
from common import env as envmod
from common.errors import UserError
from common.measure import execution, layerwise, timing
from common.parsers import tools
from common.spec import Request, default_clock

AGREEMENT = 0.03  # the target: medians within 3%
KIND, STEM = "timer-check", "timer_check"
PROG = "python -m common check-timer"


def check_one(req: Request, device: torch.device, min_run_time: float, with_coverage: bool) -> dict:
    """Our loop, blocked_autorange and (optionally) the per-unit pass, all on one instance."""
    model = registry.build(req.model, device)
    x = inputs.make(req.input, device)
    with torch.inference_mode(), execution.backend_flags(req):
        prepared = execution.prepare(model, x, req)
        ours = timing.run_loop(prepared.fn, timing.make_clock(req.clock, device), req.warmup, req.iters,
                               batch=req.input.batch, max_seconds=req.max_seconds, min_iters=req.min_iters,
                               desc=f"{req.model} {req.input.tag}")
        timer = benchmark.Timer("fn()", globals={"fn": prepared.fn}, num_threads=torch.get_num_threads())
        ref = timer.blocked_autorange(min_run_time=min_run_time)
        coverage = None
        if with_coverage:
            units = registry.units(req.model, prepared.model)
            profiles, _ = layerwise.profile_units(prepared.model, prepared.fn, units, device, req.warmup, req.iters,
                                                  deadline=timing.deadline(req.max_seconds, req.min_iters))
            coverage = derive.coverage([timing.summarize(p.samples_ms).mean_ms for p in profiles],
                                       ours.stats.mean_ms)
    ours_ms, ref_ms = ours.stats.median_ms, ref.median * 1e3
    ratio = ours_ms / ref_ms
    return {"model": req.model, "preset": req.input.name, "input": req.input.tag,
            "ours_median_ms": ours_ms, "benchmark_median_ms": ref_ms, "ratio": ratio,
            "agrees": abs(ratio - 1) <= AGREEMENT, "layers_coverage": coverage,
            "ours": ours.to_dict(),
            "benchmark": {"times_ms": [t * 1e3 for t in ref.times], "number_per_run": ref.number_per_run,
                          "min_run_time_s": min_run_time}}


def benchmark_child(request_json: str, min_run_time: float) -> int:
    """In a fresh process: the request's model and input, its warm-up, then
    blocked_autorange; prints the per-call times (ms) as JSON."""
    req = Request.from_dict(json.loads(request_json))
    if req.threads:
        torch.set_num_threads(req.threads)
    device = torch.device(req.device)
    model = registry.build(req.model, device)
    x = inputs.make(req.input, device)
    with torch.inference_mode(), execution.backend_flags(req):
        prepared = execution.prepare(model, x, req)
        for _ in range(req.warmup):
            prepared.fn()
        ref = benchmark.Timer("fn()", globals={"fn": prepared.fn},
                              num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=min_run_time)
    print(json.dumps({"times_ms": [t * 1e3 for t in ref.times], "median_ms": ref.median * 1e3,
                      "number_per_run": ref.number_per_run}))
    return 0


def _fresh_benchmark(req: Request, min_run_time: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--benchmark-child", json.dumps(req.to_dict()),
           "--min-run-time", str(min_run_time)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise UserError(f"the benchmark child failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:300]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_fresh(req: Request, rounds: int, min_run_time: float, tag: str) -> dict:
    """``rounds`` alternating pairs of fresh processes: ours, then benchmark; then benchmark, then ours; ..."""
    from common.measure import repeats

    ours, ref, order = [], [], []
    for k in range(rounds):
        sides = ("ours", "benchmark") if k % 2 == 0 else ("benchmark", "ours")
        for side in sides:
            if side == "ours":
                rec = repeats.fresh_process_run(req.to_dict(), tag)
                ours.append(rec["result"]["timing"]["stats"]["median_ms"])
            else:
                ref.append(_fresh_benchmark(req, min_run_time)["median_ms"])
            order.append(side)
    ours_ms, ref_ms = statistics.median(ours), statistics.median(ref)
    ratio = ours_ms / ref_ms
    return {"model": req.model, "preset": req.input.name, "input": req.input.tag, "rounds": rounds,
            "ours_median_ms": ours_ms, "benchmark_median_ms": ref_ms, "ratio": ratio,
            "agrees": abs(ratio - 1) <= AGREEMENT, "ours_medians_ms": ours, "benchmark_medians_ms": ref,
            "order": order, "paired_ratios": [a / b for a, b in zip(ours, ref)],
            "ours_spread": (max(ours) - min(ours)) / ours_ms, "benchmark_spread": (max(ref) - min(ref)) / ref_ms}


def main(argv: list[str] | None = None) -> int:
    args = tools.check_timer(PROG, __doc__.splitlines()[0]).parse_args(argv)
    if args.benchmark_child:
        return benchmark_child(args.benchmark_child, args.min_run_time)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = envmod.resolve_device(args.device)
        input_specs = [inputs.resolve(None, args.size)] if args.size else [inputs.resolve(p, None)
                                                                          for p in args.inputs]
        for name in args.models:
            registry.get(name)
    except UserError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    env = envmod.collect(device)
    tag = args.tag or envmod.device_tag(env)
    out = records.record_path(args.results, tag, KIND, STEM + ("_fresh" if args.fresh_process else ""))
    records.ensure_writable(out.parent)  # before any measuring
    rows = []
    for name in args.models:
        for inp in input_specs:
            req = Request.of("timing", name, inp, str(device), clock=default_clock(str(device)), warmup=args.warmup,
                          iters=args.iters, max_seconds=args.max_seconds, min_iters=args.min_iters,
                          threads=args.threads, repeats=1)
            if args.fresh_process:
                try:
                    row = check_fresh(req, args.fresh_process, args.min_run_time, tag)
                except UserError as exc:
                    sys.stderr.write(f"{PROG}: error: {exc}\n")
                    return exc.exit_code
                rows.append(row)
                print(f"{name:<14}{inp.tag:<12}fresh processes x{args.fresh_process}: ours {row['ours_median_ms']:9.3f} ms"
                      f"  benchmark {row['benchmark_median_ms']:9.3f} ms  ratio {row['ratio']:6.3f}", flush=True)
                continue
            row = check_one(req, device, args.min_run_time, args.coverage)
            rows.append(row)
            cov = row["layers_coverage"]
            print(f"{name:<14}{inp.tag:<12}ours {row['ours_median_ms']:9.3f} ms  "
                  f"benchmark {row['benchmark_median_ms']:9.3f} ms  ratio {row['ratio']:6.3f}  "
                  f"coverage {'-' if cov is None else f'{cov:.3f}'}", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    request = {"kind": KIND, "device": str(device), "models": args.models, "inputs": [i.tag for i in input_specs],
               "clock": default_clock(str(device)), "warmup": args.warmup, "iters": args.iters,
               "max_seconds": args.max_seconds, "min_iters": args.min_iters, "min_run_time_s": args.min_run_time,
               "coverage": args.coverage and not args.fresh_process, "tag": tag, "threads": args.threads,
               "fresh_process_rounds": args.fresh_process,
               "method": ("alternating fresh processes: common.run (timer.py's repeat) vs a torch.utils.benchmark "
                          "child, median of each side's medians" if args.fresh_process else
                          "one process, one instance: our loop then blocked_autorange")}
    rec = records.make_record(KIND, tag, request, env, {"agreement": AGREEMENT, "rows": rows})
    records.write_record(out, rec)
    print(out)
    return 0

