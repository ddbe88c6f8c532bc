"""The newcomer's path: entry points that find the project's environment, signals
that end a run in one line, error lines that name the command typed."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest

from common import bootstrap
from conftest import ROOT, child_env, snapshot


def test_entry_point_without_torch_goes_on_in_the_venv(monkeypatch, tmp_path):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    calls = []

    class Replaced(Exception):
        """os.execv never returns: the process becomes the venv's Python."""

    def execv(exe, argv):
        calls.append((exe, argv))
        raise Replaced

    monkeypatch.setattr(bootstrap.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(bootstrap, "VENV", venv)
    monkeypatch.setattr(bootstrap.os, "execv", execv)
    monkeypatch.setattr(bootstrap.sys, "argv", ["resnet_profiler/timer.py", "--model", "resnet50"])
    with pytest.raises(Replaced):
        bootstrap.ensure_environment("resnet_profiler/timer.py")
    assert calls == [(str(venv / "bin" / "python"), [str(venv / "bin" / "python"), "resnet_profiler/timer.py",
                                                      "--model", "resnet50"])]


def test_entry_point_before_set_up_says_how(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bootstrap.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(bootstrap, "VENV", tmp_path / ".venv")  # never made
    with pytest.raises(SystemExit) as info:
        bootstrap.ensure_environment("resnet_profiler/timer.py")
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err == ("resnet_profiler/timer.py: error: the project's environment (.venv) is not set up: "
                   "run ./test.sh or ./profile.sh first\n")


def test_ctrl_c_mid_run_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from common import cli

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.run.timing, "run_loop", interrupted)
    code = cli.main("timer", "resnet", ["--model", "resnet18", "--device", "cpu", "--size", "32x32", "--tag", "t",
                                        "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 130 and err.count("\n") == 1 and "interrupted; no output was written" in err
    assert not [p for p in snapshot(tmp_path) if p.endswith((".json", ".txt"))]


@pytest.mark.parametrize("sig,code,word", [(signal.SIGTERM, 143, "terminated")])
def test_signal_mid_run_is_one_line_and_writes_nothing(tmp_path, sig, code, word):
    out = tmp_path / "out"
    env = {**child_env(), "TQDM_DISABLE": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "resnet_profiler" / "timer.py"), "--model", "resnet18",
                             "--device", "cpu", "--size", "64x64", "--warmup", "100000", "--tag", "t",
                             "--out-dir", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # Wait until it has proven its output folders writable: then it is measuring.
    deadline = time.monotonic() + 60
    while not (out / "results" / "records" / "t" / "timing").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(sig)
    stdout, raw = proc.communicate(timeout=60)
    # As a terminal shows stderr at the end: progress bars redraw and clear their own line.
    lines = [seg for line in raw.decode().split("\n") if (seg := line.split("\r")[-1].strip())]
    assert proc.returncode == code
    assert stdout == b"" and len(lines) == 1 and word in lines[0] and b"Traceback" not in raw
    assert not [p for p in snapshot(out) if p.endswith((".json", ".txt"))]


def test_timer_sh_errors_name_the_verb_it_calls():
    proc = subprocess.run(["sh", str(ROOT / "scripts" / "timer.sh"), "--model", "resnet18", "--iters", "0"],
                          capture_output=True, text=True, timeout=120, env=child_env())
    assert proc.returncode == 2 and proc.stderr.startswith("python -m common time: error: argument --iters")


def test_memory_estimate_follows_live_activations_not_their_sum():
    from common import guard, inputs
    from common.spec import Request

    def est(batch: int, kind: str = "timing") -> int:
        return guard.estimate_bytes(Request(kind=kind, model="resnet18", device="cpu",
                                            input=inputs.resolve(None, "224x224", batch)))

    weights = 11_689_512 * 4
    # Inference: the weights plus the largest set of outputs alive at once (conv1 and bn1
    # outputs of 64x112x112 floats, 3.1 MiB each, plus the input), far below the sum of all.
    assert weights + 2 * 64 * 112 * 112 * 4 < est(1) < weights + 4 * 2**20 * 4
    assert est(1, "train-timing") > est(1) + weights  # autograd keeps every output; gradients
    assert est(8) - est(1) == pytest.approx(7 * (est(2) - est(1)), rel=0.01)  # linear in the batch


def test_an_unchanged_structure_is_not_rewritten(tmp_path, capsys):
    from common import cli

    argv = ["--model", "resnet18", "--struct", "--size", "32x32", "--out-dir", str(tmp_path)]
    assert cli.main("mem", "resnet", argv) == 0
    first = snapshot(tmp_path)
    assert len(first) == 2 and capsys.readouterr().out.count("\n") == 2
    assert cli.main("mem", "resnet", argv) == 0
    assert snapshot(tmp_path) == first and capsys.readouterr().out == ""  # nothing written, nothing named


def test_set_up_on_a_disk_too_full_for_the_venv_is_one_line_and_makes_nothing(tmp_path):
    # A CI run on a nearly full disk ended in pip's OSError half-way through installing torch,
    # leaving a broken .venv; the set-up now measures the free space first.
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    shutil.copy(ROOT / "requirements.txt", tmp_path)
    env = {k: v for k, v in child_env().items() if k != "PYTHON"}
    proc = subprocess.run(["bash", "-c", ". scripts/setup_venv.sh; echo went on"], cwd=tmp_path, capture_output=True,
                          text=True, env={**env, "BP_SETUP_NEED_GIB": str(2**40)})
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("setting up: error: creating .venv needs about") \
        and "GiB are: free some space" in lines[0], proc.stderr
    assert not (tmp_path / ".venv").exists()
