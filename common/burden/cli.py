"""python -m common burden: parse -> one BurdenRequest per model -> profile -> record -> render."""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from common import inputs, records
from common.argtypes import positive
from common.burden import fmt, store
from common.burden.peak_held import PeakRunner
from common.burden.profile import DEVICE_TAG, RUN_KIND, SEED_BATCH, BurdenRequest, profile_model
from common.errors import UserError
from common.registry import zoo

PROG = "common burden"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + line
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):  # a default already named in the help is not repeated
        text = action.help or ""
        return text if "(default" in text or action.default in (None, False) else super()._get_help_string(action)


def _scales(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not vals or any(not math.isfinite(v) or v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: scales must be positive numbers, e.g. 0.5,1,2")
    return vals


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=f"python -m {PROG}", formatter_class=_Help,
                description="Parameter memory, feature memory (convnet-burden's convention and the measured "
                            "CPU peak), MACs and FLOPs of torchvision and timm models, at their typical input "
                            "size and across input sizes; writes the records OUT/records/any/burden/<model>.json, "
                            "then renders OUT/burden.md and OUT/burden/<model>.md (+ figs/<model>.png).")
    p.add_argument("--models", nargs="+", default=["all"], metavar="MODEL",
                   help=f"all | {' | '.join(zoo.GROUPS)} (groups) and/or model names: any torchvision "
                        "classification, segmentation or detection model, any timm model "
                        "(timm/NAME picks timm's where both have the name)")
    p.add_argument("--scales", type=_scales, default="0.5,1,1.5,2,2.5,3", metavar="S[,S...]",
                   help="input-size multiples of the typical size for each model's sweep (convnet-burden: 0.5..3)")
    p.add_argument("--batch", type=positive(int), default=SEED_BATCH, metavar="N",
                   help="batch of the sweep (convnet-burden: 128); real CPU runs use 1")
    p.add_argument("--size", metavar="HxW", help="analyse every selected model at HxW instead of its typical size")
    p.add_argument("--out", type=Path, default=records.RESULTS, metavar="DIR",
                   help="results folder: records/, burden.md and burden/ (default: the repository's results/)")
    p.add_argument("--peak", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the peak memory of one real CPU inference (worker process)")
    p.add_argument("--peak-max-gmacs", type=positive(float), default=160.0, metavar="G",
                   help="measure the peak only for models up to G GMACs at their typical size")
    p.add_argument("--peak-max-mib", type=positive(float), default=8192.0, metavar="MIB",
                   help="... and up to MIB of parameters + features")
    p.add_argument("--peak-threads", type=positive(int), default=1, metavar="N",
                   help="CPU threads of the peak-memory worker (it runs beside the analysis)")
    p.add_argument("--peak-timeout", type=positive(float), default=300.0, metavar="S",
                   help="seconds before a peak-memory run is abandoned")
    p.add_argument("--real-max-seconds", type=positive(float), default=10.0, metavar="S",
                   help="skip sweep sizes whose real CPU run (models that cannot run on meta) would take longer")
    p.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                   help="draw each model's profile figure (PNG)")
    p.add_argument("--render-only", action="store_true",
                   help="rebuild burden.md, the reports and figures from the existing records; analyse nothing")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="tqdm progress bars on stderr")
    return p


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
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted; records written so far are kept\n")
        return 130
