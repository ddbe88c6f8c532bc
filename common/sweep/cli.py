"""python -m common sweep: flags, where the sweep runs, the closing table and record."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from common.errors import UserError, WriteFailed, os_error_line
from common.parsers import drivers
from common.sweep import cluster, plan, runner, zoo_run

# Hidden test hooks: "LABEL-PART[@SECONDS]" SIGKILLs the run of every matching task after SECONDS (default 0.5);
# the second SIGKILLs the worker running it instead, the first time only.
KILL_HOOK = "BACKBONE_SWEEP_TEST_KILL"
KILL_WORKER_HOOK = "BACKBONE_SWEEP_TEST_KILL_WORKER"


Terminated = runner.Terminated


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated


def with_test_hook(tasks: list[plan.Task]) -> list[plan.Task]:
    for env, key in ((KILL_HOOK, "kill_after"), (KILL_WORKER_HOOK, "kill_worker_after")):
        if hook := os.environ.get(env):
            part, _, after = hook.partition("@")
            tasks = [dataclasses.replace(t, **{key: float(after or 0.5)}) if part in t.label else t for t in tasks]
    return tasks


def default_name(tasks: list[plan.Task]) -> str:
    digest = hashlib.sha1(json.dumps([t.to_dict() for t in tasks], sort_keys=True).encode()).hexdigest()
    return f"sweep-{digest[:8]}"


def plan_device(args: argparse.Namespace) -> str:
    """The device the requests are planned for: a GPU where the workers have one (a
    local cluster on this machine's GPUs, Slurm's GPU jobs), else the CPU."""
    gpu = args.device != "cpu" and (args.slurm or bool(cluster.gpus_here(args.device)))
    return "cuda:0" if gpu else "cpu"


def replan(args: argparse.Namespace, tasks: list[plan.Task], device: str, infos: dict) -> list[plan.Task]:
    """The tasks again for the device type of an existing cluster's workers, where all share one."""
    from common.protocol import device_type

    types = {device_type(i["device"]) for i in infos.values()}
    if len(types) != 1 or types == {device_type(device)}:
        return tasks
    return with_test_hook(plan.tasks_from(args, "cpu" if types == {"cpu"} else "cuda:0"))


def connect(args: argparse.Namespace, stack: contextlib.ExitStack, prog: str):
    """The client, and where the sweep runs, in words."""
    from distributed import Client

    if args.scheduler:
        try:
            client = stack.enter_context(Client(args.scheduler, timeout="30s"))
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {args.scheduler}: {exc}") from None
        return client, f"cluster at {args.scheduler}"
    if args.slurm:
        c = stack.enter_context(contextlib.closing(slurm_from(args)))
        c.scale(jobs=args.jobs)
        client = stack.enter_context(Client(c))
        sys.stderr.write(f"{prog}: waiting for Slurm workers ({args.jobs} job(s) of {args.gpus_per_job} GPU(s))\n")
        client.wait_for_workers(1)
        return client, f"Slurm ({args.jobs} job(s) x {args.gpus_per_job} GPU(s))"
    gpus = cluster.gpus_here(args.device)
    c = stack.enter_context(contextlib.closing(cluster.local_cluster(gpus, args.workers, args.dashboard)))
    client = stack.enter_context(Client(c))
    return client, (f"local cluster, one worker per GPU ({', '.join(gpus)})" if gpus
                    else f"local cluster, {args.workers} CPU worker(s)")


def slurm_from(args: argparse.Namespace):
    return cluster.slurm_cluster(args.queue, args.account, args.walltime, args.gpus_per_job, args.cpus_per_gpu,
                                 args.memory, args.dashboard)


def save(summary: dict, tasks: list[plan.Task], args: argparse.Namespace, name: str, where: str) -> Path:
    """The summary as a record: kind 'sweep', the workers' device tag."""
    import torch

    from common import env as envmod
    from common import records

    env = envmod.collect(torch.device("cpu"))
    tags = summary["device_tags"]
    tag = args.tag or (tags[0] if len(tags) == 1 else envmod.device_tag(env))
    request = {"kind": "sweep", "name": name, "where": where, "device": args.device,
               "tasks": [t.to_dict() for t in tasks]}
    results = (args.out_dir or records.ROOT) / "results"
    path = records.record_path(results, tag, "sweep", name)
    records.write_record(path, records.make_record("sweep", tag, request, env, summary))
    return path


def stopped_line(prog: str, summary: dict, path: Path) -> int:
    """The one line of a sweep stopped by Ctrl-C or SIGTERM; its exit status."""
    c = summary["counts"]
    sig = summary["stopped"]
    sys.stderr.write(f"{prog}: {'interrupted' if sig == 'SIGINT' else 'terminated'} ({sig}): {c.get('done', 0)} "
                     f"task(s) done, {c.get('skipped', 0)} skipped, {c.get('failed', 0)} failed, "
                     f"{c.get('stopped', 0)} stopped mid-run, {c.get('not_started', 0)} not started; summary "
                     f"record {path}; run the same command again to resume\n")
    return 130 if sig == "SIGINT" else 143


def main(argv: list[str] | None = None) -> int:
    parser = drivers.sweep()
    args = parser.parse_args(argv)
    prog = parser.prog
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    if main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(args, prog)
    finally:
        for sig, handler in handlers.items():  # the stop signals were ignored while the summary was written
            signal.signal(sig, handler)


def _main(args: argparse.Namespace, prog: str) -> int:
    if args.out_dir:
        args.out_dir = args.out_dir.resolve()
    try:
        if args.slurm and args.print_job_script:
            with contextlib.closing(slurm_from(args)) as c:
                print(c.job_script())
            return 0
        device = plan_device(args)
        tasks = with_test_hook(plan.tasks_from(args, device))
        out = str(args.out_dir) if args.out_dir else None
        if args.plan or args.dry_run:
            for t in tasks:
                print(json.dumps(t.to_dict()) if args.plan else shlex.join(["python", *t.argv(None, out, args.tag)]))
            return 0
        with contextlib.ExitStack() as stack:
            client, where = connect(args, stack, prog)
            if args.scheduler:  # its workers' device type is known once they are probed
                tasks = replan(args, tasks, device, cluster.probe_workers(client, args.device))
            name = args.name or default_name(tasks)
            zoo = zoo_run.ZooRun(tasks, out, name)
            if args.dashboard and client.dashboard_link and (args.scheduler or cluster.has_dashboard()):
                sys.stderr.write(f"{prog}: dashboard: {client.dashboard_link}\n")
            sys.stderr.write(f"{prog}: {len(tasks)} task(s) on {where}\n")
            summary = runner.run(client, tasks, out, args.tag, args.device, args.task_timeout, prog, args.budget_s,
                                 zoo if zoo else None)
        path = save(summary, tasks, args, name, where)
        if summary.get("stopped"):
            return stopped_line(prog, summary, path)
        print(runner.table(summary, name))
        print(path)
        return 1 if summary["counts"].get("failed") else 0
    except UserError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return exc.exit_code
    except OSError as exc:  # the summary record on a full disk or a read-only folder
        sys.stderr.write(f"{prog}: error: {os_error_line(exc)}\n")
        return WriteFailed.exit_code
    except (KeyboardInterrupt, Terminated) as exc:
        sys.stderr.write(f"{prog}: {'interrupted' if isinstance(exc, KeyboardInterrupt) else 'terminated'}; every "
                         "record written so far is kept: run the same command again to resume\n")
        return 130 if isinstance(exc, KeyboardInterrupt) else 143
