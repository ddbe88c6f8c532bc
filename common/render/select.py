"""Records -> rows: the selection rules every table shares.

- default mode (the seeds' protocol), for the catalogue's models (a zoo model's page
  is results/zoo.md): eager fp32 as measured, batch 1, the
  ``cityscapes``/``pascal`` presets, the device's default clock (CUDA events on a
  GPU, perf_counter on the CPU: a GPU perf_counter run is a timer cross-check),
  per-unit depth 1, and not a fastest search;
- the publishing rule (``common.render.publish``): every table states a minimum
  protocol per device type and publishes per key the newest current record made
  with at least it, else the newest one, marked ``reduced protocol``;
- one row per key: a non-superseded record beats a superseded one (whatever its
  protocol), then a record meeting the stated protocol beats a reduced one, then
  the newest measurement (env date, compared in UTC), then the path (so the
  choice never depends on file-system order). So a table publishes the newest
  current record made with at least the stated protocol, and only when there is
  none the newest reduced one, marked ``reduced protocol`` with a footnote naming
  the stated protocol; NOISY and the other trust flags stay beside it;
- the modes table: per (device, model, preset, variant) a record measured in
  that mode (marked when reduced) always beats the 1-second search sample of the
  same mode, whatever the dates, and at one date a record asked for the mode beats a
  fastest search that picked it; an output-stride or features variant
  (results/segmentation.md) is not a mode of the backbone and never takes its row;
- a record whose needed fields are missing or not numbers is a named problem,
  never a crash: the build goes on without it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from common import catalogue, derive, records
from common.errors import UserError
from common.render.evidence import budget_text
from common.render.markdown import PRESETS, utc, cudnn
from common.render.publish import (  # noqa: F401 - the rule's names, re-exported for the renderers
    REDUCED, Protocol, meets, published, rank, samples, stated, stated_protocols, stated_text, verdict_protocol)
from common.render.results import Device, Mode, Results, Row  # noqa: F401 - re-exported for the renderers
from common.spec import DEFAULT_CLOCK, variant_of

KINDS = ("timing", "memory", "layers")  # default-mode table kinds
# A record's missing or ill-typed field (records.Record validated its layout and numbers);
# any other exception is a renderer bug and ends the build (never a "skipped" line).
ERRORS = (KeyError, TypeError, ValueError, UserError)


def variant(rec: dict) -> str:
    """The measured mode's variant ('' = eager fp32), derived where a request lacks the key."""
    m = records.measured(rec)
    return m["variant"] if "variant" in m else variant_of(m)


def segmentation_variant(req: dict) -> bool:
    """An output-stride or features variant (results/segmentation.md), not the backbone as published."""
    return req.get("output_stride", 32) != 32 or bool(req.get("features"))


def default_clock(rec: dict) -> bool:
    return rec["request"]["clock"] == DEFAULT_CLOCK[rec["env"]["device_type"]]


def runtimes_page_only(rec: dict) -> bool:
    """Another runtime's run, or a PyTorch run of the runtimes driver (its own shorter protocol,
    measured beside the runtimes, under its own stem): published on results/runtimes.md, not in
    these tables."""
    req = rec["request"]
    return req.get("runtime", "torch") != "torch" or req.get("campaign") is not None \
        or rec["env"].get("driver") == "runtimes"


def is_default_mode(rec: dict) -> bool:
    """The mode the tables report as default (see the module doc)."""
    req = rec["request"]
    if runtimes_page_only(rec):
        return False
    if variant(rec) != "" or req["input"]["batch"] != 1 or req["input"]["name"] not in PRESETS:
        return False
    if req["model"] not in catalogue.INFO:  # a zoo model: results/zoo.md is its page
        return False
    if req.get("search") == "fastest":  # a search that picked eager fp32 is not the seeds' protocol
        return False
    if segmentation_variant(req):
        return False
    if rec["kind"] in ("timing", "layers") and not default_clock(rec):
        return False
    return rec["kind"] != "layers" or req["depth"] == 1


def check_numbers(values: dict, nullable: tuple[str, ...] = ()) -> dict:
    """Reject a non-numeric field now, as a named problem, not later as a crash while printing."""
    for key, value in values.items():
        for x in (value if isinstance(value, list) else [value]):
            x = x[1] if isinstance(x, tuple) else x
            if x is None and key in nullable:
                continue
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise TypeError(f"{key} is {x!r}, not a number")
    return values


def problem(rec: dict, exc: Exception) -> str:
    what = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
    return f"{rec.get('_path', '?')}: malformed ({what})"


def tabled(rec: dict) -> bool:
    """Whether a table shows records of this request (a default-mode row or an execution mode)."""
    try:
        return to_row(rec) is not None or _mode_of(rec) is not None
    except ERRORS:
        return False


def _software(env: dict) -> str:
    if env["device_type"] != "cuda":
        # A CPU run's env still names the CUDA build of torch; it played no part.
        return f"torch {env['torch']} (CUDA/cuDNN not used), {env['threads']} thread{'' if env['threads'] == 1 else 's'}"
    return (f"torch {env['torch']}, CUDA {env['cuda']}, cuDNN {cudnn(env['cudnn'])}, "
            f"driver {env.get('driver') or 'unknown'}")


def _timing_values(result: dict) -> dict:
    s = result["timing"]["stats"]
    return {"mean_ms": s["mean_ms"], "std_ms": s["std_ms"], "median_ms": s["median_ms"], "p90_ms": s["p90_ms"],
            "fps": s["fps"], "gmacs": result["cost"]["macs"] / 1e9, "params_m": result["cost"]["params"] / 1e6,
            "achieved_tflops": result["achieved_tflops"], "busy": (result.get("kernels") or {}).get("busy"),
            "spread": (result.get("repeats") or {}).get("spread")}


def _memory_values(result: dict) -> dict:
    return {"static_mib": result["static"]["static_mib"], "tensors_m": result["static"]["elements"] / 1e6,
            "peak_inference_mib": result["peak"]["peak_inference_mib"],  # None: peak RSS could not be reset
            "params_m": result["cost"]["params"] / 1e6}


def _layers_values(result: dict) -> dict:
    return {"units": [(u["label"], u["stats"]["mean_ms"]) for u in result["units"]],
            "whole_mean_ms": result["timing"]["stats"]["mean_ms"], "coverage": result["coverage"]}


NULLABLE = ("peak_inference_mib", "busy", "spread")  # peak RSS not resettable; no profiler / one repeat


def trust_flags(result: dict) -> str:
    """What a reader must know before trusting a timing: NOISY (within the run), unstable
    (between repeats), launch-bound (the GPU idles waiting for the host)."""
    t = result["timing"]
    return ", ".join(f for f, on in (("NOISY", t["stats"]["noisy"]),
                                     ("unstable", (result.get("repeats") or {}).get("unstable")),
                                     ("launch-bound", (result.get("kernels") or {}).get("launch_bound"))) if on)


VALUES: dict[str, Callable[[dict], dict]] = {
    "timing": _timing_values, "memory": _memory_values, "layers": _layers_values}


def _facts(rec: dict) -> dict:
    env, result = rec["env"], rec["result"]
    flags = ", ".join(f"{k}={v}" for k, v in (result.get("backend_flags") or {}).items())
    facts = {"software": _software(env), "host": env["host_cpu"], "mode": records.measured(rec)["mode"],
             "flags": flags}
    if "timing" in result:
        t = result["timing"]
        facts.update(clock=t["clock"], warmup=str(t["warmup"]), iters=str(t["iters"]),
                     noisy=", ".join(f for f in (trust_flags(result), budget_text(rec)) if f))
    if "peak" in result:
        facts["peak_method"] = result["peak"]["method"]
    return facts


def to_row(rec: dict) -> Row | None:
    """The record as a Row; None when it is not a default-mode table record.
    Raises one of ERRORS when a needed field is missing or bad."""
    if rec["kind"] not in KINDS or not is_default_mode(rec):
        return None
    req = rec["request"]  # a catalogue model (is_default_mode)
    return Row(kind=rec["kind"], tag=rec["device_tag"], model=req["model"], preset=req["input"]["name"],
               date=utc(rec["env"]["date"]), path=rec["_path"], device_name=rec["env"]["device_name"],
               device_type=rec["env"]["device_type"],
               values=check_numbers(VALUES[rec["kind"]](rec["result"]), NULLABLE),
               facts=_facts(rec), superseded=rec.get("superseded") or None, reduced=not meets(rec))


def _keep(table: dict, key: tuple, rec: dict, item: object, by: Callable[[dict], tuple] = rank) -> None:
    if key not in table or by(rec) > table[key][0]:
        table[key] = (by(rec), item)


def _mode_rank(rec: dict) -> tuple:
    """``rank``, but before the path: a record asked for its mode beats a fastest search
    that picked the same mode in the same run (a sweep's records share one date; the path
    alone chose the search's, and results/data then showed another eager fp32 figure than
    results/zoo.md)."""
    r = rank(rec)
    return (*r[:-1], rec["request"].get("search") != "fastest", r[-1])


def build_of(req: dict) -> str:
    """How the model was built when not as published ('output stride 8', 'stage features'):
    a mode row of another build is another measurement, keyed and named apart."""
    words = [f"output stride {req['output_stride']}"] if req.get("output_stride", 32) != 32 else []
    return ", ".join(words + (["stage features"] if req.get("features") else []))


def _mode_key(rec: dict, variant_: str) -> tuple:
    """(tag, model, preset, variant[@build]): every request field that changes what a mode row measured
    (batch 1 and the default clock are the rows' own conditions)."""
    req, build = rec["request"], build_of(rec["request"])
    return rec["device_tag"], req["model"], req["input"]["name"], variant_ + (f"@{build}" if build else "")


def _mode_name(mode: str, req: dict) -> str:
    return mode + (f" ({build_of(req)})" if build_of(req) else "")


def _mode_of(rec: dict) -> tuple[tuple, Mode] | None:
    """A full-protocol whole-model timing at batch 1 on a preset, in any mode, default clock."""
    req = rec["request"]
    if rec["kind"] != "timing" or req["input"]["batch"] != 1 or req["input"]["name"] not in PRESETS \
            or not default_clock(rec) or runtimes_page_only(rec):
        return None
    r, s, m = rec["result"], rec["result"]["timing"]["stats"], records.measured(rec)
    check_numbers({"median_ms": s["median_ms"], "mean_ms": s["mean_ms"], "fps": s["fps"]})
    entry = Mode(_mode_name(m["mode"], req), s["median_ms"], s["mean_ms"], s["fps"], r.get("achieved_tflops"),
                 r.get("fraction_of_peak"), utc(rec["env"]["date"]), rec["env"]["device_name"],
                 fastest=req.get("search") == "fastest", superseded=rec.get("superseded") or None,
                 reduced=not meets(rec), path=rec["_path"], budget=budget_text(rec))
    return _mode_key(rec, m["variant"]), entry


def _candidates(rec: dict) -> list[tuple[tuple, Mode]]:
    """A fastest search's brief look at each mode it tried."""
    req, r = rec["request"], rec["result"]
    if rec["kind"] != "timing" or not r.get("fastest") or req["input"]["batch"] != 1 \
            or req["input"]["name"] not in PRESETS or not default_clock(rec) or runtimes_page_only(rec):
        return []
    out = []
    for c in r["fastest"]["candidates"]:
        if "median_ms" not in c:  # skipped: the device cannot run it
            continue
        s = c["timing"]["stats"]
        check_numbers({"median_ms": c["median_ms"], "mean_ms": s["mean_ms"], "fps": s["fps"]})
        out.append((_mode_key(rec, c["variant"]),
                    Mode(_mode_name(c["mode"], req), c["median_ms"], s["mean_ms"], s["fps"], c.get("achieved_tflops"),
                         c.get("fraction_of_peak"), utc(rec["env"]["date"]), rec["env"]["device_name"],
                         search_iters=c["timing"]["iters"], superseded=rec.get("superseded") or None)))
    return out


def _train_values(rec: dict) -> None:
    """Validate what the training tables print (a malformed record is a problem, not a crash)."""
    r = rec["result"]
    t = r["train"]
    check_numbers({"forward": t["forward"]["stats"]["mean_ms"], "backward": t["backward"]["stats"]["mean_ms"],
                   "total": t["total"]["stats"]["mean_ms"], "inference": r["inference"]["stats"]["mean_ms"],
                   "iters": t["total"]["iters"], "tflops": t["total"].get("achieved_tflops"),
                   "train_peak": (r.get("train_peak") or {}).get("peak_train_step_mib"),
                   "inference_peak": (r.get("inference_peak") or {}).get("peak_inference_mib")},
                  ("tflops", "train_peak", "inference_peak"))


def _bench_values(rec: dict) -> None:
    for row in rec["result"]["rows"]:
        check_numbers({f"{row['layer']} {p}": row[p]["stats"]["mean_ms"] for p in ("forward", "backward", "total")})


def _train_key(rec: dict) -> tuple | None:
    """Default-mode training-step records (fp32 eager, default clock, no optimizer) and layer sets."""
    req = rec["request"]
    if rec["kind"] == "train-timing" and variant(rec) == "" and default_clock(rec) \
            and not rec["result"]["with_optimizer"]:
        _train_values(rec)
        i = req["input"]
        return ("train", rec["device_tag"], req["model"], i["name"] if i["batch"] == 1 else f"{i['name']}_b{i['batch']}")
    if rec["kind"] == "layer-bench" and variant(rec) == "" and default_clock(rec):
        _bench_values(rec)
        return ("bench", rec["device_tag"], req["layer_set"])
    return None


def _evidence_key(rec: dict) -> tuple | None:
    """Any mode's timing / per-unit record at batch 1 on a preset, default clock, current."""
    req = rec["request"]
    if rec["kind"] not in ("timing", "layers") or rec.get("superseded") or req["input"]["batch"] != 1 \
            or req["input"]["name"] not in PRESETS or not default_clock(rec) or runtimes_page_only(rec):
        return None
    depth = req.get("depth", 1) if rec["kind"] == "layers" else 0
    return (rec["kind"], rec["device_tag"], records.measured(rec)["mode"], req["input"]["name"], req["model"], depth)


def evidence(chosen: dict) -> dict:
    """Coverage (event span, kernel), busy fraction and spread per device, mode and preset."""
    out: dict = {}
    for (kind, tag, mode, preset, model, depth), (_, rec) in sorted(chosen.items(), key=lambda kv: kv[0]):
        r = rec["result"]
        e = out.setdefault((tag, mode, preset), {"span": [], "kernel": [], "busy": [], "spread": []})
        name = model + (f" depth {depth}" if depth > 1 else "")
        if kind == "layers":
            e["span"].append((name, r.get("coverage")))
            e["kernel"].append((name, derive.kernel_coverage(r)))
        else:
            e["busy"].append((model, (r.get("kernels") or {}).get("busy")))
            e["spread"].append((model, (r.get("repeats") or {}).get("spread")))
    kept = {k: {f: [(m, v) for m, v in vals if v is not None] for f, vals in e.items()} for k, e in out.items()}
    return {k: e for k, e in kept.items() if any(e.values())}  # nothing measured there that this table shows


def collect(results: Path) -> Results:
    """Load, validate and select (see the module doc)."""
    return select(*records.load_records(results, history=True))


def select(recs: list[dict], problems: list[str]) -> Results:
    """Validate and select loaded records; ``problems`` (a new list) gains the malformed ones."""
    problems = list(problems)
    rows: dict = {}
    full: dict = {}
    brief: dict = {}
    train: dict = {}
    ev: dict = {}
    rejected: set[str] = set()
    for rec in recs:
        try:
            row = to_row(rec)
            mode = _mode_of(rec)
            cands = _candidates(rec)
            tkey = _train_key(rec)
            ekey = _evidence_key(rec)
            if ekey is not None:
                check_numbers({"coverage": rec["result"].get("coverage"),
                               "kernel_coverage": derive.kernel_coverage(rec["result"]),
                               "busy": (rec["result"].get("kernels") or {}).get("busy"),
                               "spread": (rec["result"].get("repeats") or {}).get("spread")},
                              ("coverage", "kernel_coverage", "busy", "spread"))
            if row or mode or cands or tkey or ekey:
                rank(rec)  # a timed loop without warm-up or samples: a problem here, not a crash below
        except ERRORS as exc:
            problems.append(problem(rec, exc))
            rejected.add(rec.get("_path", "?"))
            continue
        if row is not None:
            _keep(rows, row.key, rec, row)
        if mode is not None:
            _keep(full, mode[0], rec, mode[1], _mode_rank)
        for key, entry in cands:
            _keep(brief, key, rec, entry)
        if tkey is not None:
            _keep(train, tkey, rec, rec)
        if ekey is not None:
            _keep(ev, ekey, rec, rec)
    modes = {k: e for k, (_, e) in brief.items()}
    modes.update({k: e for k, (_, e) in full.items()})  # a full-protocol record beats any search sample
    return Results({k: r for k, (_, r) in rows.items()}, problems, modes,
                   {k[1:]: r for k, (_, r) in train.items() if k[0] == "train"},
                   {k[1:]: r for k, (_, r) in train.items() if k[0] == "bench"}, evidence(ev), rejected)
