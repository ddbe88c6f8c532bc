"""The CPU memory guard against measured peaks: for each catalogue model at one
input, batch 1, 2 and 4, the guard's estimates beside the peak RSS of a fresh
process running that batch's inference (``memory.cpu_peak``), one model at a
time. Cases the guard refuses under the budget are recorded as refused (that is
the guard working) and not run.

    python scripts/guard_table.py measure [--models M ...] [--budget-gib 12]   # writes the JSON
    python scripts/guard_table.py render [--check]                              # docs/methods.md's table

The JSON (results/evidence/cpu-guard/<device tag>_<input>.json) holds every
measurement and the guard's settings at the time; the table in docs/methods.md
is rendered from it, between its markers, and ``render --check`` exits 1 when
the page is stale.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from common.parsers import maintenance  # noqa: E402

EVIDENCE = ROOT / "results" / "evidence" / "cpu-guard"
METHODS = ROOT / "docs" / "methods.md"
BEGIN, END = "<!-- guard-table:begin -->", "<!-- guard-table:end -->"
BATCHES = (1, 2, 4)
GIB = 2**30


def measure_model(model: str, preset: str, budget: int) -> dict:
    """One model's rows: estimates at every batch, the measured peak where the guard lets it run."""
    import psutil

    from common import guard, inputs
    from common.errors import UserError
    from common.measure import memory
    from common.spec import Request

    req = lambda b: Request(kind="timing", model=model, device="cpu", clock="perf_counter",  # noqa: E731
                            input=inputs.resolve(preset, None, b))
    # The memory available to the guard: what this machine has free now (shared with other
    # work), at most the budget of this measurement.
    available = lambda: min(psutil.virtual_memory().available, int(budget / guard.HEADROOM))  # noqa: E731
    fp = guard.footprint(req(1), int(guard.HEADROOM * available()))
    rows = []
    for b in BATCHES:
        row = {"batch": b, "meta_bytes": guard.estimate_bytes(req(b)), "probe_bytes": fp.need(b),
               "available_bytes": available()}
        row["fast_bound_bytes"] = int(guard.FAST_FACTOR * row["meta_bytes"] + guard.FRAMEWORK)
        try:
            guard.check_cpu(req(b), available=row["available_bytes"])
        except UserError as exc:
            row.update(refused=str(exc), peak_bytes=None)
        else:
            limit = int(guard.HEADROOM * row["available_bytes"]) + guard._map_slack(req(b))
            got = memory.cpu_peak(req(b), limit_bytes=limit)
            row.update(refused=None, peak_bytes=int(got["peak_rss_mib"] * 2**20),
                       resident_bytes=int(got["resident_mib"] * 2**20))
        rows.append(row)
        print(f"{model} batch {b}: {row}", file=sys.stderr, flush=True)
    return {"model": model, "footprint": {"framework": fp.framework, "built": fp.built, "growth": fp.growth,
                                          "batch": fp.batch}, "rows": rows}


def measure(models: list[str], preset: str, budget_gib: float) -> Path:
    import torch
    from tqdm import tqdm

    from common import env as envmod
    from common import guard, registry
    from common.records import write_atomic

    env = envmod.collect(torch.device("cpu"))
    path = EVIDENCE / f"{envmod.device_tag(env)}_{preset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {"models": []}
    data.update(input=preset, budget_bytes=int(budget_gib * GIB), threads=torch.get_num_threads(),
                guard={"headroom": guard.HEADROOM, "margin": guard.MARGIN, "fast_factor": guard.FAST_FACTOR,
                       "framework_bytes": guard.FRAMEWORK},
                env={k: env.get(k) for k in ("date", "host_cpu", "torch", "python", "cpu_count")})
    for model in tqdm(models or registry.names("catalogue"), desc="guard table", unit="model", file=sys.stderr):
        data["models"] = [m for m in data["models"] if m["model"] != model]
        data["models"].append(measure_model(model, preset, int(budget_gib * GIB)))
        write_atomic(path, json.dumps(data, indent=1) + "\n")  # kept after each model: a stop loses one at most
    return path


def violations(data: dict) -> list[str]:
    """Every measured case whose estimate lies below its measured peak."""
    out = []
    for m in data["models"]:
        for r in m["rows"]:
            for key in ("probe_bytes", "fast_bound_bytes"):
                if r["peak_bytes"] is not None and r[key] < r["peak_bytes"]:
                    out.append(f"{m['model']} batch {r['batch']}: {key} {r[key]} < peak {r['peak_bytes']}")
    return out


def table(data: dict) -> str:
    from common.render.markdown import md_table

    g = data["guard"]
    gib = lambda v: "-" if v is None else f"{v / GIB:.2f}"  # noqa: E731
    rows = []
    for m in data["models"]:
        for r in m["rows"]:
            ratio = "-" if r["peak_bytes"] is None else f"{r['peak_bytes'] / r['probe_bytes']:.2f}"
            # The first rows were measured with the whole budget's memory given to the guard.
            avail = r.get("available_bytes", data["budget_bytes"] / g["headroom"])
            rows.append([m["model"], str(r["batch"]), gib(avail), gib(r["meta_bytes"]), gib(r["fast_bound_bytes"]),
                         gib(r["probe_bytes"]), "refused" if r["refused"] else gib(r["peak_bytes"]), ratio])
    measured = [r for m in data["models"] for r in m["rows"] if r["peak_bytes"]]
    worst = {k: max((r["peak_bytes"] / r[k] for r in measured), default=None) for k in ("probe_bytes",
                                                                                      "fast_bound_bytes")}
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    e = data["env"]
    head = (f"Generated by `scripts/guard_table.py render` from `{Path(data['_path']).relative_to(ROOT).as_posix()}` "
            f"({e['host_cpu']}, {data['threads']} threads, torch {e['torch']}, measured {e['date'][:10]}; input "
            f"{data['input']}; a case is run only when the guard lets it, with the memory "
            f"available then, at most {data['budget_bytes'] / GIB / g['headroom']:.0f} GiB: a budget of "
            f"{data['budget_bytes'] / GIB:.0f} GiB). GiB throughout. *available*: the memory the guard was told is available; *meta*: the meta-device estimate; *fast bound*: "
            f"{g['fast_factor']:g} x meta + {g['framework_bytes'] / GIB:.0f} GiB, under which the guard does not "
            f"measure; *probe*: the estimate from one measured image x {g['margin']:g} margin; *peak*: the measured "
            "peak RSS of a fresh process running that batch's inference. Estimates below a measured peak: "
            f"{len(violations(data))}; the largest peak/probe ratio {fmt(worst['probe_bytes'])}, the largest "
            f"peak/fast-bound ratio {fmt(worst['fast_bound_bytes'])}.\n\n")
    return head + md_table(["model", "batch", "available", "meta", "fast bound", "probe", "peak", "peak/probe"], rows, 1)


def load(path: Path | None = None) -> dict:
    paths = [path] if path else sorted(EVIDENCE.glob("*.json"))
    if not paths:
        raise SystemExit("guard_table: no measurements under results/evidence/cpu-guard (run: measure)")
    data = json.loads(paths[-1].read_text())
    data["_path"] = str(paths[-1])
    return data


def render(check: bool) -> int:
    text = METHODS.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        sys.stderr.write(f"guard_table: docs/methods.md needs one '{BEGIN}' and one '{END}' line\n")
        return 2
    head, rest = text.split(BEGIN, 1)
    new = f"{head}{BEGIN}\n{table(load())}{END}{rest.split(END, 1)[1]}"
    if new == text:
        return 0
    if check:
        sys.stderr.write("guard_table: docs/methods.md's guard table is stale (run: render)\n")
        return 1
    METHODS.write_text(new)
    print(METHODS.relative_to(ROOT))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = maintenance.guard_table(__doc__.split("\n\n")[0])
    args = p.parse_args(argv)
    if args.cmd == "measure":
        print(measure(args.models, args.input, args.budget_gib).relative_to(ROOT))
        return 0
    return render(args.check)


if __name__ == "__main__":
    sys.exit(main())
