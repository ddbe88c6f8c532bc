"""Drivers: many requests in one process, with overall progress (step N of M).

    python -m common stats --model NAME|--family F [timer.py flags]  both presets (or the one given),
                                                                whole model + per unit at each depth
    python -m common reports --family FAMILY [mem.py flags]     every model of a family, both presets
    python -m common seed004 [timer.py flags]                   seed 004: training steps + layer sets
    python -m common layer-sets [--set S ...] [loop flags]      seed 004's layer sets (default: both)
    python -m common profile [--device D] [--full] ...          everything profile.sh runs

``--dry-run`` prints the plan, one Request a line as JSON, and measures nothing.

The model lists and unit depths come from the catalogue (``common.registry``); a
model is built once per preset and re-used by the requests of that preset (each
warms it up again). A failing step is reported in one line and the driver goes on;
the exit status is that of the first failure.

On a GPU every timing request's kernel profile (kernel time, busy fraction,
per-unit kernel time) is a step of its own at the very end of the driver: a CUDA
profiler pass slows later timed loops of the same process (``common.run_kernels``),
so no profile runs before the last timed loop. ``--no-kernels`` leaves them out.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from common import bootstrap, cli, parsers, records, registry, run
from common import env as envmod
from common.errors import UserError
from common.measure import kernels
from common.parsers import drivers
from common.spec import LAYER_SETS, Request

PRESETS = ("cityscapes", "pascal")  # the seeds' two tasks
VERB_OF = {"mem": "reports"}  # the front door's verb for a subcommand, where they differ
# profile.sh runs the 'quick' protocol (common.protocol) unless --full; on a machine
# without a GPU also per unit at depth 1 only at Cityscapes size (ResNet blocks at
# PASCAL size), and without seed 004's training steps (python -m common seed004, or
# --full, runs them), so the whole job fits in ten minutes on 2 cores.


@dataclass
class Step:
    what: str
    work: Callable[[], list[Path]]
    request: Callable[[], Request | None] = lambda: None
    deferred: Step | None = None  # run after every other step of the driver: its kernel profile
    plan: Callable[[], list[Request]] | None = None  # the step's requests, built without measuring (--dry-run)


def with_deferred(steps: list[Step]) -> list[Step]:
    """The steps, then their deferred steps (kernel profiles) after all of them, so
    that no timed loop of the process follows a profiler pass."""
    return steps + [s.deferred for s in steps if s.deferred is not None]


def run_steps(prog: str, steps: list[Step], failures: list[tuple[str, int]] | None = None) -> int:
    """Run every step (one line per failure, the rest go on); overall bar on stderr.
    ``failures`` collects (step, exit status) of the steps that failed."""
    failures = [] if failures is None else failures
    bar = tqdm(steps, desc=prog, unit="step", file=sys.stderr, dynamic_ncols=True)
    for step in bar:
        bar.set_postfix_str(step.what[:60])
        code = cli.guarded(f"{prog}: {step.what}", step.work, lambda: step.what,
                           lambda: cli.smaller_batch(step.request()) if step.request() else (None, []))
        if code:
            failures.append((step.what, code))
            if code in (130, 143):  # Ctrl-C or SIGTERM: stop the whole driver
                break
    bar.close()
    if failures:
        sys.stderr.write(f"{prog}: {len(failures)} of {len(steps)} steps failed: "
                         + "; ".join(w for w, _ in failures) + "\n")
    return failures[0][1] if failures else 0


def _explicit(argv: list[str], *flags: str) -> bool:
    return any(a == f or a.startswith(f + "=") for a in argv for f in flags)


def stats_steps(model: str, argv: list[str], session: Callable[[argparse.Namespace], run.Session],
                whole_only: bool = False, shallow: tuple[str, ...] = ()) -> list[Step]:
    """Both presets (or the --input/--size given), whole model then per unit at
    every depth the catalogue defines; one model instance per preset."""
    entry = registry.get(model)
    args = parsers.model("timer", entry.family).parse_args(["--model", model, *argv])
    presets = [None] if _explicit(argv, "--input", "--size") else list(PRESETS)
    depths = [args.depth] if _explicit(argv, "--depth") else list(entry.depths)
    steps: list[Step] = []
    for preset in presets:
        shared: dict = {}

        def instance(req: Request, shared: dict = shared) -> torch.nn.Module | None:
            """One model per preset, kept for the next request of the preset."""
            if req.search == "fastest" or req.is_train:
                return None
            if "model" not in shared:
                shared["model"] = registry.build_for(req, req.device)
            return shared["model"]

        # The first per-unit run's whole-model loop (run before its hooks) is saved as the
        # timing record too: a separate timing run would repeat exactly that loop.
        per_unit = [(True, d) for d in depths if preset not in shallow or d == 1]
        kinds = [(False, None)] if whole_only else per_unit
        for i, (layers, depth) in enumerate(kinds):
            last = i == len(kinds) - 1
            with_timing = i == 0 and layers and not _explicit(argv, "--layers")
            steps.append(_timer_step(args, preset, layers, depth, session, instance, shared if last else None,
                                     with_timing))
    return steps


def _timer_step(args: argparse.Namespace, preset: str | None, layers: bool, depth: int | None,
                session: Callable[[argparse.Namespace], run.Session], instance: Callable,
                release: dict | None, with_timing: bool = False) -> Step:
    state: dict = {}
    label = f"{args.model} {preset or args.size or args.input}" + (f" per unit depth {depth}" if layers else "")
    label += " (+ whole model)" if with_timing else ""

    def build(device: torch.device) -> Request:
        step_args = argparse.Namespace(**{**vars(args), "layers": layers})
        if layers and (depth or args.depth) > 1:
            step_args.repeats = 1  # the whole-model repeats are the depth-1 run's; blocks need one reference
        return cli.request_from_args(step_args, "timer", device, preset=preset, depth=depth)

    def work() -> list[Path]:
        try:
            sess = session(args)
            state["req"] = req = build(sess.device)
            written = cli.measure_and_save(req, sess, instance(req), with_timing)
            state["saved"] = True  # this process wrote the record: its deferred profile may complete it
            return written
        finally:
            if release is not None:
                release.clear()  # the preset's last request: free its model

    def profile_kernels() -> list[Path]:
        if not state.get("saved"):
            return []  # the timing step failed (reported there): an older record is left as it was
        sess = session(args)
        sess.write_txt = sess.write_txt or cli.write_txt
        return run.add_kernels(state["req"], sess, with_timing)

    deferred = Step(f"{label}: kernel profile", profile_kernels) if _profiles_kernels(args) else None
    def plan() -> list[Request]:
        req = build(envmod.resolve_device(args.device))
        # The per-unit run's whole-model loop is saved as the timing record too (run.timing_record).
        return [req, replace(req, kind="timing", depth=1)] if with_timing else [req]

    return Step(label, work, lambda: state.get("req"), deferred, plan)


def _profiles_kernels(args: argparse.Namespace) -> bool:
    """Whether a timer step's request gets a (deferred) kernel profile."""
    if not args.kernels or args.pass_ == "train" or getattr(args, "throughput", False):
        return False
    try:
        return kernels.supported(envmod.resolve_device(args.device))
    except UserError:
        return False  # no such device: the timing step itself says so


def mem_steps(family: str | None, argv: list[str], session: Callable[[argparse.Namespace], run.Session],
              models: list[str] | None = None) -> list[Step]:
    """Memory reports (structures with --struct) of every model of ``family`` (or of
    ``models``, any the registry knows), on both presets or the one given."""
    steps = []
    explicit = _explicit(argv, "--input", "--size")
    for model in models or registry.family_models(family):
        args = parsers.model("mem", registry.get(model).family).parse_args(["--model", model, *argv])
        for preset in ([None] if explicit else PRESETS):
            def work(args: argparse.Namespace = args, preset: str | None = preset) -> list[Path]:
                sess = session(args) if not args.struct else run.Session(torch.device("cpu"), args.out_dir)
                return cli.measure_and_save(cli.request_from_args(args, "mem", sess.device, preset=preset), sess)

            def plan(args: argparse.Namespace = args, preset: str | None = preset) -> list[Request]:
                device = torch.device("cpu") if args.struct else envmod.resolve_device(args.device)
                return [cli.request_from_args(args, "mem", device, preset=preset)]

            kind = "structure" if args.struct else "memory"
            steps.append(Step(f"{model} {preset or args.size or args.input} {kind}", work, plan=plan))
    return steps


def seed004_steps(argv: list[str], session: Callable[[argparse.Namespace], run.Session]) -> list[Step]:
    """Seed 004: training steps of its nine models at its batches of 224x224, then both layer sets."""
    steps = []
    for model, batch in registry.SEED004.items():
        args = parsers.model("timer", None).parse_args(
            ["--model", model, "--input", "imagenet", "--batch", str(batch), "--pass", "train", *argv])
        steps.append(_timer_step(args, None, False, None, session, lambda req: None, None))
    return steps + layer_set_steps(_loop_only(argv), session)


def layer_set_steps(argv: list[str], session: Callable[[argparse.Namespace], run.Session],
                    sets: tuple[str, ...] = LAYER_SETS) -> list[Step]:
    """Seed 004's single-layer benchmarks, one step per set."""
    layer_args = parsers.layer_sets().parse_args(argv)
    steps = []
    for layer_set in sets:
        def work(layer_set: str = layer_set) -> list[Path]:
            sess = session(layer_args)
            return cli.measure_and_save(cli.layer_request(layer_args, sess.device, layer_set), sess)

        def plan(layer_set: str = layer_set) -> list[Request]:
            return [cli.layer_request(layer_args, envmod.resolve_device(layer_args.device), layer_set)]

        steps.append(Step(f"layer set {layer_set}", work, plan=plan))
    return steps


def _loop_only(argv: list[str]) -> list[str]:
    """The flags the layer profiler shares with timer.py (device, loop, precision)."""
    keep = {"--device", "--threads", "--tag", "--out-dir", "--protocol", "--warmup", "--iters", "--max-seconds",
            "--min-iters", "--clock", "--precision"}
    out, i = [], 0
    while i < len(argv):
        flag = argv[i].split("=", 1)[0]
        if flag in keep:
            out += argv[i:i + (1 if "=" in argv[i] else 2)]
            i += 1 if "=" in argv[i] else 2
        else:
            i += 1
    return out


class Sessions:
    """One Session per (device, root, tag): the environment is collected once."""

    def __init__(self) -> None:
        self._cache: dict = {}

    def __call__(self, args: argparse.Namespace) -> run.Session:
        device = envmod.resolve_device(args.device)
        key = (str(device), str(args.out_dir), args.tag)
        if key not in self._cache:
            # Many requests in one process: kernel profiles wait for the driver's end (with_deferred).
            self._cache[key] = run.Session(device, args.out_dir, args.tag, defer_kernels=True)
        return self._cache[key]


def profile_steps(args: argparse.Namespace, extra: list[str], sessions: Sessions) -> list[Step]:
    """Every catalogue model on both presets (latency, per unit, memory, structure),
    then seed 004; VGG latency at Cityscapes only on a GPU (minutes per run on a CPU)."""
    gpu = envmod.resolve_device(args.device).type == "cuda"
    common = ["--device", args.device, *(["--tag", args.tag] if args.tag else []),
              *(["--out-dir", str(args.out_dir)] if args.out_dir else []), *(["--size", args.size] if args.size else [])]
    timer = common + ["--protocol", "full" if args.full else "quick"] + extra
    shallow = ("cityscapes",) if not (gpu or args.full) else ()
    models = args.models or registry.names("catalogue")
    steps: list[Step] = []
    for m in models:
        if registry.get(m).family == "vgg" and not gpu:
            steps += stats_steps(m, [*timer, "--input", "pascal"], sessions)
        else:
            steps += stats_steps(m, timer, sessions, shallow=shallow)
    for family in dict.fromkeys(registry.get(m).family for m in models):
        fam_models = [m for m in registry.family_models(family) if m in models]
        steps += [s for s in mem_steps(family, common, sessions) if s.what.split()[0] in fam_models]
        steps += [s for s in mem_steps(family, ["--struct", *common], sessions) if s.what.split()[0] in fam_models]
    if not args.no_seed004 and (gpu or args.full):
        steps += seed004_steps(timer, sessions)
    return steps


def main(argv: list[str] | None = None) -> int:
    """``argv``: a subcommand (stats, mem, seed004, layer-sets, profile) and its flags, as the
    front door's verbs ``stats``, ``reports``, ``seed004``, ``layer-sets``, ``profile`` pass them."""
    argv = sys.argv[1:] if argv is None else argv
    p = drivers.drive(__doc__.splitlines()[0], VERB_OF)
    args, rest = p.parse_known_args(argv)
    sessions = Sessions()
    t0 = time.monotonic()
    try:
        if args.cmd == "stats":
            steps = [s for m in (args.model or registry.family_models(args.family))
                     for s in stats_steps(m, rest, sessions, args.no_layers)]
        elif args.cmd == "mem":
            steps = mem_steps(args.family, rest, sessions, args.model)
        elif args.cmd == "seed004":
            steps = seed004_steps(rest, sessions)
        elif args.cmd == "layer-sets":
            steps = layer_set_steps(rest, sessions, tuple(args.layer_sets))
        else:
            for name in args.models or []:
                registry.get(name)
            steps = profile_steps(args, rest, sessions)
        if args.dry_run:
            print_plan(steps)
            return 0
    except UserError as exc:
        sys.stderr.write(f"{p.prog} {VERB_OF.get(args.cmd, args.cmd)}: error: {exc}\n")
        return exc.exit_code
    steps = with_deferred(steps)
    failures: list[tuple[str, int]] = []
    threads = drivers.drive_threads(p.prog).parse_known_args(rest)[0].threads
    with envmod.cpu_threads(threads):  # every step's --threads, restored after
        code = run_steps(f"{args.cmd}", steps, failures)
    wall = time.monotonic() - t0
    sys.stderr.write(f"{args.cmd}: {len(steps)} steps in {wall:.0f} s\n")
    if args.cmd == "profile" and code not in (130, 143):
        save_job(args, sessions, len(steps), failures, wall)
    return code


def print_plan(steps: list[Step]) -> None:
    """One line per request, as JSON (``Request.to_dict``): what the driver would measure."""
    for step in steps:
        for req in step.plan() if step.plan is not None else []:
            print(json.dumps(req.to_dict(), sort_keys=True))


def save_job(args: argparse.Namespace, sessions: Sessions, steps: int, failures: list[tuple[str, int]],
             wall_s: float) -> Path:
    """The whole job as a record (kind 'job'): how long profile.sh's measuring took
    on this device with this protocol, so README's run times are measured, not typed.
    The flags given to every step are not kept here as argv: each step's own record
    carries its whole request."""
    out_dir = args.out_dir or records.ROOT
    sess = sessions(argparse.Namespace(device=args.device, out_dir=out_dir, tag=args.tag, threads=None))
    protocol = "full" if args.full else "quick"
    request = {"kind": "job", "command": "profile", "device": str(sess.device), "protocol": protocol,
               "models": args.models or registry.names("catalogue"), "no_seed004": args.no_seed004,
               "seed004": not args.no_seed004 and (args.full or sess.device.type == "cuda")}
    result = {"wall_s": wall_s, "steps": steps, "failed": [{"step": w, "exit": c} for w, c in failures],
              "setup": bootstrap.setup_stamp()}  # .venv's first set-up: seconds and bytes (None: no stamp)
    rec = records.make_record("job", sess.tag, request, sess.env, result)
    path = records.record_path(sess.results, sess.tag, "job", f"profile_{protocol}")
    records.write_record(path, rec)
    return path

