"""Where a sweep runs: a local cluster (one worker per visible GPU, each pinned to
it; or CPU workers), an existing Dask cluster, or workers started by Slurm. And
the one rule of every placement: one timing per device at a time.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

from common.errors import UserError
from common.sweep import task as taskmod

ROOT = Path(__file__).resolve().parents[2]
SIGNALS = "common.sweep.worker_signals"  # preloaded by local workers: Ctrl-C is the sweep's to answer


def _pythonpath() -> str:
    path = os.environ.get("PYTHONPATH")
    return str(ROOT) + (os.pathsep + path if path else "")


def has_dashboard() -> bool:
    return importlib.util.find_spec("bokeh") is not None  # Dask's dashboard needs bokeh


def local_cluster(gpus: list[str], workers: int = 1, dashboard: bool = True):
    """One single-threaded worker per GPU in ``gpus``, each seeing only its GPU
    (dask_cuda.LocalCUDACluster when it is installed; else a SpecCluster of Nanny
    workers, each with its own CUDA_VISIBLE_DEVICES), or ``workers`` CPU workers."""
    import dask
    from distributed import Nanny, Scheduler, SpecCluster

    # A lost worker fails its task at once, so the runner counts the loss as an attempt and
    # retries once (Dask's own retry would rerun it unseen); the cluster logs errors only.
    dask.config.set({"distributed.scheduler.allowed-failures": 0, "logging.distributed": "error"})
    # Any free port (the link is printed), with or without the dashboard (the scheduler
    # serves HTTP either way): a fixed :8787 makes a second sweep on the host warn on
    # stderr, and a sweep's messages are one line each.
    address, dashboard = ":0", dashboard and has_dashboard()
    if gpus and importlib.util.find_spec("dask_cuda") is not None:  # pragma: no cover - needs GPUs and dask_cuda
        from dask_cuda import LocalCUDACluster

        os.environ["PYTHONPATH"] = _pythonpath()
        return LocalCUDACluster(CUDA_VISIBLE_DEVICES=",".join(gpus), threads_per_worker=1, memory_limit=0,
                                dashboard_address=address, silence_logs=logging.ERROR, preload=[SIGNALS])
    env = {"PYTHONPATH": _pythonpath()}
    options = {"nthreads": 1, "memory_limit": 0, "silence_logs": logging.ERROR, "preload": [SIGNALS]}
    if gpus:
        specs = {f"gpu{g}": {"cls": Nanny, "options": {**options, "env": {**env, "CUDA_VISIBLE_DEVICES": g}}}
                 for g in gpus}
    else:
        specs = {f"cpu{i}": {"cls": Nanny, "options": {**options, "env": {**env, "CUDA_VISIBLE_DEVICES": ""}}}
                 for i in range(workers)}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": address, "dashboard": dashboard,
                                               "host": "127.0.0.1"}}
    return SpecCluster(scheduler=scheduler, workers=specs, silence_logs=logging.ERROR, name="sweep")


def slurm_cluster(queue: str | None, account: str | None, walltime: str, gpus_per_job: int, cpus_per_gpu: int,
                  memory: str, dashboard: bool = True):
    """dask_jobqueue.SLURMCluster: each job asks for ``gpus_per_job`` GPUs and runs as many
    single-threaded workers; each worker runs its tasks on the GPU of its rank in the job."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise UserError("--slurm needs dask-jobqueue (pip install dask-jobqueue)") from None
    gres = [f"--gres=gpu:{gpus_per_job}"] if gpus_per_job else []
    return SLURMCluster(
        queue=queue, account=account, walltime=walltime,
        cores=max(gpus_per_job, 1), processes=max(gpus_per_job, 1),  # one thread per worker
        job_cpu=cpus_per_gpu * max(gpus_per_job, 1), memory=memory, job_extra_directives=gres,
        python=sys.executable, job_script_prologue=[f"cd {ROOT}", f"export PYTHONPATH={_pythonpath()}"],
        silence_logs="error", job_name="sweep",
        scheduler_options={"dashboard_address": ":8787"} if dashboard and has_dashboard()
        else {"dashboard": False, "dashboard_address": ":0"})


def gpus_here(device: str = "auto") -> list[str]:
    """The GPUs this machine lets the sweep use (CUDA_VISIBLE_DEVICES, else nvidia-smi's list)."""
    return [] if device == "cpu" else taskmod.visible_gpus()


def check_threads(workers: dict) -> None:
    """Refuse workers that would run two tasks at once (``scheduler_info()['workers']``)."""
    bad = [f"{w.get('name', a)} ({w['nthreads']} threads)" for a, w in workers.items() if w.get("nthreads") != 1]
    if bad:
        raise UserError(f"worker(s) {', '.join(bad)} would run two timings at once: start every worker with "
                        "--nthreads 1 (one worker per GPU)")


def check_devices(infos: list[dict]) -> None:
    """Two workers on one GPU (same UUID) would time on a shared device: refuse."""
    claims: dict[str, dict[str, dict]] = {}
    for info in infos:
        if info.get("gpu_uuid"):
            claims.setdefault(info["gpu_uuid"], {})[str(info["worker_name"])] = info
    for uuid, by_worker in claims.items():
        if len(by_worker) > 1:
            one = next(iter(by_worker.values()))
            raise UserError(f"{uuid} (host {one['host']}, GPU {one['gpu_index']}) is claimed by workers "
                            f"{', '.join(sorted(by_worker))}: two timings would share one device; give each "
                            "worker its own GPU (CUDA_VISIBLE_DEVICES=<index>, one worker per GPU)")


def probe_workers(client, device_kind: str, timeout: float = 600) -> dict[str, dict]:
    """Each worker's host, device tag, GPU index and UUID (one probe task pinned to each)."""
    workers = client.scheduler_info(n_workers=-1)["workers"] if _takes_n_workers(client) \
        else client.scheduler_info()["workers"]
    if not workers:
        raise UserError("the Dask cluster has no workers")
    check_threads(workers)
    futures = {a: client.submit(taskmod.probe, device_kind, workers=[a], allow_other_workers=False, pure=False,
                                key=f"sweep-probe-{a}") for a in workers}
    infos = {}
    for addr, fut in futures.items():
        try:
            infos[addr] = fut.result(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - a worker that cannot probe is named, with its reason
            raise UserError(f"worker {workers[addr].get('name', addr)}: cannot probe its device: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    check_devices(list(infos.values()))
    return infos


def _takes_n_workers(client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters
