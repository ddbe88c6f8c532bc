"""Lines of a .txt that say how far a timing can be trusted: GPU clocks at the
start and end of the timed loop, run-to-run spread (--repeats), GPU kernel time
and busy fraction (launch-bound, with the measured CUDA-graph latency looked up
from the records at render time), per-unit kernel time and its coverage."""
from __future__ import annotations

import json
from pathlib import Path

from common import derive, records
from common import protocol as protocols


def gpu_clocks(c: dict) -> str:
    a, b = c.get("start") or {}, c.get("end") or {}
    if not any(a.get(k) is not None for k in ("sm_clock_mhz", "power_w", "temperature_c")):
        return "clocks unknown"
    f = lambda k, fmt: "?" if a.get(k) is None else format(a[k], fmt)  # noqa: E731
    g = lambda k, fmt: "?" if b.get(k) is None else format(b[k], fmt)  # noqa: E731
    return (f"SM {f('sm_clock_mhz', '.0f')} -> {g('sm_clock_mhz', '.0f')} MHz, memory {f('mem_clock_mhz', '.0f')} -> "
            f"{g('mem_clock_mhz', '.0f')} MHz, power {f('power_w', '.0f')} -> {g('power_w', '.0f')} W, "
            f"temperature {f('temperature_c', '.0f')} -> {g('temperature_c', '.0f')} C ({a.get('source', '?')})")


def repeats_lines(r: dict) -> str:
    """Run-to-run spread (--repeats)."""
    rp = r.get("repeats")
    if not rp or rp["n"] < 2:
        return ""
    how = "fresh processes" if rp.get("fresh_process") else "fresh instances"
    text = (f"Repeats   {rp['n']} on {how}: medians " + ", ".join(f"{m:.3f}" for m in rp["medians_ms"])
            + f" ms; median of medians {rp['median_of_medians_ms']:.3f} ms; spread (max-min)/median "
            f"{rp['spread']:.1%} (the stats above are repeat {rp['representative'] + 1}'s)\n")
    if rp["unstable"]:
        text += (f"UNSTABLE ACROSS RUNS: the repeats' medians differ by more than {rp['unstable_above']:.0%} "
                 "of their median, however tight each run is\n")
    return text


def kernel_lines(rec: dict) -> str:
    """GPU kernel time, busy fraction, and the remedy when the run is launch-bound."""
    k = rec["result"].get("kernels")
    if not k:
        return ""
    if k.get("kernel_ms") is None:
        return f"GPU kernel time: not measured ({k.get('error', 'no device activity in the trace')})\n"
    text = (f"Kernels   {k['kernel_ms']:>12.3f} ms per iteration on the GPU ({k['method']})\n"
            f"Busy      {k['busy']:>12.1%}   (kernel time / {k.get('busy_against', 'wall-time median')})\n")
    if k.get("launch_bound"):
        text += (f"LAUNCH-BOUND: busy below {k['launch_bound_below']:.0%}: the GPU waits on the host launching "
                 "kernels; the wall time measures Python and the launches, not the model's arithmetic.\n"
                 "  Remedy: a CUDA graph (--cuda-graph) or torch.compile removes most of the launch cost. "
                 + graph_latency(rec) + "\n")
    return text


def graph_latency(rec: dict) -> str:
    """The measured CUDA-graph latency of the same model, input and device, from the records."""
    req = records.measured(rec)
    if req.get("cuda_graph") or "_path" not in rec:
        return ""
    from common.spec import Request  # noqa: PLC0415

    base = Request.from_dict({**req, "kind": "timing", "depth": 1, "search": "as-given"})
    folder = Path(rec["_path"]).parents[1] / "timing"
    same = folder / f"{base.with_mode({**base.mode_dict(), 'cuda_graph': True}).stem}.json"
    paths = [same] if same.exists() else sorted(folder.glob(f"{base.model}_{base.input.tag}_*graph*.json"))
    found = []
    for path in paths:
        try:
            other = json.loads(path.read_text(encoding="utf-8"))
            if other.get("superseded") or records.measured(other)["input"]["batch"] != base.input.batch:
                continue
            found.append((other["result"]["timing"]["stats"]["median_ms"], records.measured(other)["mode"], path))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not found:
        return "No CUDA-graph record of this model, input and device yet."
    ms, mode, path = min(found)
    return f"Measured {mode}: {ms:.3f} ms median ({path.stem})."


def kernel_cell(u: dict) -> str:
    return f"{u['kernel_ms']:>11.3f}" if u.get("kernel_ms") is not None else f"{'-':>11}"


def _independent(r: dict) -> str:
    cov = derive.kernel_coverage(r)
    if cov is None:
        return ""
    return (f"Kernel time of the whole model, no hooks:{r['kernels']['kernel_ms_mean']:10.3f} ms (mean)\n"
            f"Kernel coverage (units / whole model):   {cov:10.3f}\n")


def unit_kernel_lines(r: dict) -> str:
    """Per-unit kernel time: what each unit costs the GPU, whatever the host did."""
    if "kernel_coverage" not in r:
        return ""
    uk = r.get("unit_kernels") or {}
    if r["kernel_coverage"] is None:
        return f"Kernel coverage: not measured ({uk.get('error', 'no device activity in the trace')})\n"
    return (f"Sum of units' kernel time (mean):        {sum(u.get('kernel_ms') or 0 for u in r['units']):10.3f} ms\n"
            f"Kernel time of the hooked pass (mean):   {uk['kernel_ms_mean']:10.3f} ms"
            f" ({uk.get('outside_units_ms', 0):.3f} ms launched outside every unit)\n"
            f"Kernel coverage (units / hooked pass):   {r['kernel_coverage']:10.3f} (by construction)\n"
            + _independent(r) +
            "# Span = what the user waits (host time included); kernel ms = the GPU time of the kernels the\n"
            "# unit launched (union of their intervals), from torch.profiler with a range per unit.\n")


def _names(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def unused_params(cost: dict) -> str:
    """The parameters no op of the forward reads (auxiliary heads in eval()), by module; '' when none
    (or a record from before they were counted)."""
    n = cost.get("params_unused")
    return f"{n:,} never read by the forward ({_names(cost['unused'])})" if n else ""


def unit_account_lines(r: dict) -> str:
    """Where a per-unit record's parameters and time sit: the parameters the forward
    reads and the share of them the units hold, those it never reads; the functional
    units' share of the time and each one flagged (``derive.functional_flags``)."""
    c, text = r.get("cost") or {}, ""
    if "params_unused" in c:
        run = c["params"] - c["params_unused"]
        held = f"{c['params_in_units'] / run:.1%}" if run else "-"
        text += (f"Parameters: {c['params']:,}; read by the forward {run:,}, held by the units {c['params_in_units']:,}"
                 f" ({held})" + (f"; {unused_params(c)}" if c["params_unused"] else "") + "\n")
    ff = r.get("functional_flags")
    if ff:
        text += f"Functional units (ops between module units): {ff['functional_share']:.1%} of the units' time\n"
        for f in ff["flagged"]:
            text += (f"  FLAGGED {f['label']}: {f['share']:.1%} of the units' time (above {ff['threshold']:.0%}) "
                     f"with no parameters and no MACs: time no module unit accounts for ({f['note']})\n")
    return text


# A timed loop that stopped on its --max-seconds budget before --iters yet timed less
# than this share of the budget spent the rest waiting: until the warm-up waited for the
# device, work it left queued on a GPU was drained on the budget's clock.
BUDGET_TIMED_AT_LEAST = 0.8


def budget_timed(rec: dict) -> tuple[float, float] | None:
    """(share of the budget timed, budget in s) of ``rec``'s least-timed whole-model loop
    (each repeat's) that stopped on its budget having timed less than
    ``BUDGET_TIMED_AT_LEAST`` of it; None when no loop did."""
    result = rec.get("result")
    budget = protocols.from_request(rec["request"]).max_seconds if isinstance(rec.get("request"), dict) else None
    if not isinstance(result, dict) or not budget or not isinstance(result.get("timing"), dict):
        return None
    loops = [result["timing"], *((result.get("repeats") or {}).get("runs") or [])]
    shares = [sum(t["samples_ms"]) / 1e3 / float(budget) for t in loops
              if t.get("stopped_early") and "samples_ms" in t]
    low = min(shares, default=None)
    return (low, float(budget)) if low is not None and low < BUDGET_TIMED_AT_LEAST else None


def budget_text(rec: dict) -> str:
    """'timed 43% of a 1 s budget' for a record ``budget_timed`` names; '' otherwise."""
    got = budget_timed(rec)
    return f"timed {got[0]:.0%} of a {got[1]:g} s budget" if got else ""


def budget_line(rec: dict) -> str:
    """The .txt's line for a loop cut short (see ``budget_timed``); '' otherwise."""
    text = budget_text(rec)
    return (f"# SHORT TIMED LOOP: {text} (it stopped on its --max-seconds budget before --iters: work the "
            "warm-up left queued on the device was drained on the budget's clock; to be re-measured)\n"
            if text else "")


HOST_MARK = "‡"


def host_bound_text(rec: dict | None) -> str:
    """' ‡ busy 0.35' for a timing whose kernel profile says the GPU waited on the host
    (busy below ``LAUNCH_BOUND_BUSY``); '' otherwise or without a profile."""
    k = ((rec or {}).get("result") or {}).get("kernels") or {}
    return f" {HOST_MARK} busy {k['busy']:.2f}" if k.get("launch_bound") and k.get("busy") is not None else ""
