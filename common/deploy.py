"""The runtimes matrix: every model x input in PyTorch (eager fp32, bf16, int8, its
fastest CPU mode) and in ONNX Runtime and OpenVINO (fp32, int8; OpenVINO bf16).

    python -m common runtimes [--models ...] [--inputs imagenet pascal] [--budget-s S] [--out-dir DIR]

Its PyTorch records are its own series (``Request.campaign``: ``resnet50_pascal_runtimes``),
never the catalogue's or the zoo's record of the same model and input.
Budgeted (no request starts after ``--budget-s``) and resumable: a request whose
record this driver made already (``env.driver == "runtimes"``) is skipped, and so
is one whose runtime failed (its failure record), unless ``--retry-failed``. A
PyTorch record made by another tool is measured again, so that every runtime is
compared with PyTorch eager fp32 measured in the same campaign, under the same
load. Each record's env carries the 1-minute load average taken just before it ran.
"""
from __future__ import annotations

import datetime as dt
import gc
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from common import cli, parsers, records, registry, run
from common.errors import UserError
from common.zoo.options import check_names
from common.measure import export
from common.parsers import tools
from common.spec import Request

DRIVER = "runtimes"
# (flags, label) per cell of a model x input row, the PyTorch eager fp32 baseline first.
CELLS = (
    ([], "torch eager fp32"),
    (["--precision", "bf16"], "torch eager bf16"),
    (["--mode", "fastest", "--no-search-compile"], "torch fastest"),
    (["--precision", "int8"], "torch int8"),
    (["--runtime", "onnxruntime"], "onnxruntime fp32"),
    (["--runtime", "onnxruntime", "--precision", "int8"], "onnxruntime int8"),
    (["--runtime", "openvino"], "openvino fp32"),
    (["--runtime", "openvino", "--precision", "bf16"], "openvino bf16"),
    (["--runtime", "openvino", "--precision", "int8"], "openvino int8"),
)
FIRST = [("resnet50", "pascal"), ("mobilenet_v2", "pascal")]
# Beyond FIRST, without --all-cells: the page's required cells (PyTorch eager fp32 and its fastest
# mode, ONNX Runtime and OpenVINO in fp32 and int8), so more models fit a budget.
CORE = ("torch eager fp32", "torch fastest", "onnxruntime fp32", "onnxruntime int8", "openvino fp32",
        "openvino int8")
ZOO = ("mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0", "efficientnet_b1", "regnet_x_400mf",
       "regnet_y_400mf", "regnet_x_1_6gf", "regnet_y_1_6gf", "mnasnet1_0", "shufflenet_v2_x1_0", "squeezenet1_1",
       "densenet121", "googlenet", "resnext50_32x4d", "wide_resnet50_2", "convnext_tiny", "efficientnet_v2_s",
       "alexnet", "timm/mobilenetv1_100", "timm/legacy_seresnet50", "swin_t", "vit_b_16")
# The driver's protocol: shorter than the seeds' 300 iterations, bounded in time, stated on the page.
PROTOCOL = ["--warmup", "2", "--warmup-seconds", "1", "--iters", "50", "--max-seconds", "4", "--min-iters", "5",
            "--repeats", "1"]


def plan(models: list[str] | None, presets: list[str], zoo: bool) -> list[tuple[str, str]]:
    """(model, input) rows: ResNet-50 and MobileNet-V2 at PASCAL first, then the catalogue, then the zoo."""
    rows = list(FIRST) if models is None else []
    names = models or list(registry.REGISTRY) + (list(ZOO) if zoo else [])
    rows += [(m, p) for p in presets for m in names if (m, p) not in rows]  # every model small first
    return rows


def load_avg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def wait_for_quiet(max_load: float, wait_s: float, sleep: Callable[[float], None] = time.sleep,
                   load: Callable[[], float | None] = load_avg) -> float:
    """Seconds waited (at most ``wait_s``) for the 1-minute load average to fall below
    ``max_load``: the machine is shared, and a run under a load of many times its cores
    measures the queue, not the model. After ``wait_s`` the request runs anyway, its load recorded."""
    waited = 0.0
    while waited < wait_s and (load() or 0.0) >= max_load:
        sleep(5.0)
        waited += 5.0
    return waited


def own(req: Request) -> Request:
    """The driver's request: a PyTorch cell under its own stem (``resnet50_pascal_runtimes``).
    Its plain stem is the catalogue's and the zoo's (eager fp32, fastest): a baseline measured
    here (one thread, this protocol, beside the runtimes) must never replace their records, nor
    they it. Another runtime's stem already names the runtime."""
    return replace(req, campaign=DRIVER) if req.runtime == "torch" else req


def done_before(session: run.Session, req, retry_failed: bool) -> str | None:
    """Why ``req`` needs no run now: its record from this driver, or its runtime's failure record."""
    path = session.record_path(req)
    try:
        rec = json.loads(path.read_text())
        if rec["env"].get("driver") == DRIVER and rec["request"].get("threads") == req.threads:
            return "measured"
    except (OSError, ValueError, KeyError):
        pass
    fail = records.record_path(session.results, session.tag, run.FAILURE_KIND, req.stem)
    return "failed before" if fail.exists() and not retry_failed else None


def main(argv: list[str] | None = None, prog: str = "python -m common runtimes") -> int:
    ap = tools.runtimes(prog, __doc__.splitlines()[0])
    args = ap.parse_args(argv)
    try:
        check_names(args.models or [])  # a typo named before any work (it used to plan nothing and exit 0)
    except UserError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return exc.exit_code
    torch.set_num_threads(args.threads)
    session = run.Session(torch.device("cpu"), args.out_dir)
    parser = parsers.model("timer", None)
    todo = []
    for model, preset in plan(args.models, args.inputs, args.zoo):
        for flags, label in CELLS:
            if not (args.all_cells or (model, preset) in FIRST or label in CORE):
                continue
            argv_ = ["--model", model, "--input", preset, "--device", "cpu", "--threads", str(args.threads),
                     *PROTOCOL, *flags, "--out-dir", str(args.out_dir)]
            try:
                todo.append((own(cli.request_from_args(parser.parse_args(argv_), "timer", torch.device("cpu"))), label))
            except UserError as exc:  # a size the model cannot take: said once, the rest goes on
                if not flags:
                    print(f"{prog}: {model} {preset}: {exc}", file=sys.stderr)
    start, counts = time.monotonic(), {"measured": 0, "skipped": 0, "failed": 0, "not started (budget)": 0}
    bar = tqdm(todo, desc="runtimes", unit="request")
    for req, label in bar:
        bar.set_postfix_str(f"{req.model} {req.input.tag} {label}")
        if done_before(session, req, args.retry_failed):
            counts["skipped"] += 1
            continue
        if time.monotonic() - start > args.budget_s:
            counts["not started (budget)"] += 1
            continue
        if args.dry_run:
            tqdm.write(f"would run: {req.model} {req.input.tag} {label} -> {session.record_path(req)}")
            continue
        waited = wait_for_quiet(args.max_load, args.wait_s)
        # The session's env was collected once at start: each record gets its own date (when it ran).
        session.env = {**session.env, "driver": DRIVER, "loadavg_1m": load_avg(), "waited_for_load_s": waited,
                       "load_policy": {"max_load": args.max_load, "wait_s": args.wait_s},
                       "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")}
        try:
            cli.measure_and_save(req, session)
            counts["measured"] += 1
            Path(records.record_path(session.results, session.tag, run.FAILURE_KIND, req.stem)).unlink(missing_ok=True)
        except Exception as exc:  # noqa: BLE001 - one line and a failure record, then the next request
            counts["failed"] += 1
            reason = export.oneline(exc)
            if not isinstance(exc, UserError):
                run.save_failure(req, session, "measure", reason)
            tqdm.write(f"{req.model} {req.input.tag} {label}: {reason}")
        gc.collect()
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0
