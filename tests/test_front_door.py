"""The one front door (python -m common <verb>): the verb list, each verb's own
--help, the entry points that stay as one-line calls of a verb, and plans that
carry Requests, never command-line strings."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest

from common import drive
from common.__main__ import VERBS, main as door
from common.spec import Request
from conftest import ROOT, child_env

DRIVER = re.compile(r'exec sh "\$\(dirname "\$0"\)/\.\./scripts/common\.sh" ([a-z0-9-]+)( .*)? "\$@"')


def test_help_lists_every_verb_one_line_each_without_importing_torch():
    code = ("import sys; from common.__main__ import main; main(['--help']); "
            "print('torch loaded' if 'torch' in sys.modules else 'no torch')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=child_env(),
                          check=True)
    lines = proc.stdout.splitlines()
    assert lines[-1] == "no torch"
    for verb, spec in VERBS.items():
        assert [line for line in lines if line.split()[:1] == [verb]] == [f"  {verb:<13}{spec.help}"]


def test_a_one_model_verbs_help_and_bad_flag_answer_without_importing_torch():
    # The verb's own parser runs first (Verb.parser): a typo or --help costs no torch import.
    code = ("import sys\nfrom common.__main__ import main\nfor argv in (['time', '--help'], "
            "['memory', '--model', 'resnet18', '--batch', '0'], ['layers', '--model', 'resnet18', '--nosuch']):\n"
            "    try:\n        main(argv)\n    except SystemExit as exc:\n        print('exit', exc.code)\n"
            "print('torch loaded' if 'torch' in sys.modules else 'no torch')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=child_env())
    assert proc.stdout.startswith("usage: python -m common time")
    assert proc.stdout.splitlines()[-4:] == ["exit 0", "exit 2", "exit 2", "no torch"], proc.stdout[-300:]
    assert proc.stderr.splitlines() == ["python -m common memory: error: argument --batch: '0' must be greater than 0",
                                        "python -m common layers: error: unrecognized arguments: --nosuch"]


def test_an_unknown_or_missing_verb_is_one_line_and_exit_2(capsys):
    assert door(["tiem"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m common: error: unknown verb 'tiem'")
    assert door([]) == 2 and capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("verb", list(VERBS))
def test_each_verb_help_is_its_own_parser(verb, capsys):
    with pytest.raises(SystemExit) as info:
        door([verb, "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and out.startswith("usage: ")
    assert f"python -m common {verb}" in out.splitlines()[0], out.splitlines()[0]


def _drivers() -> list:
    return sorted(ROOT.glob("*_profiler/*.sh")) + [ROOT / "scripts" / "timer.sh"]


@pytest.mark.parametrize("script", _drivers(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shell_driver_is_one_line_calling_a_verb(script):
    body = [line for line in script.read_text().splitlines() if line and not line.startswith("#")]
    assert len(body) == 1, body
    m = DRIVER.fullmatch(body[0])
    assert m and m.group(1) in VERBS, body[0]


@pytest.mark.parametrize("wrapper", sorted(ROOT.glob("*_profiler/*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_family_wrapper_calls_a_verb(wrapper):
    last = wrapper.read_text().strip().splitlines()[-1]
    m = re.fullmatch(r'sys\.exit\(run\("([a-z0-9-]+)".*\)\)', last)
    assert m and m.group(1) in VERBS, last


def test_driver_help_is_the_verbs():
    proc = subprocess.run(["sh", str(ROOT / "resnet_profiler" / "stats50.sh"), "--help"], capture_output=True,
                          text=True, env=child_env(), check=True)
    assert proc.stdout.startswith("usage: python -m common stats")


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_dry_run_prints_the_plan_as_requests_without_argv_strings(capsys):
    assert door(["profile", "--dry-run", "--device", "cpu", "--models", "resnet18", "vgg16", "--max-seconds", "1",
                 "--threads", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines
    plans = [json.loads(line) for line in lines]
    for d in plans:
        req = Request.from_dict(d)
        assert req.to_dict() == d  # the whole request, nothing else
        assert req.max_seconds == 1 and req.threads == 2 or req.kind in ("memory", "structure")
        assert not [s for s in _strings(d) if s.startswith("-")], d
    assert {d["kind"] for d in plans} >= {"timing", "layers", "memory", "structure"}


def test_zoo_dry_run_prints_requests_without_argv_strings(tmp_path, capsys):
    assert door(["zoo", "--models", "convnext_tiny", "resnet18", "--inputs", "imagenet", "--device", "cpu",
                 "--max-seconds", "0.5", "--dry-run", "--out-dir", str(tmp_path)]) == 0
    plans = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["model"], d["kind"]) for d in plans] == [(m, k) for m in ("convnext_tiny", "resnet18")
                                                        for k in ("timing", "timing", "memory")]
    assert [d["search"] for d in plans[:2]] == ["as-given", "fastest"] and plans[0]["max_seconds"] == 0.5
    for d in plans:
        assert Request.from_dict(d).to_dict() == d
        assert not [s for s in _strings(d) if s.startswith("-")], d
    assert not list(tmp_path.rglob("*"))


def test_dry_run_measures_nothing(tmp_path, capsys):
    assert door(["stats", "--model", "resnet18", "--dry-run", "--device", "cpu", "--out-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out and not list(tmp_path.rglob("*"))


def test_profile_job_record_carries_no_argv(tmp_path):
    args = argparse.Namespace(out_dir=tmp_path, device="cpu", tag="t", full=False, models=["resnet18"],
                              no_seed004=True)
    path = drive.save_job(args, drive.Sessions(), 3, [], 1.0)
    rec = json.loads(path.read_text())
    assert not [s for s in _strings(rec["request"]) if s.startswith("-")], rec["request"]
