"""Sweeps on Dask (common/sweep): a local cluster of 2 CPU workers end to end, a
failing and a killed task, a resumed re-run, the Slurm job script, the one-device rules."""
from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from common import env as envmod
from common.errors import UserError
from common.parsers import drivers
from common.spec import Request
from common.sweep import cli as sweep_cli
from common.sweep import cluster, compare, plan, runner, task

pytest.importorskip("distributed")

SMALL = ["--inputs", "32x32", "--iters", "2", "--warmup", "0", "--threads", "1", "--no-dashboard"]


@pytest.fixture(scope="module")
def scheduler():
    """A local cluster of 2 single-threaded CPU workers, joined with --scheduler."""
    c = cluster.local_cluster([], workers=2, dashboard=False)
    try:
        yield c.scheduler_address
    finally:
        c.close()


def summary_of(out: Path) -> dict:
    (path,) = (out / "results" / "records").glob("*/sweep/*.json")
    rec = json.loads(path.read_text())
    assert rec["schema"] == 2 and rec["kind"] == "sweep" and rec["device_tag"].startswith("cpu-")
    return rec


def test_sweep_end_to_end_with_failures_then_resume(scheduler, tmp_path, monkeypatch, capsys):
    requests = tmp_path / "more.json"
    requests.write_text(json.dumps({"requests": [{"model": "xception", "input": "4x4"},  # too small: exit 2
                                                 {"model": "resnet18", "input": "48x48"}]}))  # killed below
    argv = ["--models", "resnet18", *SMALL, "--file", str(requests), "--scheduler", scheduler,
            "--out-dir", str(tmp_path), "--name", "t"]
    monkeypatch.setenv(sweep_cli.KILL_HOOK, "resnet18 48x48@0.3")
    assert sweep_cli.main(argv) == 1  # failures are reported, the sweep finishes
    out = capsys.readouterr().out
    rec = summary_of(tmp_path)
    tasks = {t["label"]: t for t in rec["result"]["tasks"]}
    assert rec["result"]["counts"] == {"done": 1, "skipped": 0, "failed": 2}
    assert "too small" in tasks["xception 4x4 eager timing"]["reason"]
    assert tasks["xception 4x4 eager timing"]["attempts"] == 1  # a request that cannot be made is not retried
    killed = tasks["resnet18 48x48 eager timing"]
    assert killed["reason"].startswith("killed by SIGKILL") and killed["attempts"] == 2
    assert "killed by SIGKILL" in out and "speed-up" in out
    timing = tmp_path / "results" / "records" / rec["device_tag"] / "timing"
    assert sorted(p.name for p in timing.iterdir()) == ["resnet18_32x32.json"]
    assert not list(tmp_path.rglob("*.tmp"))  # no partial files
    assert list(tmp_path.glob("resnet_profiler/resnet18_stats/*/resnet18_32x32.txt"))  # the single run's .txt
    # Both workers took tasks (the killed one is retried on the other); the record names each worker's host.
    assert {w["host"] for w in rec["result"]["workers"]} == {socket.gethostname()}
    assert len(rec["result"]["workers"]) == 2
    before = (timing / "resnet18_32x32.json").stat().st_mtime_ns

    monkeypatch.delenv(sweep_cli.KILL_HOOK)
    # The killed one runs now, and its worker dies mid-task: Dask reran such a task on another
    # worker unseen, and the summary said one attempt.
    monkeypatch.setenv(sweep_cli.KILL_WORKER_HOOK, "resnet18 48x48@0.3")
    assert sweep_cli.main(argv) == 1  # xception at 4x4 still cannot be made
    out = capsys.readouterr()
    assert "failed on ? (KilledWorker" in out.out + out.err and "retrying once" in out.out + out.err
    rec = summary_of(tmp_path)
    assert rec["result"]["counts"] == {"done": 1, "skipped": 1, "failed": 1}
    assert (timing / "resnet18_32x32.json").stat().st_mtime_ns == before  # finished work is not redone
    assert (timing / "resnet18_48x48.json").exists()
    lost = {t["label"]: t for t in rec["result"]["tasks"]}["resnet18 48x48 eager timing"]
    assert lost["status"] == "done" and lost["attempts"] == 2
    # The summary's tasks are serialised Requests; neither it nor the record a task wrote holds a flag.
    flags = next(t for t in rec["request"]["tasks"] if t["request"]["input"]["name"] == "32x32")
    assert flags["request"]["model"] == "resnet18" and flags["request"]["protocol"]["iters"] == 2
    assert flag_strings(rec) == [] and flag_strings(json.loads((timing / "resnet18_48x48.json").read_text())) == []
    assert compare.main([str(tmp_path), str(tmp_path)]) == 0  # the same medians: 0% apart
    assert "2 request(s), 2 the same request in both; largest difference among those 0.00%" in capsys.readouterr().out
    other = tmp_path / "other"  # the same medians under another protocol do not compare
    shutil.copytree(tmp_path / "results", other / "results")
    path = other / "results" / "records" / rec["device_tag"] / "timing" / "resnet18_32x32.json"
    data = json.loads(path.read_text())
    data["request"]["max_seconds"] = 9.0
    path.write_text(json.dumps(data))
    assert compare.main([str(tmp_path), str(other)]) == 1
    assert "differs: max_seconds" in capsys.readouterr().out


def test_zoo_through_the_sweep_one_task_per_model_then_budget_and_resume(scheduler, tmp_path, capsys):
    """Kind zoo: one task per model runs python -m common zoo's steps in its own process;
    a step that cannot be made is a failed task with the zoo's reason; the sweep keeps the
    zoo-run record; a spent budget starts nothing and a re-run skips finished models."""
    argv = ["--models", "resnet18", "vit_b_16", "--kinds", "zoo", "--modes", "eager", *SMALL,
            "--scheduler", scheduler, "--out-dir", str(tmp_path), "--name", "z"]
    assert sweep_cli.main([*argv, "--budget-s", "0"]) == 0  # nothing may start
    assert summary_of(tmp_path)["result"]["counts"] == {"done": 0, "skipped": 0, "failed": 0, "not_started": 2}
    assert "2 not started (budget spent)" in capsys.readouterr().out
    assert sweep_cli.main(argv) == 1
    rec = summary_of(tmp_path)
    tasks = {t["label"]: t for t in rec["result"]["tasks"]}
    assert tasks["resnet18 zoo 32x32"]["status"] == "done"
    vit = tasks["vit_b_16 zoo 32x32"]
    assert vit["status"] == "failed" and vit["attempts"] == 1 and "2 of 2 step(s) failed" in vit["reason"]
    assert "needs 224x224" in vit["reason"]
    recs = tmp_path / "results" / "records" / rec["device_tag"]
    assert (recs / "timing" / "resnet18_32x32.json").exists() and (recs / "memory" / "resnet18_32x32.json").exists()
    assert not (recs / "timing" / "resnet18_32x32_fastest.json").exists()  # modes: eager only
    run = json.loads((recs / "zoo-run" / "zoo.json").read_text())["result"]
    assert run["models"] == ["resnet18", "vit_b_16"] and run["what"] == ["eager", "memory"]
    assert run["steps"] == run["steps_done"] == 4 and run["via"] == "Dask sweep z" and run["calls"] == 1
    assert sorted(f["step"] for f in run["failed"]) == ["vit_b_16 32x32 eager", "vit_b_16 32x32 memory"]
    assert run["protocol"].startswith("custom: 0 warm-up") and "at most 2" in run["protocol"]
    assert "throughput" not in run["protocol"]
    assert sweep_cli.main(argv) == 0  # every step has its record or its reason: nothing runs again
    assert summary_of(tmp_path)["result"]["counts"] == {"done": 0, "skipped": 2, "failed": 0}
    assert json.loads((recs / "zoo-run" / "zoo.json").read_text())["result"]["calls"] == 2


def test_slurm_job_script_has_the_requested_resources(capsys):
    assert sweep_cli.main(["--slurm", "--queue", "gpu", "--account", "proj42", "--walltime", "02:30:00",
                           "--gpus-per-job", "2", "--cpus-per-gpu", "4", "--print-job-script", "--no-dashboard"]) == 0
    script = capsys.readouterr().out
    for line in ("#SBATCH -p gpu", "#SBATCH -A proj42", "#SBATCH -t 02:30:00", "#SBATCH --gres=gpu:2",
                 "#SBATCH --cpus-per-task=8"):
        assert line in script
    assert "--nworkers 2" in script and "--nthreads 1" in script  # one single-threaded worker per GPU


def test_two_workers_on_one_gpu_are_refused():
    a = {"worker_name": "gpu0", "host": "h", "gpu_index": 0, "gpu_uuid": "GPU-1"}
    cluster.check_devices([a, {**a, "worker_name": "gpu1", "gpu_index": 1, "gpu_uuid": "GPU-2"}])
    with pytest.raises(UserError, match="GPU-1 .*claimed by workers gpu0, gpu1"):
        cluster.check_devices([a, {**a, "worker_name": "gpu1"}])
    with pytest.raises(UserError, match="--nthreads 1"):
        cluster.check_threads({"tcp://a": {"name": "w", "nthreads": 4}})


def test_worker_pinning_and_gpu_identity(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert task.pinned_gpu("SLURMCluster-0-1") == "3"  # a job's second worker: the job's second GPU
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    assert task.pinned_gpu("gpu5") == "5"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert task.pinned_gpu("cpu0") is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setattr(envmod, "_nvidia_smi", lambda query: [])

    class Props:
        uuid = "1234-abcd"

    import torch
    assert envmod.gpu_identity(torch.device("cuda", 1), Props()) == {
        "gpu_index": 3, "gpu_uuid": "GPU-1234-abcd", "cuda_visible_devices": "2,3"}


def test_dry_run_lines_run_alone_as_printed(tmp_path, capsys, keep_threads):
    """--dry-run prints each task's command line with its out-dir: the task's serialised
    Request, whole; run as printed (no Dask; the front door in this process: the sweep's
    tasks above run the same line in their own), it writes the record the sweep's task would have written."""
    import shlex

    from common.__main__ import main as door

    assert sweep_cli.main(["--models", "resnet18", *SMALL, "--device", "cpu",
                           "--out-dir", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m common request --json ")
    argv = shlex.split(lines[0])
    assert argv[argv.index("--out-dir") + 1] == str(tmp_path) and argv[6:] == ["--out-dir", str(tmp_path)]
    req = Request.from_dict(json.loads(argv[5]))
    assert (req.model, req.input.tag, req.device, req.iters, req.warmup, req.threads) == \
        ("resnet18", "32x32", "cpu", 2, 0, 1)
    assert argv[:3] == ["python", "-m", "common"] and door(argv[3:]) == 0
    (path,) = tmp_path.glob("results/records/*/timing/*.json")
    assert path.name == "resnet18_32x32.json"
    assert Request.from_dict(json.loads(path.read_text())["request"]) == req  # the same request, measured


def flag_strings(value: object) -> list[str]:
    """Every string in a serialised form that looks like a command-line flag."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in flag_strings(k) + flag_strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in flag_strings(v)]
    return [value] if isinstance(value, str) and (value.startswith("-") or " --" in value) else []


def test_no_flag_travels_in_a_task_or_the_plan(tmp_path, capsys):
    """A sweep task is a serialised Request (or a zoo task's fields): the user's modes and
    protocol values, from flags and from a file, become Request and Protocol fields."""
    import shlex

    sweep = tmp_path / "s.yaml"
    sweep.write_text("max_seconds: '2.5'\nrequests:\n  - {model: resnet18, input: 64x64, kind: layers, "
                     "mode: '--precision bf16 --channels-last', min_iters: 7}\n")
    argv = ["--models", "resnet18", "--inputs", "pascal", "--modes", "eager", "fastest", "--kinds", "timing",
            "memory", "zoo", "--file", str(sweep), "--warmup", "3", "--threads", "1", "--device", "cpu"]
    assert sweep_cli.main([*argv, "--plan"]) == 0
    planned = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [t["kind"] for t in planned] == ["zoo", "timing", "timing", "memory", "layers"]
    assert flag_strings(planned) == []
    zoo, eager, fastest, memory, layers = planned
    assert zoo["zoo"]["protocol"] == {"warmup": 3, "max_seconds": 2.5, "threads": 1}
    assert eager["request"]["protocol"]["max_seconds"] == 2.5 and eager["request"]["warmup"] == 3
    assert fastest["request"]["search"] == "fastest" and memory["request"]["kind"] == "memory"
    req = Request.from_dict(layers["request"])
    assert (req.precision, req.channels_last, req.min_iters, req.protocol.name) == ("bf16", True, 7, "custom")
    assert layers["label"] == "resnet18 64x64 eager bf16 channels-last layers"
    assert sweep_cli.main([*argv, "--dry-run"]) == 0
    lines = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
    assert [json.loads(a[5]) for a in lines[1:]] == [t["request"] for t in planned[1:]]


def test_a_serialised_request_runs_whole_or_fails_in_one_line(tmp_path, capsys):
    from common import request_run

    assert request_run.main(["--json", "{\"model\": 1}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a serialised request" in err
    (t,) = plan.tasks_from(drivers.sweep().parse_args(["--models", "xception", "--inputs", "4x4"]))
    assert request_run.main(["--json", t.request, "--out-dir", str(tmp_path)]) == 2
    assert "too small" in capsys.readouterr().err and not list(tmp_path.rglob("*.json"))


def test_plan_expands_tags_modes_and_kinds(capsys):
    args = drivers.sweep().parse_args(["--models", "backbone", "vgg16", "--inputs", "pascal", "64x64",
                                                "--modes", "eager", "fastest", "--precision bf16 --channels-last",
                                                "--kinds", "timing", "memory"])
    tasks = plan.tasks_from(args, "cuda:0")
    assert len(tasks) == 7 * 2 * (3 + 1)  # memory once per model and input, whatever the modes
    first, bf16 = tasks[0].req(), tasks[2].req()
    assert (first.model, first.input.tag, first.device, first.protocol.name) == ("resnet18", "pascal", "cuda:0", "full")
    assert tasks[4].req().input.tag == "64x64" and bf16.channels_last and bf16.precision == "bf16"
    assert tasks[3].tool == "mem" and tasks[3].label == "resnet18 pascal memory"
    assert tasks[0].argv("cuda:0", "/o", None) == ["-m", "common", "request", "--json", tasks[0].request,
                                                   "--out-dir", "/o"]
    with pytest.raises(UserError, match="unknown mode"):
        plan.mode_args("bf16")
    assert sweep_cli.main(["--models", "nosuchnet", "--dry-run"]) == 2
    assert "unknown model 'nosuchnet'" in capsys.readouterr().err


def test_failure_reasons_name_the_signal_and_the_last_line():
    err = "resnet18 32x32:  50%|#####     | 1/2 [00:01<00:01, 1.0it/s]\rtimer.py: error: out of memory\n"
    assert task.describe(3, err, None) == "exit 3: timer.py: error: out of memory"
    assert task.describe(-9, "x: 10%|# | 1/9 [00:01<00:09, 1.0it/s]", None) == "killed by SIGKILL"
    assert task.describe(None, "", 5.0) == "timed out after 5 s"
    s = runner.summarize([], [], {}, 2.0, None)
    assert s["counts"] == {"done": 0, "skipped": 0, "failed": 0} and "speed-up" in runner.table(s, "x")


def test_probe_gives_what_the_device_check_reads(monkeypatch):
    """The check of shared GPUs reads the probe's own output (it failed on a real GPU
    worker, where the UUID is set, for want of the worker's name)."""
    from common.sweep import task

    monkeypatch.setattr(task, "_PROBED", {})
    info = task.probe("cpu")
    gpu = {**info, "gpu_uuid": "GPU-1", "gpu_index": 0}
    cluster.check_devices([gpu])
    with pytest.raises(UserError, match="claimed by workers"):
        cluster.check_devices([gpu, {**gpu, "worker_name": "other"}])


def test_a_worker_names_its_device_and_reads_its_task_paths_without_torch(tmp_path):
    """The sweep's process works out each task's record paths (plan.paths_by_place); a worker
    only probes, checks and starts runs, so it never imports torch (about 2 CPU-s a worker)."""
    import pickle
    import subprocess
    import sys

    from conftest import ROOT, child_env

    (t,) = plan.tasks_from(drivers.sweep().parse_args(["--models", "xception", "--inputs", "4x4", "--device", "cpu"]))
    tag = envmod.cpu_identity()["tag"]
    paths = plan.paths_by_place(t, {("cpu", tag)}, str(tmp_path))
    assert list(paths) == [plan.place("cpu", tag)] and "too small" in paths[plan.place("cpu", tag)]
    code = ("import pickle, sys; from pathlib import Path; from common.sweep import task, worker_signals, plan; "
            "t, paths, out = pickle.loads(sys.stdin.buffer.read()); "
            "r = task.run_task(t, out, None, 'cpu', None, paths); plan.valid_record(Path(out) / 'x.json'); "
            "print(r['status'], r['tag'], 'torch' in sys.modules, 'distributed' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True,
                          input=pickle.dumps((t, paths, str(tmp_path))))
    assert proc.stdout.decode().split() == ["failed", tag, "False", "True"], proc.stderr.decode()[-500:]
    import torch  # the probe's tag is the one a run's records are filed under

    assert envmod.device_tag(envmod.collect(torch.device("cpu"))) == tag
