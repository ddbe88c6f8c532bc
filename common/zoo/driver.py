"""The zoo sweep's loop (its defaults and model list: ``common.zoo.options``; its command line:
``common.parsers.drivers.zoo``).

Per model and input, one step per slot: ``eager`` (timing, eager fp32), ``fastest``
(timing, ``--mode fastest``; compile left out unless ``--search-compile``),
``memory`` (static + peak of one inference) and, at the first input only,
``throughput`` (images/s at the largest batch, eager fp32 and fastest). A slot
whose record exists is skipped (``--force`` re-measures zoo-family models; a
catalogue backbone's records are re-measured only with ``--force-catalogue``), so a
sweep stopped by ``--budget-s`` or a signal resumes where it stopped. A step that
fails (the model does not build, its forward fails at the size, out of memory, any
error) writes a ``failure`` record with its reason, and the sweep goes on; when a
model cannot take an input at all, its other slots at that input are recorded with
the same reason without running. A ``zoo-run`` record (models, inputs, protocol,
wall time, failures) is updated after every model; ``python -m common.render``
renders ``results/zoo.md`` and the Pareto figures from the records.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from common import cli, inputs, parsers, records, registry, run
from common import protocol as protocols
from common import env as envmod
from common.errors import UserError, WriteFailed, os_error_line
from common.measure import kernels
from common.registry.generic import oneline
from common.parsers.drivers import zoo as build_parser
from common.zoo.options import (CPU_SHORT_LIST, DEFAULT_INPUTS, RUN_NAME,  # noqa: F401 - re-exported
                                check_names, defaults, model_list)
from common.zoo.runrecord import (FAILED_LINE, SLOTS, failure_path, previous_run,  # noqa: F401 - re-exported
                                  write_run_record)



@dataclass
class Outcome:
    slot: str
    what: str
    code: int
    reason: str = ""
    skipped: bool = False


@dataclass
class Sweep:
    args: argparse.Namespace
    device: torch.device
    session: run.Session
    outcomes: list[Outcome] = field(default_factory=list)
    previous: dict = field(default_factory=dict)  # the zoo-run record's result before this call
    pending: list[Path] = field(default_factory=list)  # timing records awaiting their kernel profile

    @property
    def results(self) -> Path:
        return self.session.results


def _tee_stderr(fn):
    """Run ``fn``; return (its value, what it wrote on stderr), stderr still shown."""
    buf = io.StringIO()

    class Tee(io.TextIOBase):
        def write(self, s: str) -> int:
            buf.write(s)
            return sys.__stderr__.write(s) if sys.__stderr__ else len(s)

    with contextlib.redirect_stderr(Tee()):
        value = fn()
    return value, buf.getvalue()


def _reason(stderr: str, prog: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith(prog)]
    line = lines[-1] if lines else (stderr.strip().splitlines() or ["failed"])[-1]
    return line.split(": error: ", 1)[-1].strip()[:300]


OVERRIDES = {"warmup": "--warmup", "iters": "--iters", "max_seconds": "--max-seconds", "min_iters": "--min-iters"}


def zoo_protocol(args: argparse.Namespace, gpu: bool) -> protocols.Protocol:
    """The zoo's bounded protocol (stated in every record and in zoo.md), with the values the call changed."""
    given = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None}
    return protocols.preset("zoo", "cuda" if gpu else "cpu").with_changes(**given)


def protocol_args(args: argparse.Namespace, gpu: bool) -> list[str]:
    """The timer's flags naming the zoo's protocol and the values this call changed."""
    return ["--protocol", "zoo"] + [a for k, flag in OVERRIDES.items() if getattr(args, k) is not None
                                    for a in (flag, str(getattr(args, k)))]


def timer_argv(model: str, preset: str, slot: str, sweep: Sweep) -> list[str]:
    a = sweep.args
    gpu = sweep.device.type == "cuda"
    common = ["--model", model, *inputs.argv(preset), "--device", str(sweep.device), "--out-dir", str(a.out_dir),
              *(["--tag", a.tag] if a.tag else [])]
    if slot == "memory":
        return common
    if slot == "throughput":
        return common + ["--protocol", "throughput", "--throughput"] + ([] if a.search_compile else ["--no-search-compile"])
    # On a GPU the timing records get their kernel profile after every timed loop of
    # the call (a profile must not precede a timed loop of the process: common.run_kernels).
    proto = protocol_args(a, gpu)
    if slot == "fastest":
        return common + proto + ["--mode", "fastest"] + ([] if a.search_compile else ["--no-search-compile"])
    return common + proto


def _request(model: str, preset: str, slot: str, sweep: Sweep):
    family = registry.get(model).family
    tool = "mem" if slot == "memory" else "timer"
    parser = parsers.model(tool, family)
    args = parser.parse_args(timer_argv(model, preset, slot, sweep))
    req = cli.request_from_args(args, tool, sweep.device, family)
    if slot == "throughput":
        from common.zoo import throughput

        req = throughput.request_of(req)
    return req


def record_failure(sweep: Sweep, model: str, preset: str, slot: str, reason: str, code: int, req=None) -> None:
    request = req.to_dict() if req is not None else {"model": model, "input": {"name": preset}, "kind": slot}
    rec = records.make_record("failure", sweep.session.tag, request, sweep.session.env,
                              {"slot": slot, "reason": reason, "exit_code": code, "step": f"{model} {preset} {slot}"})
    records.write_record(failure_path(sweep.results, sweep.session.tag, model, preset, slot), rec)


def clear_failure(sweep: Sweep, model: str, preset: str, slot: str) -> None:
    path = failure_path(sweep.results, sweep.session.tag, model, preset, slot)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def run_slot(sweep: Sweep, model: str, preset: str, slot: str) -> Outcome:
    """One step: its record (skipped when it exists), or a failure record with the reason."""
    what = f"{model} {preset} {slot}"
    prog = f"zoo: {what}"
    state: dict = {}

    def work() -> list[Path]:
        state["req"] = req = _request(model, preset, slot, sweep)
        path = sweep.session.record_path(req)
        catalogue = registry.get(model).family != "zoo"
        force = sweep.args.force_catalogue if catalogue else sweep.args.force
        if path.exists() and not force:
            state["skipped"] = True
            return []
        cap = sweep.args.throughput_cap if sweep.device.type == "cuda" else None
        written = cli.measure_and_save(req, sweep.session, cap=cap)
        if sweep.session.defer_kernels and slot in ("eager", "fastest"):
            sweep.pending.append(path)
        return written

    def guarded() -> int:
        return cli.guarded(prog, work, lambda: what,
                           lambda: cli.smaller_batch(state["req"]) if "req" in state and slot != "throughput"
                           else (None, []))

    try:
        code, err = _tee_stderr(guarded)
        reason = _reason(err, prog) if code else ""
    except Exception as exc:  # noqa: BLE001 - a bug or a forward that fails at this size: recorded, next step
        code, reason = 4, oneline(exc, 300)
        sys.stderr.write(f"{prog}: error: {reason}\n")
    finally:
        gc.collect()
        if sweep.device.type == "cuda":
            torch.cuda.empty_cache()
    if code in (130, 143):
        return Outcome(slot, what, code, "interrupted")
    if code:
        record_failure(sweep, model, preset, slot, reason, code, state.get("req"))
    else:
        clear_failure(sweep, model, preset, slot)
    return Outcome(slot, what, code, reason, skipped=bool(state.get("skipped")))


def slots_at(what: list[str], preset: str, first_input: str) -> list[str]:
    return [s for s in what if s != "throughput" or preset == first_input]


def step_paths(argv: list[str], device: str, tag: str, out_dir: str | None) -> list[Path]:
    """Where each step of ``python -m common zoo ARGV`` on ``device`` leaves its
    outcome: the record, or the failure record of a request that cannot be made
    (the Dask sweep's check for work already done; no device is touched)."""
    args = build_parser().parse_args([*argv, "--device", device, "--tag", tag]
                                     + (["--out-dir", out_dir] if out_dir else []))
    dev = torch.device(device)
    defaults(args, dev.type == "cuda")
    sweep = Sweep(args, dev, run.Session(torch.device("cpu"), args.out_dir, tag, env={"probe": 1}))
    paths = []
    for model in model_list(args, dev.type == "cuda"):
        for preset in args.inputs:
            for slot in slots_at(args.what, preset, args.inputs[0]):
                try:
                    paths.append(sweep.session.record_path(_request(model, preset, slot, sweep)))
                except UserError:
                    paths.append(failure_path(sweep.results, tag, model, preset, slot))
    return paths



def model_steps(sweep: Sweep, model: str, first_input: str) -> list[Outcome]:
    out: list[Outcome] = []
    for preset in sweep.args.inputs:
        slots = slots_at(sweep.args.what, preset, first_input)
        dead = ""  # the model cannot take this input: the other slots get the same reason
        for slot in slots:
            if dead:
                record_failure(sweep, model, preset, slot, dead, 2)
                out.append(Outcome(slot, f"{model} {preset} {slot}", 2, dead))
                continue
            o = run_slot(sweep, model, preset, slot)
            out.append(o)
            if o.code in (130, 143):
                return out
            if o.code == 2 and _fatal(o.reason):
                dead = o.reason
    return out


def _fatal(reason: str) -> bool:
    """A reason that no other mode or slot can change: the size, the name, the build."""
    words = ("needs ", "cannot take", "unknown model", "too small", "no output-stride", "detection model",
             "cannot build")
    return any(w in reason for w in words)


def protocol_text(args: argparse.Namespace, gpu: bool) -> str:
    """The zoo's protocol in words, as its zoo-run record states it."""
    return (zoo_protocol(args, gpu).text + ("; fastest search: compile left out" if not args.search_compile
                                           else "; fastest search includes compile")
            + (f"; throughput: {protocols.preset('throughput', 'cuda' if gpu else 'cpu').text} per batch, batches up "
               + (f"to {args.throughput_cap}" if args.throughput_cap else "to the first that runs out of memory") if "throughput" in args.what else "")
            + ("; GPU kernel profile of each timing record after every timed loop of the call" if gpu else ""))


def sweep_record(sweep: Sweep, models: list[str], t0: float, done: int, total: int) -> None:
    a = sweep.args
    if not a.run_record:
        return
    write_run_record(sweep.results, sweep.session.tag, sweep.session.env, a.run_name, sweep.previous, models,
                     a.inputs, a.what, protocol_text(a, sweep.device.type == "cuda"), time.monotonic() - t0,
                     steps=total, steps_done=done,
                     measured=sum(1 for o in sweep.outcomes if not o.code and not o.skipped),
                     skipped_existing=sum(1 for o in sweep.outcomes if o.skipped))


def add_kernels(sweep: Sweep) -> None:
    """The deferred kernel profiles of the timing records this call wrote (GPU only).
    A profile that fails leaves its record as saved, its profile marked pending."""
    if not sweep.pending:
        return
    sweep.session.write_txt = sweep.session.write_txt or cli.write_txt
    for path in tqdm(sweep.pending, desc="zoo: kernel profiles", unit="record", file=sys.stderr,
                     dynamic_ncols=True):
        try:
            run.add_kernels(path, sweep.session)
        except Exception as exc:  # noqa: BLE001 - the profile is evidence beside a saved record; the rest go on
            sys.stderr.write(f"zoo: kernel profile of {path.name}: {type(exc).__name__}: "
                             f"{(str(exc).strip().splitlines() or [''])[0][:200]}\n")
        finally:
            gc.collect()
            if sweep.device.type == "cuda":
                torch.cuda.empty_cache()


def print_plan(sweep: Sweep, models: list[str]) -> None:
    """Each step's request as one JSON line, in the order the zoo would run them."""
    a = sweep.args
    for model in models:
        for preset in a.inputs:
            for slot in slots_at(a.what, preset, a.inputs[0]):
                try:
                    print(json.dumps(_request(model, preset, slot, sweep).to_dict(), sort_keys=True))
                except UserError as exc:
                    sys.stderr.write(f"zoo: {model} {preset} {slot}: cannot be made: {exc}\n")


def main(argv: list[str] | None = None) -> int:
    """The zoo sweep; a record it cannot write (a full disk, a read-only folder) ends it
    with one line, the records written so far kept."""
    try:
        return _main(argv)
    except WriteFailed as exc:
        sys.stderr.write(f"python -m common zoo: error: {exc}\n")
        return exc.exit_code
    except OSError as exc:
        sys.stderr.write(f"python -m common zoo: error: {os_error_line(exc)}\n")
        return WriteFailed.exit_code


def _main(argv: list[str] | None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    with envmod.cpu_threads(args.threads):
        return _sweep(p, args)


def _sweep(p: parsers.Parser, args: argparse.Namespace) -> int:
    try:
        device = envmod.resolve_device(args.device)
        gpu = device.type == "cuda"
        defaults(args, gpu)
        models = model_list(args, gpu)
        if args.list:
            print("\n".join(models))
            return 0
        for item in args.inputs:
            inputs.of(item)
        if args.dry_run:
            print_plan(Sweep(args, device, None), models)  # type: ignore[arg-type]  # no session: nothing is run
            return 0
        # A GPU's kernel profiles wait until every timed loop of this call has run (add_kernels).
        session = run.Session(device, args.out_dir, args.tag, defer_kernels=kernels.supported(device))
    except UserError as exc:
        sys.stderr.write(f"{p.prog}: error: {exc}\n")
        return exc.exit_code
    sweep = Sweep(args, device, session)
    sweep.previous = previous_run(sweep.results, session.tag, args.run_name)
    t0 = time.monotonic()
    total = len(models) * len(args.inputs) * len(args.what)
    done = 0
    bar = tqdm(models, desc="zoo", unit="model", file=sys.stderr, dynamic_ncols=True)
    stopped = ""
    for model in bar:
        if args.budget_s is not None and time.monotonic() - t0 > args.budget_s:
            stopped = f"budget of {args.budget_s:g} s spent"
            break
        bar.set_postfix_str(model[:40])
        outs = model_steps(sweep, model, args.inputs[0])
        sweep.outcomes += outs
        done += len(outs)
        sweep_record(sweep, models, t0, done, total)
        if any(o.code in (130, 143) for o in outs):
            stopped = "interrupted"
            break
    bar.close()
    add_kernels(sweep)
    failed = [o for o in sweep.outcomes if o.code]
    sys.stderr.write(f"zoo: {done} steps ({sum(o.skipped for o in sweep.outcomes)} already recorded) in "
                     f"{time.monotonic() - t0:.0f} s, {len(failed)} failed"
                     + (f"; stopped: {stopped} (run again to resume)" if stopped else "") + "\n")
    for o in failed:
        sys.stderr.write(f"{FAILED_LINE}{o.what}: {o.reason}\n")
    return 130 if stopped == "interrupted" else 0
