"""The bad-input matrix: run every case as a user would type it and check that it
ends with exactly one line on stderr, a non-zero exit, and no tracked file
changed; write the table to docs/bad_inputs.md (or print it with --print).

    python scripts/bad_inputs.py [--print] [--only SUBSTRING]

Each case runs in a fresh process (the exit path is what is checked), outputs go
to a temporary folder; stderr is read as a terminal shows it at the end (progress
bars redraw and clear their own line).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from common import records  # noqa: E402
from common.parsers import maintenance  # noqa: E402
from scripts import bad_setups as setups  # noqa: E402
from scripts import limit_cases  # noqa: E402

TIMER = "resnet_profiler/timer.py"
SMALL = ["--device", "cpu", "--size", "32x32", "--iters", "2", "--warmup", "0"]


# Python's own answer when the command typed does not exist (a module moved, a script renamed): one
# line and a non-zero exit, but the case it names was never tried.
LAUNCHER_FAILED = re.compile(r"No module named |can't open file |cannot be directly executed")


@dataclass
class Case:
    what: str
    argv: list[str]  # python script + args, or ["sh"/"bash", script, ...]; {tmp}, {blocker} filled in
    signal_after: int | None = None  # send this signal once the run is measuring
    env: dict = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None  # prepares the case's folder (earlier runs, links, archives)
    own_out: bool = False  # the case names its own output folder (no --out-dir/--tag added)


def cases() -> list[Case]:
    py = [sys.executable, TIMER, "--model", "resnet18"]
    c = [
        Case("unknown model", [sys.executable, TIMER, "--model", "resnet19", *SMALL]),
        Case("model of another family", [sys.executable, TIMER, "--model", "xception", *SMALL]),
        Case("--input unknown preset", [*py, *SMALL, "--input", "coco"]),
        Case("--size malformed", [*py, *SMALL, "--size", "abc"]),
        Case("--size zero", [*py, *SMALL, "--size", "0x64"]),
        Case("--size too small for the model", [sys.executable, "xception_profiler/timer.py", "--model", "xception",
                                                *SMALL, "--size", "4x4"]),
        Case("--batch 0", [*py, *SMALL, "--batch", "0"]),
        Case("--batch malformed", [*py, *SMALL, "--batch", "two"]),
        Case("--iters 0", [*py, *SMALL, "--iters", "0"]),
        Case("--warmup -1", [*py, *SMALL, "--warmup", "-1"]),
        Case("--max-seconds nan", [*py, *SMALL, "--max-seconds", "nan"]),
        Case("--max-seconds inf", [*py, *SMALL, "--max-seconds", "inf"]),
        Case("--max-seconds -1", [*py, *SMALL, "--max-seconds", "-1"]),
        Case("--min-iters 0", [*py, *SMALL, "--min-iters", "0"]),
        Case("--threads 0", [*py, *SMALL, "--threads", "0"]),
        Case("--depth 3", [*py, *SMALL, "--layers", "--depth", "3"]),
        Case("--depth 2 on a model without blocks", [sys.executable, "mobilenetv2_profiler/timer.py", "--model",
                                                     "mobilenet_v2", *SMALL, "--layers", "--depth", "2"]),
        Case("--precision unknown", [*py, *SMALL, "--precision", "fp8"]),
        Case("--precision tf32 on the CPU", [*py, *SMALL, "--precision", "tf32"]),
        Case("--clock cuda-event on the CPU", [*py, *SMALL, "--clock", "cuda-event"]),
        Case("--cuda-graph on the CPU", [*py, *SMALL, "--cuda-graph"]),
        Case("--cudnn-benchmark on the CPU", [*py, *SMALL, "--cudnn-benchmark"]),
        Case("--compile unknown mode", [*py, *SMALL, "--compile", "fast"]),
        Case("--layers with --cuda-graph", [*py, "--device", "cpu", "--layers", "--cuda-graph"]),
        Case("--with-optimizer without --pass train", [*py, *SMALL, "--with-optimizer"]),
        Case("--pass train with --mode fastest", [*py, *SMALL, "--pass", "train", "--mode", "fastest"]),
        Case("--pass train at batch 1 (batch norm)", [*py, *SMALL, "--pass", "train"]),
        Case("--device unknown", [*py, *SMALL, "--device", "tpu"]),
        Case("--device cuda without a GPU", [*py, *SMALL, "--device", "cuda"]),
        Case("--device cuda:7 (no such GPU)", [*py, *SMALL, "--device", "cuda:7"]),
        Case("batch too large for the CPU's memory", [*py, "--device", "cpu", "--input", "cityscapes", "--batch",
                                                      "4096", "--iters", "1", "--warmup", "0"]),
        Case("--out-dir under a file", [*py, *SMALL, "--out-dir", "{blocker}/sub"]),
        Case("mem.py: --depth 0", [sys.executable, "resnet_profiler/mem.py", "--model", "resnet18", "--struct",
                                   "--depth", "0"]),
        Case("layer profiler: unknown set", [sys.executable, "layer_profiler/timer.py", "--set", "huge",
                                            "--device", "cpu"]),
        Case("SIGINT (Ctrl-C) mid-run", [*py, "--device", "cpu", "--size", "64x64", "--warmup", "100000"],
             signal_after=signal.SIGINT),
        Case("SIGTERM mid-run", [*py, "--device", "cpu", "--size", "64x64", "--warmup", "100000"],
             signal_after=signal.SIGTERM),
        Case("driver before set-up (no .venv, no PYTHON)", ["sh", "resnet_profiler/stats18.sh"],
             env={"PYTHON": "/nonexistent/python"}),
        Case("driver with a bad flag", ["sh", "resnet_profiler/stats18.sh", "--device", "cpu", "--iters", "0"]),
        Case("scripts/timer.sh unknown model", ["sh", "scripts/timer.sh", "--model", "resnet19"]),
        Case("python -m common.render with a missing results folder",
             [sys.executable, "-m", "common.render", "--check", "--results", "{blocker}/none"]),
    ]
    return c + setups.path_cases(py, SMALL) + setups.write_cases(py, SMALL) + setups.small_cases(py, SMALL)


def tracked_state() -> str:
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                         text=True)
    return out.stdout


def run_case(case: Case, tmp: Path) -> dict:
    blocker = tmp / "a_file"
    blocker.write_text("not a folder\n")
    argv = [a.replace("{blocker}", str(blocker)).replace("{tmp}", str(tmp)) for a in case.argv]
    if argv[0] == sys.executable and "--out-dir" not in argv and argv[1].endswith(".py") and "common" not in argv[1] \
            and not case.own_out:
        argv += ["--out-dir", str(tmp / "out")] + ([] if "--tag" in argv else ["--tag", "bad-inputs"])
    if case.setup is not None:
        case.setup(tmp)
    before = setups.snapshot(tmp)
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", **case.env}
    t0 = time.monotonic()
    # Bytes, not text: text mode would turn the bars' carriage returns into newlines.
    # SIGINT as a terminal leaves it, also where this script runs in the background (which ignores
    # SIGINT, and an ignored signal stays ignored in the processes it starts: the Ctrl-C case then ran on).
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if case.signal_after is not None:
        records_dir = tmp / "out" / "results" / "records"
        while not records_dir.exists() and proc.poll() is None and time.monotonic() - t0 < 120:
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(case.signal_after)
    stdout, raw = proc.communicate(timeout=300)
    stderr = raw.decode("utf-8", "replace")
    # What a terminal shows at the end: each line as its last carriage return left it
    # (progress bars redraw themselves with \r and clear their line when done).
    lines = [seg for line in stderr.split("\n") if (seg := line.split("\r")[-1].strip())]
    # Nothing written, nothing removed or changed: the case's whole folder (the output
    # folder, the earlier run, the folders a path might escape to) as it was before.
    changed = setups.changes(before, setups.snapshot(tmp))
    what = case.what + (" (simulated: no tmpfs could be mounted here)" if setups.simulated(tmp) else "")
    return {"what": what, "command": " ".join(Path(a).name if a == sys.executable else a for a in case.argv),
            "code": proc.returncode, "line": lines[-1].replace(str(tmp), "{tmp}") if lines else "", "one_line": len(lines) == 1,
            "written": len(changed), "traceback": "Traceback" in stderr}


def concurrency_table(rows: list[dict]) -> tuple[str, bool]:
    out = ["", "## Concurrent and interrupted writers of one request", "",
           f"Real processes (`{rows[0]['command']}`), then the request's record and its history counted: every run "
           "keeps its record (the newest as the record, the others under `history/`), each run once, no temporary "
           "file left.", "",
           "| case | runs | exit codes | runs kept | distinct run ids | temporary files left | .txt files | ok |",
           "| --- | ---: | --- | ---: | ---: | ---: | ---: | :-: |"]
    good = True
    for c in rows:
        ok = all(code == 0 for code in c["codes"]) and c["kept"] == c["distinct"] == c["runs"] and not c["temps"]
        good = good and ok
        out.append(f"| {c['case']} | {c['runs']} | {' '.join(map(str, c['codes']))} | {c['kept']} | {c['distinct']} | "
                   f"{c['temps']} | {c['txts']} | {'yes' if ok else '**NO**'} |")
    return "\n".join(out) + "\n", good


SIGNALS = ("sweep-sigint", "sweep-sigterm", "sweep-sigterm-group")


def interrupted_table(rows: list[dict]) -> str:
    out = ["", "## Interrupted sweeps", "",
           "A real local sweep (2 CPU workers, tiny inputs) stopped once its first record exists: one line, exit "
           "130 (SIGINT) or 143 (SIGTERM), no traceback, the summary record of what finished written, no "
           "process left. The records of the tasks that finished are kept (the resume starts from them).", "",
           "| case | exit | the line | records kept | ok |", "| --- | ---: | --- | ---: | :-: |"]
    for r in rows:
        line = re.sub(r"/tmp/tmp\w+", "{tmp}", r["line"]).replace("|", "\\|")
        out.append(f"| {r['what']} | {r['code']} | {line} | {r['written']} | {'yes' if r['ok'] else '**NO**'} |")
    return "\n".join(out) + "\n"


def table(rows: list[dict], clean: bool) -> str:
    out = ["# Bad input: every case ends with one line and a non-zero exit",
           "",
           "_Generated by `python scripts/bad_inputs.py` (each case in a fresh process, stderr read as a terminal shows it at the end, "
           "outputs to a temporary folder); do not edit by hand._",
           "",
           "Checked for every row: exactly one line on stderr, a non-zero exit status, no traceback, no file "
           "written, changed or removed anywhere in the case's folder (outputs, the earlier run a case sets up, "
           "the folders a path might escape to), no file of the repository changed or added, and the line is "
           "the project's answer, not Python failing to start the command"
           + (" (held for the whole run)." if clean else " (**violated during this run**)."),
           "",
           f"{len(rows)} cases.",
           "",
           "| case | command | exit | the line | ok |",
           "| --- | --- | ---: | --- | :-: |"]
    for r in rows:
        ok = r["one_line"] and r["code"] != 0 and not r["traceback"] and not r["written"] \
            and not LAUNCHER_FAILED.search(r["line"])
        cmd = r["command"].replace("|", "\\|")
        line = r["line"].replace("|", "\\|")
        out.append(f"| {r['what']} | `{cmd}` | {r['code']} | {line} | {'yes' if ok else '**NO**'} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = maintenance.bad_inputs(__doc__.splitlines()[0])
    args = ap.parse_args(argv)
    before = tracked_state()
    rows = []
    for case in cases():
        if args.only and args.only not in case.what:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                rows.append(run_case(case, Path(tmp)))
            finally:
                setups.release(Path(tmp))
        r = rows[-1]
        sys.stderr.write(f"{len(rows):>3} {r['what']}: exit {r['code']}\n")
    # The memory guard at its limit: a row like the others (one line, nothing written).
    if not args.only or args.only in "memory guard":
        rows.append({k: v for k, v in limit_cases.guard_at_limit().items() if k not in ("ok", "batch")})
        sys.stderr.write(f"{len(rows):>3} {rows[-1]['what']}: exit {rows[-1]['code']}\n")
    stopped = []
    if not args.only or args.only in "interrupted sweeps":
        for name in SIGNALS:
            stopped.append(limit_cases.CASES[name]())
            sys.stderr.write(f"{stopped[-1]['what']}: exit {stopped[-1]['code']}\n")
    conc_ok = True
    text_conc = ""
    if not args.only or args.only in "concurrent runs":
        conc = setups.concurrent_runs()
        text_conc, conc_ok = concurrency_table(conc)
        for c in conc:
            sys.stderr.write(f"{c['case']}: exit {c['codes']}, {c['kept']} of {c['runs']} kept\n")
    clean = tracked_state() == before
    text = table(rows, clean) + (interrupted_table(stopped) if stopped else "") + text_conc
    if args.print:
        print(text, end="")
    else:
        records.write_atomic(ROOT / "docs" / "bad_inputs.md", text)
    bad = [r["what"] for r in rows if not (r["one_line"] and r["code"] != 0 and not r["traceback"]
                                          and not r["written"])]
    bad += [] if conc_ok else ["concurrent runs"]
    bad += [r["what"] for r in stopped if not r["ok"]]
    if bad or not clean:
        sys.stderr.write(f"scripts/bad_inputs.py: {len(bad)} case(s) failed: {'; '.join(bad)}"
                         + ("" if clean else "; a tracked file changed") + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
