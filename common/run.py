"""measure(request) -> record: the one path from a request to its record.

Every kind of request has one function (``common.run_kinds``) that builds the model
(``eval()``, random weights) and a seeded input, measures, and returns the record's
result; ``measure`` picks it and makes the record. Nothing here reads argparse.
A ``Session`` (``common.run_session``) holds what several requests of one process
share (device, env, the device's peaks, built models), so a driver runs many requests
in one process; a driver's session defers every kernel profile until after all of its
timed loops (``defer_kernels``, ``add_kernels``; see ``common.run_kernels`` for why).
"""
from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from common import records, registry, run_kernels
from common import env as envmod
from common.errors import UserError
from common.measure import export, kernels
from common.measure import memory, timing  # noqa: F401 - reached as run.memory, run.timing by callers and tests
from common.run_kinds import (_finish_repeats, cost, measure_layer_bench, measure_memory,  # noqa: F401
                              measure_structure, measure_timing, measure_train)  # re-exported: the per-kind functions
from common.run_session import Session
from common.spec import Request


def measure(req: Request, session: Session, model: nn.Module | None = None) -> dict:
    """Measure ``req`` and return its record (not yet written). ``model``: an
    instance built for this request's model on the session's device, reused
    across the requests of one preset (each request warms it up again)."""
    fn = {"timing": measure_timing, "layers": measure_timing, "train-timing": measure_train,
          "train-layers": measure_train, "memory": measure_memory, "structure": measure_structure,
          "layer-bench": measure_layer_bench}[req.kind]
    try:
        result = fn(req, session, model) if req.kind in ("timing", "layers") else fn(req, session)
    except export.ExportError as exc:  # the runtime's reason, kept as a failure record
        path = save_failure(req, session, exc.stage, str(exc))
        raise UserError(f"{req.runtime} cannot run {req.model} at {req.input.tag}: {exc.stage} failed: {exc} "
                        f"(failure record {path.name})") from None
    rec = records.make_record(req.kind, session.tag_of(req), req.to_dict(), session.env, result)
    if req.kind != "layer-bench":  # a layer set names no model
        rec["model"] = registry.metadata(req)
    return rec


FAILURE_KIND = "runtime-failure"


def save_failure(req: Request, session: Session, stage: str, reason: str) -> Path:
    """``records/<tag>/runtime-failure/<stem>.json``: why a runtime could not export, quantise or compile
    (its own kind: the zoo's ``failure`` records name a driver slot, these a request)."""
    rec = records.make_record(FAILURE_KIND, session.tag, req.to_dict(), session.env,
                              {"stage": stage, "reason": reason, "runtime": req.runtime})
    path = records.record_path(session.results, session.tag, FAILURE_KIND, req.stem)
    records.ensure_writable(path.parent)
    records.write_record(path, rec)
    return path


def timing_record(layers_rec: dict) -> dict:
    """The whole-model timing record carried by a per-unit record: its whole-model
    loop ran first on the same instance with the same protocol, before any hook was
    attached, exactly as a timing request runs it; drivers save it instead of
    timing the model a second time."""
    req = Request.from_dict(layers_rec["request"])
    timing_req = Request.from_dict({**layers_rec["request"], "kind": "timing", "depth": 1})
    r = layers_rec["result"]
    keep = ("fastest", "backend_flags", "timing", "setup", "gflops", "achieved_tflops", "device_peak",
            "fraction_of_peak", "repeats", "kernels", "kernel_profile")
    result = {k: r[k] for k in keep if k in r}
    result["cost"] = {**r["cost"], "units": []}
    result["measured_with"] = (f"the whole-model loop of the per-unit run {req.stem} (same instance and protocol, "
                               "before the hooks were attached)")
    rec = {**layers_rec, "kind": "timing", "request": timing_req.to_dict(), "result": result}
    rec.pop("_path", None)
    return rec


def save(rec: dict, session: Session) -> list[Path]:
    """Write the record (the truth); returns the paths written. Measuring never renders:
    the entry point gives the session its .txt writer (``Session.write_txt``), run here
    inside the record's write so that record and .txt are replaced together or not at
    all. A run older than the one already recorded goes to history, its .txt left to
    the newer run."""
    path = records.path_of(rec, session.results)
    if session.write_txt is None:
        return [records.write_record(path, rec)]
    current = {**rec, "_path": str(path)}
    written: list[Path] = []
    where = records.write_record(path, rec, then=lambda: written.append(session.write_txt(current, session.root)))
    return [*(p for p in written if p), where]


def add_kernels(target: Request | Path, session: Session, with_timing: bool = False) -> list[Path]:
    """The deferred kernel profile of a saved record whose profile is pending
    (``target``: its request or its record's path): the model re-built in the mode
    measured (a fastest search's pick), warmed up, profiled (whole model, and per
    unit for a per-unit record), the kernel fields merged and the record and its
    record re-saved; ``with_timing``: the timing record it carries too. Returns the
    records written; none when the record is not waiting for a profile."""
    path = session.record_path(target) if isinstance(target, Request) else Path(target)
    rec = json.loads(path.read_text(encoding="utf-8"))
    rec.pop("_path", None)
    if (rec["result"].get("kernel_profile") or {}).get("status") != "pending":
        return []
    req = Request.from_dict(rec["request"])
    got = run_kernels.profile_fresh(req, Request.from_dict(records.measured(rec)), session.device)
    run_kernels.merge(rec["result"], got, kernels.WHEN_DEFERRED)
    written = save(rec, session)
    return written + (save(timing_record(rec), session) if with_timing else [])


def main(argv: list[str] | None = None) -> int:
    """``python -m common.run REQUEST.json RECORD.json [TAG]``: measure one request
    (a --fresh-process repeat) and write its record to RECORD.json; nothing else."""
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    req = Request.from_dict(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    device = envmod.resolve_device(req.device)
    with envmod.cpu_threads(req.threads), __import__("tempfile").TemporaryDirectory(prefix="bp-child-") as tmp:
        session = Session(device, Path(tmp), args[2] if len(args) > 2 else None)
        records.write_record(Path(args[1]), measure(req, session))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
