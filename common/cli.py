"""Command lines: parse (``common.parsers``) -> Request -> run.measure -> save (record + .txt).

The request built from the flags of every ``timer.py`` / ``mem.py`` / layer profiler
(nothing reads the Namespace after that), and one
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
from common import guard, inputs, parsers, paths, records, registry, run
from common.errors import OutOfMemory, UserError, WriteFailed, os_error_line
from common.measure import execution, kernels, oom, runtimes
from common import protocol as protocols
from common.render import txt
from common.spec import Request, default_clock


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
    parser = parsers.model(tool, family)
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


def layer_request(args: argparse.Namespace, device: torch.device, layer_set: str | None = None) -> Request:
    req = Request(kind="layer-bench", model="layers", input=inputs.resolve("imagenet", None), device=str(device),
                  clock=args.clock or default_clock(str(device)),
                  protocol=protocol_from_args(args, device).with_changes(warmup_s=0.0, repeats=1),
                  precision=args.precision, layer_set=layer_set or args.layer_set, tag=args.tag, threads=args.threads)
    execution.check_supported(req)
    return req


def main_layers(argv: list[str] | None = None) -> int:
    parser = parsers.layer_sets()
    args = parser.parse_args(argv)

    def work() -> list[Path]:
        with envmod.cpu_threads(args.threads):
            device = envmod.resolve_device(args.device)
            return measure_and_save(layer_request(args, device), run.Session(device, args.out_dir, args.tag))

    return guarded(parser.prog, work, lambda: f"layer set {args.layer_set}")

