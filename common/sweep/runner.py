"""Run a sweep's tasks on a Dask client: submit, retry a failure once on another
worker, show progress, and summarise (table on stdout, a 'sweep' record)."""
from __future__ import annotations

import signal
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from common.errors import UserError
from common.sweep import cluster, plan
from common.sweep import task as taskmod


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


def ignore_stop_signals() -> None:
    """From the first Ctrl-C or SIGTERM on, until the summary is written: a second
    one (a terminal's repeated Ctrl-C) must not lose it."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run(client, tasks: list[plan.Task], out_dir: str | None, tag: str | None, device_kind: str = "auto",
        timeout: float | None = None, prog: str = "sweep", budget_s: float | None = None,
        on_result: Callable[[dict], None] | None = None) -> dict:
    """Every task once (a retry for a failure another worker might not have); returns the summary.
    Tasks are handed out as workers free up (never more at once than there are workers),
    so with ``budget_s`` no task starts once that many seconds have passed: the running
    ones finish, the rest are counted as not started (a re-run resumes). ``on_result``
    sees each task's final outcome. Ctrl-C or SIGTERM stops the sweep: the summary
    (key ``stopped``) holds what finished, the tasks stopped mid-run and those not started."""
    from distributed import as_completed

    infos = cluster.probe_workers(client, device_kind)
    places = {(i["device"], tag or i["tag"]) for i in infos.values()}
    paths: dict[plan.Task, dict] = {}  # worked out here as each task goes out, while the workers run the others
    start = time.monotonic()
    pending: dict[str, tuple[plan.Task, int]] = {}
    submitted: list = []
    todo: deque[tuple[plan.Task, int, str | None]] = deque((t, 1, None) for t in tasks)
    queue = as_completed()

    def submit(t: plan.Task, attempt: int, avoid: str | None = None) -> None:
        others = [a for a in client.scheduler_info(**_all(client))["workers"] if a != avoid] if avoid else []
        place = {"workers": others, "allow_other_workers": False} if others else {}
        if t not in paths:
            paths[t] = plan.paths_by_place(t, places, out_dir)
        fut = client.submit(taskmod.run_task, t, out_dir, tag, device_kind, timeout, paths[t], pure=False,
                            key=f"sweep-task-{attempt}-{uuid.uuid4().hex[:12]}", **place)
        pending[fut.key] = (t, attempt)
        submitted.append(fut)
        queue.add(fut)

    def fill() -> None:
        """As many tasks in flight as there are workers (workers that join later count too)."""
        slots = max(1, len(client.scheduler_info(**_all(client))["workers"]))
        while todo and len(pending) < slots and (budget_s is None or time.monotonic() - start < budget_s):
            submit(*todo.popleft())

    outcomes: list[dict] = []
    attempts: list[dict] = []  # every run, retried ones too: the work each worker did
    counts = {"done": 0, "skipped": 0, "failed": 0}
    bar = tqdm(total=len(tasks), desc=prog, unit="task", file=sys.stderr, dynamic_ncols=True)
    stopped = None
    try:
        fill()  # inside: a Ctrl-C while the first tasks' paths are worked out is a stop like any other
        while pending:
            fut = next(queue)
            t, attempt = pending.pop(fut.key)
            try:
                r = fut.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker (KilledWorker) or a task error
                r = {"label": t.label, "worker": "?", "worker_name": "?", "host": None, "gpu_index": None,
                     "gpu_uuid": None, "worker_addr": None, "seconds": 0.0, "status": "failed", "retry": True,
                     "tool": t.tool, "tag": tag,
                     "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]}
            r["attempts"] = attempt
            attempts.append(r)
            if r.get("gpu_uuid"):  # workers that joined after the start are checked too
                infos.setdefault(r["worker_addr"] or r["worker_name"], {
                    "label": r["worker"], **{k: r[k] for k in ("worker_name", "host", "gpu_index", "gpu_uuid")}})
                cluster.check_devices(list(infos.values()))
            if r["status"] == "failed" and r.get("retry") and attempt == 1:
                bar.write(f"{prog}: {t.label} failed on {r['worker']} ({r['reason']}); retrying once")
                todo.appendleft((t, 2, r.get("worker_addr")))
                fill()
                continue
            if r["status"] == "failed":
                bar.write(f"{prog}: {t.label} failed on {r['worker']}: {r['reason']}")
            outcomes.append(r)
            counts[r["status"]] += 1
            if on_result is not None:
                on_result(r)
            bar.set_postfix(counts, refresh=False)
            bar.update(1)
            fill()
    except (KeyboardInterrupt, Terminated) as exc:
        ignore_stop_signals()
        stopped = "SIGINT" if isinstance(exc, KeyboardInterrupt) else "SIGTERM"
        client.cancel([f for f in submitted if not f.done()])  # nothing new starts
        bar.leave = False  # the bar gives way to the one line that says what happened
    except BaseException:
        client.cancel([f for f in submitted if not f.done()])
        raise
    finally:
        bar.close()
    unstarted = [t for t, _, _ in todo]
    if stopped:
        in_flight = []
        for t, attempt in pending.values():
            if _finished(t, infos, out_dir, tag):  # its records were written just before the stop
                outcomes.append({"label": t.label, "worker": "?", "seconds": 0.0, "status": "done",
                                 "attempts": attempt, "reason": f"its records were complete when {stopped} came"})
            else:
                in_flight.append((t, attempt))
        return summarize(outcomes, attempts, infos, time.monotonic() - start, out_dir, unstarted,
                         stopped=stopped, in_flight=in_flight)
    if unstarted:
        sys.stderr.write(f"{prog}: budget of {budget_s:g} s spent: {len(unstarted)} task(s) not started "
                         "(run the same command again to resume)\n")
    return summarize(outcomes, attempts, infos, time.monotonic() - start, out_dir, unstarted)


def _finished(t: plan.Task, infos: dict, out_dir: str | None, tag: str | None) -> bool:
    """Every record ``t`` writes is there and valid, as some worker's run would write it."""
    for info in infos.values():
        try:
            paths = plan.record_paths(t, info["device"], tag or info["tag"], out_dir)
        except UserError:  # a request that cannot be made has no records
            return False
        if all(plan.valid_record(p) for p in paths):
            return True
    return False


def _all(client) -> dict:
    return {"n_workers": -1} if cluster._takes_n_workers(client) else {}


def summarize(outcomes: list[dict], attempts: list[dict], infos: dict, wall: float, out_dir: str | None,
              unstarted: list[plan.Task] = (), stopped: str | None = None,
              in_flight: list[tuple[plan.Task, int]] = ()) -> dict:
    workers: dict[str, dict] = {}
    for info in infos.values():
        workers.setdefault(info["label"], {"worker": info["label"], "host": info["host"],
                                          "gpu_index": info["gpu_index"], "gpu_uuid": info["gpu_uuid"],
                                          "runs": 0, "done": 0, "skipped": 0, "failed": 0, "busy_s": 0.0})
    for r in attempts:
        w = workers.setdefault(r["worker"], {"worker": r["worker"], "host": r["host"], "gpu_index": r["gpu_index"],
                                             "gpu_uuid": r["gpu_uuid"], "runs": 0, "done": 0, "skipped": 0,
                                             "failed": 0, "busy_s": 0.0})
        w["runs"] += r["status"] != "skipped"
        w[r["status"]] += 1
        w["busy_s"] += r["seconds"]
    task_seconds = sum(r["seconds"] for r in attempts)
    root = Path(out_dir) if out_dir else None
    tasks = [{"label": r["label"], "status": r["status"], "worker": r["worker"], "seconds": r["seconds"],
              "attempts": r["attempts"], "reason": r.get("reason"), "record": _rel(r.get("record"), root)}
             for r in outcomes]
    counts = defaultdict(int, {s: sum(1 for r in outcomes if r["status"] == s) for s in ("done", "skipped", "failed")})
    if in_flight:
        counts["stopped"] = len(in_flight)
        tasks += [{"label": t.label, "status": "stopped", "worker": None, "seconds": 0.0, "attempts": attempt,
                   "reason": f"the sweep was stopped ({stopped}) while it ran", "record": None}
                  for t, attempt in in_flight]
    if unstarted:
        counts["not_started"] = len(unstarted)
        why = f"the sweep was stopped ({stopped})" if stopped else "the sweep's --budget-s was spent"
        tasks += [{"label": t.label, "status": "not started", "worker": None, "seconds": 0.0, "attempts": 0,
                   "reason": why, "record": None} for t in unstarted]
    extra = {"stopped": stopped} if stopped else {}
    return {**extra, "device_tags": sorted({i["tag"] for i in infos.values() if i.get("tag")}),
            "wall_s": wall, "task_seconds": task_seconds, "speedup": task_seconds / wall if wall > 0 else None,
            "counts": dict(counts), "workers": list(workers.values()), "tasks": tasks}


def _rel(path: str | None, root: Path | None) -> str | None:
    if not path or root is None:
        return path
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return path


def table(summary: dict, name: str) -> str:
    """The closing table: counts, wall time, work per worker/GPU, failures with reasons."""
    c = summary["counts"]
    n = sum(c.values())
    later = f", {c['not_started']} not started (budget spent)" if c.get("not_started") else ""
    lines = [f"sweep {name}: {n} tasks: {c.get('done', 0)} done, {c.get('skipped', 0)} skipped (valid record), "
             f"{c.get('failed', 0)} failed{later}; wall {summary['wall_s']:.1f} s on {len(summary['workers'])} "
             "worker(s)",
             "", f"{'worker':<32}{'runs':>6}{'done':>6}{'skipped':>9}{'failed':>8}{'busy s':>10}"]
    for w in summary["workers"]:
        lines.append(f"{w['worker'][:31]:<32}{w['runs']:>6}{w['done']:>6}{w['skipped']:>9}{w['failed']:>8}"
                     f"{w['busy_s']:>10.1f}")
    speed = summary["speedup"]
    lines += ["", f"sum of task times {summary['task_seconds']:.1f} s; speed-up over running them one after "
              f"another: {speed:.2f}x" if speed is not None else "sum of task times: 0 s"]
    failed = [t for t in summary["tasks"] if t["status"] == "failed"]
    if failed:
        lines += ["", "failures:"] + [f"  {t['label']} ({t['worker']}, {t['attempts']} attempt(s)): {t['reason']}"
                                      for t in failed]
    return "\n".join(lines)
