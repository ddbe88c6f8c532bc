"""Command lines: parse -> Request -> run.measure -> save (record + .txt).

One argparse definition behind every ``timer.py`` / ``mem.py`` / layer profiler,
the request built from it (nothing reads the Namespace after that), and one
guarded runner that turns every error a user can cause into one line and an
exit code.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from common import env as envmod
from common import guard, inputs, paths, records, registry, run
from common.argtypes import non_negative, positive
from common.errors import OutOfMemory, UserError, WriteFailed, os_error_line
from common.measure import execution, kernels, layerbench, oom, runtimes, timing, training
from common import protocol as protocols
from common.render import txt
from common.spec import CLOCKS, COMPILE_MODES, PRECISIONS, RUNTIMES, Request, default_clock


class Parser(argparse.ArgumentParser):
    """One-line errors; no abbreviated options: drivers see which flags were given
    (``--inp pascal`` was taken as --input by argparse, yet not seen by the driver)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # one line, not usage + line
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def device_options(p: argparse.ArgumentParser, outputs: str) -> None:
    p.add_argument("--device", default="auto", metavar="DEV",
                   help="auto | cpu | cuda | cuda:N; auto picks the GPU when present (default: auto)")
    p.add_argument("--threads", type=positive(int), metavar="N",
                   help="CPU threads for PyTorch (default: PyTorch's choice, recorded)")
    p.add_argument("--tag", type=paths.tag_arg, metavar="NAME",
                   help="device folder name: letters, digits, '-', '_', '.' (default: derived from the device)")
    p.add_argument("--out-dir", type=Path, default=records.ROOT, metavar="DIR",
                   help=f"root for {outputs} and results/ outputs (default: the repository)")


def loop_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", choices=protocols.NAMES, default="full", metavar="NAME",
                   help=f"named protocol ({' | '.join(protocols.NAMES)}; common.protocol), for the device type; "
                        "the flags below change single values of it (default: full, the seeds' 25 warm-up + 300 "
                        "timed iterations)")
    p.add_argument("--warmup", type=non_negative, metavar="N", help="warm-up iterations on the timed instance")
    p.add_argument("--iters", type=positive(int), metavar="N", help="timed iterations (at most)")
    p.add_argument("--max-seconds", type=positive(float), metavar="S",
                   help="stop the timed loop after S seconds once --min-iters ran (full: no limit)")
    p.add_argument("--min-iters", type=positive(int), metavar="N", help="fewest iterations with --max-seconds")
    p.add_argument("--clock", choices=CLOCKS, metavar="CLOCK",
                   help="cuda-event | perf_counter (default: cuda-event on a GPU, perf_counter on the CPU)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", metavar="P",
                   help="fp32 (IEEE, TF32 off) | tf32 | fp16 | bf16 (autocast) (default: fp32)")


def model_options(p: argparse.ArgumentParser, tool: str) -> None:
    p.add_argument("--input", default="cityscapes", choices=list(inputs.PRESETS), metavar="PRESET",
                   help="input preset: cityscapes 1x3x1024x2048, pascal 1x3x500x334, imagenet 1x3x224x224 "
                        "(default: cityscapes)")
    p.add_argument("--size", metavar="HxW", help="custom input height x width; overrides --input")
    p.add_argument("--batch", type=positive(int), default=1, metavar="N", help="batch size (default: 1)")
    p.add_argument("--output-stride", type=int, choices=(8, 16, 32), default=32, metavar="OS",
                   help="8 | 16: dilated last stages, the segmentation form (torchvision ResNets, timm models "
                        "with output_stride); 32: the model as published (default: 32)")
    p.add_argument("--features", action="store_true",
                   help="the model returns its multi-scale stage features (timm features_only; torchvision "
                        "stages), the form a segmentation head consumes")
    if tool == "timer":
        p.add_argument("--pass", dest="pass_", choices=("infer", "train"), default="infer", metavar="PASS",
                       help="infer: inference latency; train: forward, backward and total of a training "
                            "step (cross-entropy loss), with inference beside it (default: infer)")
        p.add_argument("--with-optimizer", action="store_true",
                       help=f"with --pass train: also time an SGD step (lr {training.SGD_LR}, momentum "
                            f"{training.SGD_MOMENTUM}) as its own column (default: off, parameters untouched)")
        p.add_argument("--layers", action="store_true", help="time every unit (layer/block) with hooks")
        p.add_argument("--throughput", action="store_true",
                       help="images/s at the largest batch that fits and at --batch, in eager fp32 and in the "
                            "fastest mode (record kind 'throughput'; never mixed with latency)")
        p.add_argument("--depth", type=int, default=1, choices=(1, 2), metavar="D",
                       help="per-unit granularity: 1 top-level units, 2 also ResNet blocks (ResNets only; "
                            "default: 1)")
        loop_options(p)
        p.add_argument("--warmup-seconds", type=float, metavar="S",
                       help="warm-up also lasts at least S seconds of wall time (full: "
                            f"{timing.WARMUP_MIN_S:g}; 0: the iteration count alone)")
        p.add_argument("--repeats", type=positive(int), metavar="N",
                       help="run the protocol N times on fresh model instances; report the median of the medians "
                            "and the spread between repeats (default: 3 on a GPU, 1 on the CPU)")
        p.add_argument("--fresh-process", action="store_true",
                       help="with --repeats: each repeat in its own fresh process (whole-model timing only)")
        p.add_argument("--kernels", action=argparse.BooleanOptionalAction, default=True,
                       help="on a GPU: profile kernel time (torch.profiler) for the busy fraction and per-unit "
                            "kernel time, after every timed loop of the process (a driver profiles all its "
                            "requests at its end, on fresh instances); --no-kernels: no profile taken (default: "
                            "on; nothing to profile on the CPU)")
        p.add_argument("--channels-last", action="store_true", help="NHWC memory format for model and input")
        p.add_argument("--cudnn-benchmark", action="store_true",
                       help="let cuDNN autotune its algorithms (default: off, PyTorch's default)")
        p.add_argument("--cuda-graph", action="store_true", help="capture once after warm-up, time replays")
        p.add_argument("--mode", choices=("as-given", "fastest"), default="as-given", metavar="MODE",
                       help="as-given: the flags above; fastest: try every supported precision / "
                            "memory format / graph / compile combination briefly, then measure the best "
                            "(default: as-given)")
        p.add_argument("--search-compile", action=argparse.BooleanOptionalAction, default=True,
                       help="with --mode fastest: include the torch.compile(max-autotune) candidate, "
                            "which takes minutes to compile (default: on)")
        p.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE",
                       help="torch.compile with MODE: default | reduce-overhead | max-autotune "
                            "(compile time reported apart)")
        p.add_argument("--runtime", choices=RUNTIMES, default="torch", metavar="RT",
                       help="torch | onnxruntime | openvino: who runs the model (the others: its ONNX export, "
                            "cached; fp32 and int8, openvino also bf16; on the CPU) (default: torch)")
    else:
        p.add_argument("--struct", action="store_true",
                       help="write the model-structure table instead of the memory report")
        p.add_argument("--depth", type=positive(int), default=3, metavar="D",
                       help="structure table depth (default: 3)")


def build_parser(tool: str, family: str | None) -> Parser:
    names = registry.family_models(family) if family else list(registry.REGISTRY)
    if family in ("zoo", None):
        names = names + ["any torchvision classification/segmentation model or <segmentation model>.backbone, "
                         "any timm model (timm/<name> where both have it)"]
    p = Parser(prog=f"{family + '_profiler/' if family else ''}{tool}.py",
               description="Whole-model and per-unit latency, inference or training step." if tool == "timer"
               else "Memory report (static, peak, MACs/FLOPs, feature memory) or model structure.")
    p.add_argument("--model", required=True, metavar="NAME", help=f"model to profile: {', '.join(names)}")
    model_options(p, tool)
    device_options(p, "<family>_profiler/")
    return p


def protocol_from_args(args: argparse.Namespace, device: torch.device, train: bool = False) -> protocols.Protocol:
    """``--protocol``'s preset for the device type, with the single values the loop flags change."""
    given = {"warmup": args.warmup, "iters": args.iters, "max_seconds": args.max_seconds,
             "min_iters": args.min_iters, "warmup_s": getattr(args, "warmup_seconds", None),
             "repeats": 1 if train else getattr(args, "repeats", None)}
    changes = {k: v for k, v in given.items() if v is not None}
    base = protocols.preset(getattr(args, "protocol", None) or "full", str(device))
    if changes.get("warmup", base.warmup) == 0:
        changes["warmup_s"] = 0.0  # no warm-up at all: nothing to last
    try:
        return base.with_changes(**changes)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def request_from_args(args: argparse.Namespace, tool: str, device: torch.device, family: str | None = None,
                      preset: str | None = None, depth: int | None = None, checked: bool = True) -> Request:
    """The whole request; ``preset``/``depth`` override the flags (drivers loop over them).
    ``checked=False``: built only (a sweep's plan: the run that measures it checks it, ``validate``)."""
    entry = registry.get(args.model)
    if family and entry.family != family:
        raise UserError(f"{args.model} is a {entry.family} model: use {entry.family}_profiler/{tool}.py "
                        f"(or scripts/timer.sh for any model)")
    inp = inputs.resolve(preset or args.input, None if preset else args.size, args.batch)
    if checked:
        inputs.check_fits(inp, entry.min_side, args.model)
    common = dict(model=args.model, input=inp, device=str(device), tag=args.tag, threads=args.threads,
                  output_stride=getattr(args, "output_stride", 32), features=getattr(args, "features", False))
    if tool == "mem":
        kind = "structure" if args.struct else "memory"
        req = Request(kind=kind, clock="none", protocol=protocols.Protocol("none", 0, 1),
                      depth=args.depth if args.struct else 1, **common)
        if checked:
            registry.check_input(req)
        return req
    layers, train = args.layers, args.pass_ == "train"
    kind = ("train-" if train else "") + ("layers" if layers else "timing")
    if getattr(args, "throughput", False):
        if layers or train or args.mode != "as-given":
            raise UserError("--throughput measures eager fp32 and the fastest mode itself; drop "
                            "--layers/--pass train/--mode")
        kind = "throughput"
    if args.warmup_seconds is not None and not 0 <= args.warmup_seconds < float("inf"):
        raise UserError(f"--warmup-seconds must be a finite number of seconds, 0 or more (got {args.warmup_seconds})")
    req = Request(kind=kind, clock=args.clock or default_clock(str(device)),
                  protocol=protocol_from_args(args, device, train), precision=args.precision,
                  channels_last=args.channels_last, cudnn_benchmark=args.cudnn_benchmark,
                  cuda_graph=args.cuda_graph, compile=args.compile, depth=depth or args.depth, search=args.mode,
                  search_compile=args.search_compile, with_optimizer=args.with_optimizer,
                  fresh_process=args.fresh_process, kernels=args.kernels and kernels.supported(device), runtime=args.runtime, **common)
    if req.fresh_process and (req.per_unit or train):
        raise UserError("--fresh-process repeats whole-model inference timing; drop it with --layers/--pass train")
    if checked:
        check(req)
        registry.check_input(req)  # a size the model cannot take, or options it has not: one line
    return req


def check(req: Request) -> None:
    """Reject requests that cannot be measured as asked, with the reason."""
    runtimes.check(req)
    execution.check_supported(req)
    if req.per_unit:
        registry.check_depth(req.model, req.depth, registry.options_of(req))
    if req.per_unit and (req.cuda_graph or req.compile):
        raise UserError("--layers times eager execution with hooks; drop --cuda-graph/--compile")
    if req.is_train and (req.cuda_graph or req.compile or req.search == "fastest"):
        raise UserError("--pass train times eager training steps; drop --cuda-graph/--compile/--mode fastest")
    if req.with_optimizer and not req.is_train:
        raise UserError("--with-optimizer needs --pass train")


def measure_and_save(req: Request, session: run.Session, model: torch.nn.Module | None = None,
                     with_timing: bool = False, cap: int | None = None) -> list[Path]:
    """Measure and save; ``with_timing`` (a per-unit request): also save the
    whole-model timing record its run carries (``run.timing_record``); ``cap``: a
    throughput request's largest batch (default: ``throughput.CAP`` of the device)."""
    if req.kind == "throughput":  # images/s: its own record kind (common.zoo.throughput)
        from common.zoo import throughput

        return throughput.measure_and_save(req, session, cap)
    guard.check_cpu(req)
    prepare(req, session)
    if with_timing:
        prepare(replace(req, kind="timing", depth=1), session)
    with guard.address_limit(req):  # what the guard's estimate missed ends as a MemoryError, not a kill
        rec = run.measure(req, session, model)
    if _same_structure(rec, session):
        return []  # a structure does not depend on when or where: an equal one is not rewritten
    session.write_txt = session.write_txt or write_txt
    return run.save(rec, session) + (run.save(run.timing_record(rec), session) if with_timing else [])


def prepare(req: Request, session: run.Session) -> None:
    """Prove the record's folder and its .txt's folder writable before anything is measured."""
    path = session.prepare(req)
    probe = {"kind": req.kind, "device_tag": session.tag_of(req), "request": req.to_dict(),
             "_path": str(path / f"{req.stem}.json")}
    if req.kind in txt.TXT_KINDS:
        records.ensure_writable(txt.path_for(probe, session.root).parent)


def write_txt(rec: dict, root: Path) -> Path | None:
    """A saved record's .txt, rendered from it (``common.render``), at a path proved to
    resolve under ``root``: a model's name or a tag is part of it, and a symlinked folder
    must not lead elsewhere. ``run.save`` runs it inside the record's write."""
    if rec["kind"] not in txt.TXT_KINDS:
        return None  # a kind rendered only into the tables
    paths.inside(txt.path_for(rec, root), root, ".txt path")
    return txt.write(rec, root)


def _same_structure(rec: dict, session: run.Session) -> bool:
    if rec["kind"] != "structure":
        return False
    try:
        old = json.loads(records.path_of(rec, session.results).read_text())
    except (OSError, ValueError):
        return False
    return old.get("schema") == records.SCHEMA and old.get("result") == json.loads(json.dumps(rec["result"]))


def smaller_batch(req: Request) -> tuple[int | None, list[int]]:
    """After running out of memory: the largest halved batch that fits, searched
    only on a GPU, where running out is a clean error (on the CPU an allocation
    that nearly fits can summon the kernel's OOM killer)."""
    if not req.device.startswith("cuda") or req.kind in ("structure", "layer-bench"):
        return None, []
    torch.cuda.empty_cache()
    return oom.largest_fitting_batch(req.input.batch, lambda b: oom.one_step_fits(req, b))


def oom_message(what: str, first_line: str, fits: int | None, tried: list[int]) -> str:
    hint = ""
    if tried:
        hint = (f"; batch {fits} fits" if fits else "; no smaller batch fits either") + \
               f" (tried {', '.join(map(str, tried))})"
    return f"out of memory at {what}{hint}: {first_line[:200]}"


class Terminated(BaseException):
    """SIGTERM, raised where the process is, like Ctrl-C's KeyboardInterrupt."""


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated


def guarded(prog: str, work: Callable[[], list[Path]], what: Callable[[], str] = lambda: "this run",
            smaller: Callable[[], tuple[int | None, list[int]]] = lambda: (None, [])) -> int:
    """Run ``work``; every error a user can cause ends as one line on stderr and
    an exit code. ``smaller`` looks for a batch that fits after running out of memory.
    Ctrl-C and SIGTERM stop the run with one line; outputs are written atomically,
    so nothing half-written is left and earlier outputs stay as they were."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return _report(prog, work(), None, what, smaller)
    except UserError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return exc.exit_code
    except (RuntimeError, MemoryError) as exc:
        msg = str(exc)
        if not oom.is_oom(exc):
            if "too small" in msg or "can't be greater than actual input size" in msg:
                sys.stderr.write(f"{prog}: error: input too small for {what()}: {msg.splitlines()[0][:200]}\n")
                return UserError.exit_code
            raise
        first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    except ValueError as exc:
        if "more than 1 value per channel" not in str(exc):
            raise
        sys.stderr.write(f"{prog}: error: input too small for a training step at {what()}: batch norm "
                         "needs more than one value per channel; use a larger --batch or --size\n")
        return UserError.exit_code
    except OSError as exc:  # a full disk, a read-only folder, a file where a folder should be
        sys.stderr.write(f"{prog}: error: {os_error_line(exc)}\n")
        return WriteFailed.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted; no output was written for {what()}\n")
        return 130
    except Terminated:
        sys.stderr.write(f"{prog}: terminated; no output was written for {what()}\n")
        return 143
    # Outside the handler, so the failed run's tensors are already freed.
    return _report(prog, [], first, what, smaller)


def _report(prog: str, written: list[Path], oom_line: str | None, what: Callable[[], str],
            smaller: Callable[[], tuple[int | None, list[int]]]) -> int:
    if oom_line is not None:
        fits, tried = smaller()
        sys.stderr.write(f"{prog}: error: {oom_message(what(), oom_line, fits, tried)}\n")
        return OutOfMemory.exit_code
    for path in written:
        print(path)
    return 0


def main(tool: str, family: str | None = None, argv: list[str] | None = None, prog: str | None = None) -> int:
    """``timer`` or ``mem`` of one model: one request, one record, one .txt."""
    parser = build_parser(tool, family)
    parser.prog = prog or parser.prog
    args = parser.parse_args(argv)
    state: dict = {}

    def work() -> list[Path]:
        with envmod.cpu_threads(args.threads):
            device = torch.device("cpu") if tool == "mem" and args.struct else envmod.resolve_device(args.device)
            state["req"] = req = request_from_args(args, tool, device, family)
            return measure_and_save(req, run.Session(device, args.out_dir, args.tag))

    def what() -> str:
        return f"{args.model} input {args.size or args.input} batch {args.batch}"

    return guarded(parser.prog, work, what, lambda: smaller_batch(state["req"]) if "req" in state else (None, []))


def build_layer_parser() -> Parser:
    p = Parser(prog="layer_profiler/timer.py",
               description="Single-layer benchmarks (seed 004): forward, backward, total, achieved rates.")
    p.add_argument("--set", dest="layer_set", default="seed004", choices=list(layerbench.SETS), metavar="SET",
                   help="seed004: seed 004's shapes (3->64 channels, one 224x224 image, Dense 1024->512); "
                        "large: batch 8, 64->64 channels, Dense 4096->4096 at batch 256 (default: seed004)")
    device_options(p, "layer_profiler/")
    loop_options(p)
    return p


def layer_request(args: argparse.Namespace, device: torch.device, layer_set: str | None = None) -> Request:
    req = Request(kind="layer-bench", model="layers", input=inputs.resolve("imagenet", None), device=str(device),
                  clock=args.clock or default_clock(str(device)),
                  protocol=protocol_from_args(args, device).with_changes(warmup_s=0.0, repeats=1),
                  precision=args.precision, layer_set=layer_set or args.layer_set, tag=args.tag, threads=args.threads)
    execution.check_supported(req)
    return req


def main_layers(argv: list[str] | None = None) -> int:
    parser = build_layer_parser()
    args = parser.parse_args(argv)

    def work() -> list[Path]:
        with envmod.cpu_threads(args.threads):
            device = envmod.resolve_device(args.device)
            return measure_and_save(layer_request(args, device), run.Session(device, args.out_dir, args.tag))

    return guarded(parser.prog, work, lambda: f"layer set {args.layer_set}")

