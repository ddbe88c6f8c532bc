"""The zoo page's lines about one device's sweep, from its zoo-run record and the
records of its tables (``common.render.zoo`` places them above the device's tables):

    sweep_line(sweep)        what was swept, its wall time over every call, failures, protocol
    machine_line(env)        where: the CPU, its logical CPUs, the sweep's pinning and threads;
                             or the GPU, its driver and the host
    search_line(fastest)     what the fastest search timed here, its look at each candidate,
                             and what it picked

Each reads the records only; a field an older record lacks leaves its words out.
"""
from __future__ import annotations

from collections import Counter


def _plural(n: object, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def sweep_line(sweep: dict) -> str:
    r = sweep["result"]
    failed = r.get("failed", [])
    runs = f" ({r['runs']} sweep records; the longest wall time)" if r.get("runs", 1) > 1 else ""
    calls = f" over {r['calls']} calls" if r.get("calls", 1) > 1 else ""
    calls += f" ({r['dask_calls']} through the Dask sweep, one task per model)" if r.get("dask_calls") else ""
    return (f"Sweep: {len(r['models'])} models listed x {', '.join(r['inputs'])}, "
            f"wall time {r.get('wall_s', 0) / 60:.1f} min{calls}{runs}, "
            f"{len(failed)} failed steps; protocol: {r.get('protocol', '?')}.")


def machine_line(env: dict) -> str:
    """The machine of the sweep's record. On a CPU the latency hangs on the cores the process
    may use and its threads, so both are stated as the sweep's process recorded them."""
    if env.get("device_type") == "cpu":
        n, pinned = env.get("cpu_count"), env.get("cpu_affinity") or []
        where = f"{env.get('host_cpu', '?')}" + (f", {_plural(n, 'logical CPU')}" if n else "")
        if pinned and n and len(pinned) < n:
            where += f", the sweep pinned to {len(pinned)} of them (CPU {', '.join(map(str, pinned))})"
        threads = [_plural(env[k], word) for k, word in (("threads", "intra-op thread"),
                                                          ("interop_threads", "inter-op thread")) if env.get(k)]
        return (f"Machine: {where}" + (f"; {', '.join(threads)}" if threads else "")
                + (f"; torch {env['torch']} (CUDA not used)" if env.get("torch") else "") + ".")
    gpu = env.get("device_name", "?") + (f" (driver {env['driver']})" if env.get("driver") else "")
    return (f"Machine: {gpu}" + (f", host CPU {env['host_cpu']}" if env.get("host_cpu") else "")
            + (f"; torch {env['torch']}, CUDA {env.get('cuda')}" if env.get("torch") else "") + ".")


def search_line(fastest: list[dict]) -> str | None:
    """The fastest search as these records ran it: the candidates it timed (how many searches
    timed each), its look at a candidate, and how often it picked each mode."""
    timed: Counter = Counter()
    picked: Counter = Counter()
    looks: Counter = Counter()
    for rec in fastest:
        f = rec["result"].get("fastest") or {}
        timed.update(c["mode"] for c in f.get("candidates", []) if "median_ms" in c)
        if f.get("picked"):
            picked[f["picked"]] += 1
        if f.get("search"):
            looks[f["search"]] += 1
    if not timed:
        return None
    n = len(fastest)
    line = "Fastest search: timed " + ", ".join(
        mode + ("" if k == n else f" (in {k} of {n} searches)") for mode, k in timed.items())
    if looks:
        line += f"; its look at each candidate: {looks.most_common(1)[0][0]}"
    return line + "; picked " + ", ".join(f"{mode} for {k}" for mode, k in sorted(picked.items(), key=lambda mk: (-mk[1], mk[0]))) + f" of {n}."
