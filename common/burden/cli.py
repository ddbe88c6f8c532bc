"""python -m common burden: parse -> one BurdenRequest per model -> profile -> record -> render."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from common import inputs, records
from common.burden import fmt, store
from common.burden.peak_held import PeakRunner
from common.burden.profile import DEVICE_TAG, RUN_KIND, BurdenRequest, profile_model
from common.errors import UserError
from common.parsers import tools
from common.registry import zoo

PROG = "common burden"


def requests(args: argparse.Namespace) -> list[BurdenRequest]:
    """One request per selected model; an unknown name stops the run before any work."""
    for item in args.models:
        if item != "all" and item not in zoo.GROUPS:
            zoo.resolve(item)
    size = inputs.parse_size(args.size) if args.size else None
    return [BurdenRequest(name, size=size, batch=args.batch, scales=args.scales, peak=args.peak,
                          peak_max_gmacs=args.peak_max_gmacs, peak_max_mib=args.peak_max_mib,
                          peak_threads=args.peak_threads, peak_timeout_s=args.peak_timeout,
                          real_max_seconds=args.real_max_seconds)
            for name in zoo.expand(args.models)]


def environment() -> dict:
    from common import env as envmod

    import torchvision

    e = envmod.collect(torch.device("cpu"))
    try:
        import timm

        e["timm"] = timm.__version__
    except ImportError:
        e["timm"] = None
    e["torchvision"] = torchvision.__version__
    return {k: e.get(k) for k in ("date", "host_cpu", "cpu_count", "threads", "python", "torch", "torchvision", "timm")}


def summary_line(e: dict) -> str:
    if e["status"] != "ok":
        return f"{e['model']}: not covered ({e['failure']['stage']}: {e['failure']['reason']})"
    b = e["base"]
    peak = e.get("peak") or {}
    held = fmt.mib(peak["peak_bytes"]) if peak.get("status") == "measured" else peak.get("status", "not measured")
    return (f"{e['model']}: {fmt.size(b['size'])}  params {b['params']:,} ({fmt.mib(b['param_bytes'])})  "
            f"feat. mem {fmt.mib(b['feature_bytes'])}  peak held (CPU) {held}  "
            f"MACs {fmt.si(b['macs'])}  FLOPs {fmt.si(b['flops'])}  "
            f"not counted: {', '.join(b['uncounted_ops']) or 'none'}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from common.render import burden as render

    out = Path(args.out)
    records.ensure_writable(out)
    if args.render_only:
        render.write(out, figures=args.figures)
        return 0
    reqs = requests(args)
    env = environment()
    t0 = time.perf_counter()
    peaks = PeakRunner(args.peak_threads, args.peak_timeout) if args.peak else None
    done: list[tuple[BurdenRequest, dict]] = []
    for req in tqdm(reqs, desc="burden", unit="model", file=sys.stderr, disable=not args.progress):
        try:
            result = profile_model(req, peaks)
        except Exception as exc:  # noqa: BLE001 - one model's failure never stops the run
            result = {"status": "failed", "failure": {"stage": "analysis", "reason": zoo.oneline(exc)}}
        store.write(out, req, env, result)
        done.append((req, result))
    if peaks is not None:
        measured = peaks.finish(args.progress)
        for req, result in done:
            if (result.get("peak") or {}).get("status") == "pending":
                result["peak"] = measured.get(req.model, {"status": "failed", "reason": "no result from the worker"})
                store.write(out, req, env, result)
    if args.models == ["all"]:
        minutes = (time.perf_counter() - t0) / 60
        settings = (f"scales {','.join(f'{k:g}' for k in args.scales)}, sweep batch {args.batch}, "
                    f"peak worker {args.peak_threads} thread(s) beside the analysis; "
                    "analysis, peaks, reports and figures")
        request = {"kind": RUN_KIND, **{k: v for k, v in reqs[0].to_dict().items() if k not in ("kind", "model")},
                   "models": ["all"]}
        rec = records.make_record(RUN_KIND, DEVICE_TAG, request, env,
                                  {"models": len(done), "minutes": round(minutes, 2), "settings": settings})
        records.write_record(store.run_path(out), rec)
    render.write(out, figures=args.figures, only=[req.stem for req, _ in done])
    for req, result in done:
        print(summary_line({**result, "model": req.model}))
    return 0 if any(result["status"] == "ok" for _, result in done) else 1


def main(argv: list[str] | None = None) -> int:
    args = tools.burden(f"python -m {PROG}").parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted; records written so far are kept\n")
        return 130
