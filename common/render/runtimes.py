"""results/runtimes.md and its figures: PyTorch beside ONNX Runtime and OpenVINO.

Rows come from the records alone: every current timing record of another runtime,
the PyTorch records the runtimes driver (``common.deploy``) measured in the same
campaign (their own stems, ``request.campaign == "runtimes"``: never the catalogue's
records of the same model and input), and the failure records of either. Imports
neither torch nor any runtime.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from common.render.figures import Figure
from common.render.markdown import md_table, model_key, num, pct

PAGE = "runtimes.md"
DRIVER = "runtimes"  # common.deploy.DRIVER (not imported: the driver imports torch)
FAILURE_KIND = "runtime-failure"  # common.run.FAILURE_KIND
BASELINE = "torch eager fp32"
LABELS = (BASELINE, "torch fastest", "torch eager bf16", "torch eager int8", "onnxruntime fp32", "onnxruntime int8",
          "openvino fp32", "openvino bf16", "openvino int8")
FIRST = ("resnet50", "mobilenet_v2")  # their per-unit profiles are shown on the page
PRESET_ORDER = ("imagenet", "pascal", "cityscapes")


TITLES = {"imagenet": "ImageNet", "pascal": "PASCAL-VOC-2012", "cityscapes": "Cityscapes"}


def preset_title(preset: str, cells: dict[str, dict]) -> str:
    """'PASCAL-VOC-2012 (1,3,500,334)', the shape read from a record of the row."""
    shape = next(iter(cells.values()))["request"]["input"]
    return f"{TITLES[preset]} (1,3,{shape['height']},{shape['width']})"


def label_of(rec: dict) -> str | None:
    """The cell a record fills, or None when it is not one of this page's."""
    if rec["kind"] not in ("timing", FAILURE_KIND) or rec.get("_history"):
        return None
    req = rec["request"]
    runtime = req.get("runtime", "torch")
    if req["input"]["batch"] != 1 or req["input"]["name"] not in PRESET_ORDER:
        return None
    if runtime == "torch" and req.get("campaign") != DRIVER:  # a catalogue or zoo run: its own protocol
        return None
    if runtime != "torch":
        return f"{runtime} {req['precision']}"
    if req.get("search") == "fastest":
        return "torch fastest"
    if req.get("channels_last") or req.get("compile") or req.get("cuda_graph"):
        return None
    return f"torch eager {req['precision']}"


def collect(recs: list[dict]) -> dict[tuple, dict[str, dict]]:
    """(device tag, model, preset) -> label -> record (a timing record beats a failure record)."""
    out: dict[tuple, dict[str, dict]] = {}
    for rec in recs:
        label = label_of(rec)
        if label is None:
            continue
        cells = out.setdefault((rec["device_tag"], rec["request"]["model"], rec["request"]["input"]["name"]), {})
        if label not in cells or cells[label]["kind"] == FAILURE_KIND:
            cells[label] = rec
    return out


def median(rec: dict) -> float | None:
    return rec["result"]["timing"]["stats"]["median_ms"] if rec["kind"] == "timing" else None


def executed(rec: dict, label: str) -> str:
    """The precision the runtime ran in, as read back (PyTorch: the mode it ran)."""
    r = rec["result"]
    if "runtime" in r:
        return r["runtime"]["executed_precision"].split(" (")[0]
    if label == "torch fastest":
        return (r.get("fastest") or {}).get("picked", "?")
    return rec["request"]["mode"]


def disagrees(rec: dict) -> bool:
    return bool((rec["result"].get("agreement") or {}).get("flagged"))


def flags(rec: dict) -> str:
    r = rec["result"]
    words = ["DISAGREES" if disagrees(rec) else ""]
    words.append("NOISY" if r["timing"]["stats"].get("noisy") else "")
    return " ".join(w for w in words if w)


def gflops_per_s(rec: dict) -> float | None:
    ms = median(rec)
    return rec["result"]["gflops"] / (ms / 1e3) if ms and rec["result"].get("gflops") else None


# "int8 x53, bf16 x1", "eager bf16 channels-last", "int8": a precision word, with its node count if any.
_PRECISION = re.compile(r"\b(fp32|tf32|fp16|bf16|int8)\b(?: x(\d+))?")


def ran_precision(rec: dict, label: str) -> str | None:
    """The precision most of the run's compute nodes executed in (the first named on a tie)."""
    found = [(int(n) if n else 1, p) for p, n in _PRECISION.findall(executed(rec, label))]
    return max(found, key=lambda found_one: found_one[0])[1] if found else None


def threads_of(rec: dict) -> int | None:
    return rec["request"].get("threads") or rec["env"].get("threads")


def cpu_peaks(recs: list[dict]) -> dict[tuple[str, int], dict]:
    """(device tag, threads) -> the newest CPU peak record measured with that many threads."""
    out: dict[tuple[str, int], dict] = {}
    for rec in recs:
        if rec["kind"] != "peak" or rec.get("_history") or rec["env"].get("device_type") != "cpu":
            continue
        key = (rec["device_tag"], threads_of(rec))
        if key not in out or rec["env"]["date"] > out[key]["env"]["date"]:
            out[key] = rec
    return out


def peak_of(rec: dict, peaks: dict[tuple[str, int], dict]) -> dict | None:
    """The CPU peak record of the run's device and thread count, if measured."""
    return peaks.get((rec["device_tag"], threads_of(rec))) if rec["kind"] == "timing" else None


def share_of_peak(rec: dict, label: str, peaks: dict[tuple[str, int], dict]) -> float | None:
    """Achieved GFLOP/s over the matrix peak of the precision the run executed, at its threads."""
    p, rate, precision = peak_of(rec, peaks), gflops_per_s(rec), ran_precision(rec, label)
    peak = p["result"]["matmul_tflops"].get(precision) if p and precision else None
    return rate / (peak * 1e3) if rate and peak else None


def speedup(base: dict | None, rec: dict) -> float | None:
    return median(base) / median(rec) if base and base["kind"] == "timing" and median(rec) else None


def best(cells: dict[str, dict], only: Callable[[str], bool] = lambda _l: True) -> tuple[str, dict] | None:
    """The fastest cell whose output agrees with PyTorch fp32."""
    ok = [(label, rec) for label, rec in cells.items()
          if rec["kind"] == "timing" and only(label) and not disagrees(rec)]
    return min(ok, key=lambda lr: median(lr[1])) if ok else None


def _agreement(rec: dict) -> tuple[str, str]:
    a = rec["result"].get("agreement")
    if not a:  # PyTorch's own fp32 / bf16 runs: the reference, or not compared
        return "reference" if rec["request"]["precision"] == "fp32" and rec["request"].get("search") != "fastest" \
            else "-", "-"
    return num(a.get("cosine"), ".6f"), num(a.get("max_abs_diff"), ".2e")


def _all_runs(key: tuple, cells: dict[str, dict], peaks: dict | None = None) -> list[list[str]]:
    """The rows of one model; ``peaks``: with a *share of peak* column after GFLOP/s."""
    base = cells.get(BASELINE)
    rows = []
    for label in sorted(cells, key=lambda l: LABELS.index(l) if l in LABELS else len(LABELS)):
        rec = cells[label]
        if rec["kind"] == FAILURE_KIND:
            r = rec["result"]
            rows.append([key[1], label, f"failed at {r['stage']}: {r['reason']}"] + ["-"] * (8 if peaks is None else 9))
            continue
        cos, diff = _agreement(rec)
        compile_s = (rec["result"].get("runtime") or {}).get("compile_s")
        share = [] if peaks is None else [pct(share_of_peak(rec, label, peaks))]
        rows.append([key[1], label, executed(rec, label), num(median(rec), ".2f"),
                     num(speedup(base, rec), ".2f") + "x", num(gflops_per_s(rec), ".1f"), *share, cos, diff,
                     num(compile_s[0] if compile_s else None, ".2f"), num(rec["env"].get("loadavg_1m"), ".2f"),
                     flags(rec)])
    return rows


def _peak_notes(used: list[dict]) -> str:
    """Which peak records the *share of peak* column divides by."""
    out = []
    for rec in used:
        rates = ", ".join(f"{p} {v * 1e3:.1f} GFLOP/s" for p, v in rec["result"]["matmul_tflops"].items())
        missing = [p for p in ("fp32", "bf16") if p not in rec["result"]["matmul_tflops"]]
        out.append(f"\n*Share of peak* on {rec['device_tag']} with {threads_of(rec)} thread(s) divides by the peak "
                   f"record measured {rec['env']['date'][:16]} UTC ({rec['env']['host_cpu']}, "
                   f"{threads_of(rec)} thread(s)): {rates}; {rec['result']['method']}"
                   + (f"; no peak for {', '.join(missing)}, so those rows show -" if missing else "") + ".\n")
    return "".join(out)


def _fastest_rows(keys: list[tuple], data: dict) -> list[list[str]]:
    rows = []
    for key in keys:
        cells, base = data[key], data[key].get(BASELINE)
        top = best(cells)
        int8 = best(cells, lambda l: l.endswith("int8"))
        if not base or base["kind"] != "timing" or not top:
            continue
        row = [key[1], key[2], num(median(base), ".2f"), top[0], executed(top[1], top[0]),
               num(median(top[1]), ".2f"), num(speedup(base, top[1]), ".2f") + "x"]
        row += [int8[0], num(median(int8[1]), ".2f"), num(speedup(base, int8[1]), ".2f") + "x",
                _agreement(int8[1])[0]] if int8 else ["-"] * 4
        rows.append(row)
    return rows


def _per_unit(key: tuple, cells: dict[str, dict]) -> str:
    """Per-unit times from the runtimes' profilers (mean of a few inferences on a profiling session)."""
    have = [(l, r) for l, r in cells.items() if r["kind"] == "timing" and (r["result"].get("per_node") or {}).get("units")]
    if not have:
        return ""
    have.sort(key=lambda lr: LABELS.index(lr[0]) if lr[0] in LABELS else len(LABELS))
    units = [u["label"] for u in have[0][1]["result"]["per_node"]["units"]]
    rows = []
    for i, unit in enumerate(units):
        rows.append([unit] + [num(r["result"]["per_node"]["units"][i]["ms"], ".3f") for _, r in have])
    rows.append(["outside any unit"] + [num(r["result"]["per_node"]["outside_units_ms"], ".3f") for _, r in have])
    rows.append(["sum of nodes"] + [num(r["result"]["per_node"]["sum_ms"], ".3f") for _, r in have])
    rows.append(["coverage of the median"] + [num(r["result"]["per_node"]["sum_ms"] / median(r) * 100, ".0f") + "%"
                                              for _, r in have])
    return (f"\n**{key[1]}, {preset_title(key[2], cells)}** (ms per unit)\n\n"
            + md_table(["unit"] + [l for l, _ in have], rows, 1))


def _notes(data: dict) -> str:
    recs = [r for cells in data.values() for r in cells.values() if r["kind"] == "timing"]
    loads = [r["env"]["loadavg_1m"] for r in recs if r["env"].get("loadavg_1m") is not None]
    dates = sorted(r["env"]["date"] for r in recs)
    cpus = sorted({r["env"]["host_cpu"] for r in recs})
    versions = sorted({f"{r['result']['runtime']['name']} {r['result']['runtime']['version'].split('-')[0]}"
                       for r in recs if "runtime" in r["result"] and r["result"]["runtime"]["name"] != "torch"})
    torch_v = sorted({r["env"]["torch"] for r in recs})
    threads = sorted({str(r["request"].get("threads") or r["env"].get("threads")) for r in recs})
    return (f"Measured on {', '.join(cpus)} ({', '.join(sorted({str(r['env']['cpu_count']) for r in recs}))} cores), "
            f"{' or '.join(threads)} thread(s) per run, "
            f"{dates[0][:16]} to {dates[-1][:16]} UTC; {', '.join(['torch ' + v for v in torch_v] + versions)}. "
            f"The machine was shared with other work while these ran: each record keeps the 1-minute load average "
            f"taken just before it (column *load*; here {min(loads):.2f} to {max(loads):.2f} on "
            f"{recs[0]['env']['cpu_count']} cores), so absolute numbers carry that noise." + _placement(recs) + "\n"
            if loads else f"Measured on {', '.join(cpus)}, {dates[0][:16]} to {dates[-1][:16]} UTC.\n")


def _placement(recs: list[dict]) -> str:
    """Where the runs ran and how long they waited for a quiet machine, from their records."""
    pinned = [r for r in recs if r["env"].get("cpu_affinity") is not None
              and len(r["env"]["cpu_affinity"]) < (r["env"].get("cpu_count") or 0)]
    cores = sorted({c for r in pinned for c in r["env"]["cpu_affinity"]})
    policies = sorted({(p["max_load"], p["wait_s"]) for r in recs if (p := r["env"].get("load_policy"))})
    text = (f" {len(pinned)} of the {len(recs)} runs were pinned to CPU {', '.join(map(str, cores))} (the process's "
            "affinity), the machine's other work kept off it, so the load average counts that other work too."
            if pinned else "")
    text += "".join(f" {sum(1 for r in recs if r['env'].get('load_policy') == {'max_load': m, 'wait_s': w})} runs "
                    + (f"waited up to {w:g} s for a load below {m:g}." if w else "did not wait for the load.")
                    for m, w in policies)
    older = sum(1 for r in recs if not r["env"].get("load_policy"))
    return text + (f" {older} earlier runs did not record their waiting policy (each records the seconds it "
                   "waited)." if older and policies else "")


HEAD = """# Deployment runtimes: PyTorch, ONNX Runtime, OpenVINO

Rendered from the records by `python -m common.render`; measured by `scripts/runtimes.sh`
(`python -m common runtimes`). Every runtime runs the model exported once to ONNX (TorchScript
exporter, opset 17, cached outside the repository) with the same seeded random weights and
input as PyTorch, single image, on this CPU with the threads the notes below state. Protocol
(every cell): at least 2 warm-up iterations and 1 s, then up to 50 timed iterations stopped after
4 s once 5 ran, one repeat; the median is reported. The driver can wait before each cell for the 1-minute
load average to fall (`--max-load`, `--wait-s`); what the runs did is in the notes below. Session creation /
compilation is timed apart (*compile s*).

- **ONNX Runtime**: CPU execution provider, all graph optimisations, intra-op threads = the run's.
  int8: static QDQ quantisation (`quantize_static`, per-channel s8 weights, u8 activations,
  MinMax on 8 seeded inputs).
- **OpenVINO**: CPU plugin, `PERFORMANCE_HINT=LATENCY`, synchronous inference, the run's threads; fp32
  requests set `INFERENCE_PRECISION_HINT=f32` (unset, OpenVINO runs bf16 on this AMX CPU), bf16
  requests set it to bf16; int8: NNCF `quantize` on 8 seeded inputs, the unquantised ops left at
  OpenVINO's default precision.
- **PyTorch**: eager fp32 (the baseline every speed-up divides), eager bf16 (autocast), its
  fastest CPU mode (the mode search over precision and memory format, without torch.compile),
  and int8 (FX graph-mode static quantisation, x86 backend).
- *ran as*: the precision read back from the runtime (OpenVINO's compiled-model property and the
  kernel types of its performance counters, ONNX Runtime's executed node types) counted over the
  convolution and matmul nodes, e.g. `int8 x53, fp32 x1`.
- *agreement*: cosine similarity and max absolute difference of the whole output against PyTorch
  fp32 on the same input. The weights are random, so top-1 accuracy would mean nothing; agreement
  is the sanity check. A run below the tolerance (cosine {tol}) is marked **DISAGREES** and never
  chosen as fastest. PyTorch's bf16 and fastest-mode runs are not compared (`-`). *GFLOP/s*: the model's FLOPs (our counter) over the median; {share}
"""
NO_PEAK = "the CPU's peak was\n  not measured here, so no share of peak is given."
WITH_PEAK = ("*share of peak*: that rate over the CPU's\n  measured matrix-product rate (`python -m common peak "
             "--device cpu --threads N`) in the precision the run\n  executed (*ran as*; mixed: the precision most "
             "of its compute nodes ran in), measured with the run's\n  threads (a row without such a peak shows -). "
             "int8 rows show -: no int8 peak is measured, as PyTorch's\n  int8 matrix products run slower than the "
             "runtimes' own int8 kernels achieve on whole models.")


def page(recs: list[dict]) -> str:
    data = collect(recs)
    if not data:
        return HEAD.format(tol="fp32 0.9999, bf16 0.99, int8 0.9", share=NO_PEAK) + "\nNo runtime records yet.\n"
    keys = sorted(data, key=lambda k: (k[0], PRESET_ORDER.index(k[2]), model_key(k[1])))
    peaks = cpu_peaks(recs)
    used = {id(p): p for cells in data.values() for rec in cells.values() if (p := peak_of(rec, peaks))}
    used_list = sorted(used.values(), key=lambda r: (r["device_tag"], threads_of(r)))
    out = [HEAD.format(tol="fp32 0.9999, bf16 0.99, int8 0.9", share=WITH_PEAK if used else NO_PEAK), "\n",
           _notes(data), _peak_notes(used_list)]
    out.append("\n## The fastest deployment\n\nPer model: PyTorch eager fp32 against the fastest cell whose output "
               "agrees (any runtime and precision), and the fastest int8 cell, all measured in the same campaign.\n\n")
    out.append(md_table(["model", "input", "eager fp32 ms", "fastest", "ran as", "ms", "speed-up", "best int8",
                         "ms", "speed-up", "cosine"], _fastest_rows(keys, data), 2))
    for tag in sorted({k[0] for k in keys}):
        for preset in PRESET_ORDER:
            group = [k for k in keys if k[0] == tag and k[2] == preset]
            if not group:
                continue
            with_share = any(peak_of(r, peaks) for k in group for r in data[k].values())
            rows = [row for k in group for row in _all_runs(k, data[k], peaks if with_share else None)]
            out.append(f"\n## {preset_title(preset, data[group[0]])}, {tag}\n\n![latency per runtime](figures/runtimes_{tag}_"
                       f"{preset}.png)\n\n")
            out.append(md_table(["model", "runtime · precision", "ran as", "median ms", "speed-up", "GFLOP/s"]
                                + ["share of peak"] * with_share
                                + ["cosine", "max abs diff", "compile s", "load", "flags"], rows, 3))
    flagged = [[k[1], k[2], label, str(rec["result"]["agreement"].get("why")),
                num(rec["result"]["agreement"].get("max_abs_reference"), ".2e")]
               for k in keys for label, rec in data[k].items() if rec["kind"] == "timing" and disagrees(rec)]
    if flagged:
        out.append("\n## Runs whose output disagrees with PyTorch fp32\n\nNever chosen as fastest. *max |reference|*: "
                   "the largest magnitude of PyTorch's fp32 output on the seeded input; where it is tiny (random "
                   "weights can leave logits near 1e-9) an int8 output quantised to zero points nowhere (cosine 0).\n\n")
        out.append(md_table(["model", "input", "runtime · precision", "why", "max |reference|"], flagged, 4))
    units = [_per_unit(k, data[k]) for k in keys if k[1] in FIRST]
    if any(units):
        out.append("\n## Per unit, from the runtimes' own profilers\n\nOpenVINO's performance counters and ONNX "
                   "Runtime's profiler time every node (mean of 3 inferences on a separate profiling session); a "
                   "node belongs to the unit whose module path its exported name carries. *Coverage*: the nodes' "
                   "sum against the timed median (profiling adds its own overhead; the runtimes fuse, so a "
                   "unit's time includes what was fused into its nodes).\n")
        out.extend(units)
    return "".join(out)


def outputs(results_dir: Path, recs: list[dict]) -> dict[Path, str]:
    return {Path(results_dir) / PAGE: page(recs)}


def figures(recs: list[dict]) -> list[Figure]:
    data = collect(recs)
    out = []
    for tag in sorted({k[0] for k in data}):
        for preset in PRESET_ORDER:
            keys = sorted((k for k in data if k[0] == tag and k[2] == preset), key=lambda k: model_key(k[1]))
            if keys:
                out.append(Figure(tag, f"runtimes_{tag}_{preset}.png", f"latency per runtime, {preset}", "runtimes",
                                  _bars({k[1]: data[k] for k in keys}, f"Median latency per runtime, "
                                                                       f"{preset_title(preset, data[keys[0]])}")))
    return out


def _bars(models: dict[str, dict[str, dict]], title: str) -> Callable[[Any], None]:
    def draw(fig: Any) -> None:
        fig.set_size_inches(8, max(5.0, 0.45 * len(models) + 1.5))
        ax = fig.subplots()
        labels = [l for l in LABELS if any(l in c and c[l]["kind"] == "timing" for c in models.values())]
        height = 0.8 / max(1, len(labels))
        names = list(models)
        for j, label in enumerate(labels):
            ys = [i + j * height for i, m in enumerate(names) if label in models[m] and
                  models[m][label]["kind"] == "timing"]
            xs = [median(models[m][label]) for m in names if label in models[m] and models[m][label]["kind"] == "timing"]
            ax.barh(ys, xs, height=height, label=label)
        ax.set_yticks([i + 0.4 - height / 2 for i in range(len(names))], names)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("median latency (ms, log scale)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    return draw
