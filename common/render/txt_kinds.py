"""The text of each record kind's ``.txt``, from the record alone (formatting only).

``FORMATTERS`` maps a record kind to its builder; ``common.render.txt`` places the
text (``path_for``), prefixes the protocol and budget lines, fits it to the width
and writes it.
"""
from __future__ import annotations

from typing import Callable

from common import records
from common.render.markdown import num
from common.render.evidence import (gpu_clocks, kernel_cell, kernel_lines, repeats_lines, unit_account_lines,
                                    unit_kernel_lines, unused_params)


def header(title: str, rec: dict) -> str:
    spec, env = records.measured(rec), rec["env"]  # a fastest search: the mode it measured
    flags = rec["result"].get("backend_flags", {})
    lines = [
        f"# {title}",
        f"# model: {spec['model']}   input: {spec['input']['name']} "
        f"(B,C,H,W) = ({', '.join(map(str, spec['input']['shape']))})",
        f"# device: {env['device_name']} [{spec['device']}]" + (f"   driver: {env['driver']}" if env.get("driver") else ""),
        f"# host CPU: {env['host_cpu']}   threads: {env['threads']}",
        (f"# torch {env['torch']}   CUDA {env['cuda']}   cuDNN {env['cudnn']}   python {env['python']}"
         if env.get("device_type") == "cuda" else f"# torch {env['torch']}   python {env['python']}"),
        f"# mode: {spec['mode']}   precision: {spec['precision']}   channels_last: {spec['channels_last']}",
    ]
    built = [f"output stride {spec['output_stride']}"] if spec.get("output_stride", 32) != 32 else []
    built += ["multi-scale features (features_only)"] if spec.get("features") else []
    if built:
        lines.append("# built with: " + ", ".join(built))
    if flags and env.get("device_type") == "cuda":  # cuDNN and TF32 flags play no part on the CPU
        lines.append("# backend flags: " + "  ".join(f"{k}={v}" for k, v in flags.items()))
    if "timing" in rec["result"]:
        t = rec["result"]["timing"]
        lines.append(
            f"# clock: {t['clock']}   warm-up: {t['warmup']}   iterations: {t['iters']} of {t['requested_iters']}"
            + ("   (stopped early by --max-seconds)" if t["stopped_early"] else "")
        )
        if "warmup_iters_run" in t:
            lines.append(f"# warm-up ran {t['warmup_iters_run']} iterations in {t['warmup_seconds']:.2f} s "
                         f"(at least {t['warmup']} iterations and {t['warmup_min_s']:g} s)")
        if t.get("clocks"):
            lines.append("# GPU at start -> end of the timed loop: " + gpu_clocks(t["clocks"]))
    if env.get("device_type") == "cpu" and "cpu_affinity_count" in env:
        lines.append(f"# CPU: {env['threads']} threads (inter-op {env.get('interop_threads')}), affinity "
                     f"{env['cpu_affinity_count']} CPUs, governor {env.get('cpu_governor')}")
    lines.append(f"# date: {env['date']}")
    return "\n".join(lines) + "\n"


def stats_block(s: dict, indent: str = "") -> str:
    rows = [
        ("Mean", s["mean_ms"], "ms"), ("Std", s["std_ms"], "ms"), ("Median", s["median_ms"], "ms"),
        ("P90", s["p90_ms"], "ms"), ("P99", s["p99_ms"], "ms"), ("Min", s["min_ms"], "ms"),
        ("Max", s["max_ms"], "ms"), ("FPS", s["fps"], "images/s"),
    ]
    out = "".join(f"{indent}{k:<8}{v:>12.3f} {u}\n" for k, v, u in rows)
    if s["noisy"]:
        out += f"{indent}NOISY: interquartile range {s['iqr_ms']:.3f} ms exceeds 10% of the median\n"
    return out


def timing_txt(rec: dict) -> str:
    r = rec["result"]
    t = r["timing"]
    text = header("Inference time, whole model", rec) + "\n"
    text += f"Samples: {t['iters']}\n" + stats_block(t["stats"]) + repeats_lines(r) + kernel_lines(rec)
    if r.get("setup"):
        text += "Setup (not timed): " + ", ".join(
            f"{k}={v}" if isinstance(v, bool) else f"{k}={v:.2f}" for k, v in r["setup"].items()) + "\n"
    if r.get("achieved_tflops") is not None:
        text += f"Achieved  {r['achieved_tflops']:>12.3f} TFLOP/s ({r['gflops']:.2f} GFLOP per batch / median)\n"
    text += peak_line(r)
    if r.get("fastest"):
        f = r["fastest"]
        text += f"\nPicked by --mode fastest: {f['picked']} ({f['search']}):\n"
        for c in f["candidates"]:
            got = f"{c['median_ms']:10.3f} ms" if "median_ms" in c else f"skipped: {c['skipped']}"
            text += f"  {c['mode']:<48}{got}\n"
    return text + runtime_lines(r)


def runtime_lines(r: dict) -> str:
    """A runtime run: what loaded it, the precision it ran in, compile time, agreement, per-unit profile."""
    if "runtime" not in r:
        return ""
    rt, a = r["runtime"], r.get("agreement") or {}
    text = f"\nRuntime: {rt['name']} {rt['version']}, ran as {rt['executed_precision']}\n"
    text += "Compile / session (not timed): " + ", ".join(f"{s:.2f} s" for s in rt["compile_s"]) + "\n"
    for what in ("export", "quantisation"):
        if what in r:
            text += f"{what.capitalize()}: {r[what]['path']} ({'cached' if r[what]['cached'] else 'made now'})\n"
    if a:
        text += (f"Agreement with PyTorch fp32: cosine {num(a.get('cosine'), '.6f')}, max abs diff "
                 f"{num(a.get('max_abs_diff'), '.3e')} (tolerance: cosine >= {a['min_cosine']})"
                 + (f"  DISAGREES: {a['why']}" if a.get("flagged") else "") + "\n")
    pn = r.get("per_node")
    if pn:
        text += f"Per-node profile ({pn['iters']} inferences, {pn['node_count']} nodes, {pn['sum_ms']:.3f} ms): " \
                f"{pn['mapping']}\n"
        for u in pn.get("units") or []:
            text += f"  {u['label']:<24}{u['ms']:10.3f} ms\n"
        if pn.get("units"):
            text += f"  {'outside any unit':<24}{pn['outside_units_ms']:10.3f} ms\n"
    return text


def peak_line(r: dict) -> str:
    if r.get("fraction_of_peak") is None:
        return ""
    p = r["device_peak"]
    return (f"Of peak   {r['fraction_of_peak']:>12.1%}   (measured peak {p['matmul_tflops']:.1f} TFLOP/s for this "
            f"precision, copy {p['copy_gbs']:.0f} GB/s; python -m common.measure.peak, {p.get('measured') or 'date unknown'})\n")


def _shape(s: list | None) -> str:
    return "x".join(map(str, s)) if s else "-"


def layers_txt(rec: dict) -> str:
    r = rec["result"]
    units = r["units"]
    costs = {c["label"]: c for c in r.get("cost", {}).get("units", [])}
    text = header(f"Inference time per unit (depth {rec['request']['depth']})", rec)
    text += (
        "# Hooks on the unmodified model mark each unit's start and end (one device\n"
        "# synchronize per iteration). 'functional' units are ops between modules.\n\n"
    )
    kernel = "kernel_coverage" in r
    # Generic units are module paths (serial_blocks1.0): the column widens to the longest, so none is cut.
    lw = min(max(16, *(len(u["label"]) + 1 for u in units)), 28)
    cols = f"{'unit':<{lw}}{'module (type)':<40}{'output':>18}{'params':>12}{'GMACs':>10}"  # ViT-H: 1e9 params
    cols += f"{'median ms':>10}{'mean ms':>9}{'std ms':>8}{'p90 ms':>8}{'share':>7}" + (f"{'kernel ms':>10}" if kernel else "")
    text += cols + "\n" + "-" * len(cols) + "\n"
    total_mean = sum(u["stats"]["mean_ms"] for u in units)
    flagged = {f["label"] for f in (r.get("functional_flags") or {}).get("flagged", [])}
    for u in units:
        s, c = u["stats"], costs.get(u["label"], {})
        module = f"{u['path'] or u['note']} ({u['type']})"
        text += (f"{u['label'][:lw - 1]:<{lw}}{module[:39]:<40}{_shape(u['out_shape'] or c.get('out_shape')):>18}"
                 f"{c.get('params', 0):>12,}{c.get('macs', 0) / 1e9:>10.3f}"
                 f"{s['median_ms']:>10.3f}{s['mean_ms']:>9.3f}{s['std_ms']:>8.3f}{s['p90_ms']:>8.3f}"
                 f"{s['mean_ms'] / total_mean:>7.1%}" + (kernel_cell(u) if kernel else "")
                 + ("  NOISY" if s["noisy"] else "") + ("  FLAGGED" if u["label"] in flagged else "") + "\n")
    cols = f"{'unit':<{lw}}{'input':>18}{'output':>18}{'act MiB':>9}{'MB moved':>10}{'FLOP/B':>8}{'TFLOP/s':>9}"
    cols += f"{'bound':>9}{'of roof':>9}"
    text += "\nCost and roofline per unit (median time):\n" + cols + "\n" + "-" * len(cols) + "\n"
    for u in units:
        c = costs.get(u["label"], {})
        text += (f"{u['label'][:lw - 1]:<{lw}}{_shape(u['in_shape']):>18}{_shape(u['out_shape'] or c.get('out_shape')):>18}"
                 f"{c.get('feature_mib', 0):>9.2f}" + _roofline_cells(u.get("roofline")) + "\n")
    w, span = r["timing"]["stats"], r["hooked_span"]["stats"]
    text += "\n"
    text += f"Sum of units (mean):                    {total_mean:10.3f} ms\n"
    text += f"Hooked forward pass, first to last mark: {span['mean_ms']:10.3f} ms (mean)\n"
    if "coverage_whole" in r and r.get("repeats", {}).get("n", 1) > 1:  # the units ran on the last repeat's instance
        text += f"Whole model without hooks, same instance: {r['coverage_whole']['mean_ms']:9.3f} ms (mean, last repeat)\n"
    else:
        text += f"Whole model without hooks, same run:     {w['mean_ms']:10.3f} ms (mean), {w['median_ms']:.3f} ms (median)\n"
    text += f"Coverage (sum of units / whole model):   {r['coverage']:10.3f}\n"
    if r.get("coverage_reliable") is False:
        text += (f"  UNRELIABLE coverage: the whole-model reference has {r['coverage_whole']['iters']} samples, "
                 f"fewer than {r['coverage_min_samples']}\n")
    text += unit_account_lines(r) + repeats_lines(r) + unit_kernel_lines(r) + kernel_lines(rec) + peak_line(r)
    text += ("# Roofline: bytes = input + weights + output, each once; bound = compute when FLOP/B is at or\n"
             "# above the measured ridge (peak FLOP/s / copy bandwidth), else memory; 'of roof' = achieved\n"
             "# rate / attainable rate at that intensity. Needs results/records/<device>/peak/peak.json (python -m common.measure.peak).\n")
    return text


def _roofline_cells(rf: dict | None) -> str:
    if not rf:
        return f"{'-':>10}{'-':>8}{'-':>9}{'-':>9}{'-':>9}"
    frac = rf.get("fraction_of_roof")
    return (f"{rf['bytes'] / 1e6:>10.2f}{(rf['intensity'] or 0):>8.1f}{(rf['achieved_tflops'] or 0):>9.3f}"
            f"{rf.get('bound', '-'):>9}{(f'{frac:.1%}' if frac is not None else '-'):>9}")


def memory_txt(rec: dict) -> str:
    r = rec["result"]
    st, pk, cost = r["static"], r["peak"], r["cost"]
    text = header("Memory report", rec) + "\n"
    text += "## Summary (MiB = 2^20 bytes)\n"
    text += f"Total Tensors (elements):        {st['elements']:>16,}  ({st['elements'] / 1e6:.3f} M)\n"
    text += f"Static memory (memlab):          {st['static_mib']:>16.2f} MiB  (weights + buffers + input)\n"
    if r.get("allocator_mib") is not None:
        text += f"torch.cuda.memory_allocated():   {r['allocator_mib']:>16.2f} MiB  (difference {r['static_vs_allocator']:+.3%})\n"
    peak = pk.get("peak_inference_mib")
    text += f"Peak memory of one inference:    {peak if peak is not None else float('nan'):>16.2f} MiB  above resident\n"
    for k in ("resident_mib", "peak_allocated_mib", "peak_reserved_mib", "peak_rss_mib"):
        if k in pk:
            text += f"  {k:<30} {pk[k]:>16.2f}\n"
    text += f"  measured as: {pk['method']}\n"
    text += f"Parameters:                      {cost['params']:>16,}  ({cost['params'] / 1e6:.3f} M)\n"
    text += f"  of which {unused_params(cost)}\n" if unused_params(cost) else ""
    text += f"Parameter memory:                {cost['param_mib']:>16.2f} MiB  (+ buffers {cost['buffer_mib']:.2f} MiB)\n"
    text += f"MACs:                            {cost['macs']:>16,}  ({cost['macs'] / 1e9:.3f} GMACs)\n"
    text += f"FLOPs (= 2 x MACs):              {cost['flops']:>16,}  ({cost['flops'] / 1e9:.3f} GFLOPs)\n"
    text += f"Feature memory (convnet-burden): {cost['feature_mib']:>16.2f} MiB  (float32, every op output once, no reuse, in-place/views free)\n"
    text += "Ops without a FLOP formula (not counted): " + ", ".join(f"{k} x{v}" for k, v in cost["uncounted_ops"].items()) + "\n"
    text += "\n## Per unit\n" + unit_cost_table(cost["units"])
    # memlab's own listing last: every tensor, hundreds of lines for a deep model.
    text += "\n## Tensors alive before inference (pytorch-memlab MemReporter"
    text += ", byte counts corrected: memlab 0.3.x multiplies bytes by the element size)\n" if st["memlab_corrected"] else ")\n"
    return text + st["listing"]


def unit_cost_table(units: list[dict]) -> str:
    cols = f"{'unit':<16}{'module':<22}{'output':>22}{'params':>13}{'GMACs':>10}{'act MiB':>10}"
    text = cols + "\n" + "-" * len(cols) + "\n"
    for u in units:
        text += (f"{u['label']:<16}{(u['path'] or 'functional'):<22}{_shape(u['out_shape']):>22}"
                 f"{u['params']:>13,}{u['macs'] / 1e9:>10.3f}{u['feature_mib']:>10.2f}\n")
    return text


def structure_txt(rec: dict) -> str:
    r = rec["result"]
    cost = r["cost"]
    text = header(f"Model structure (depth {r['depth']})", rec) + "\n"
    cols = f"{'module path':<34}{'type':<26}{'output shape':>22}{'params':>13}{'kernel':>9}{'MACs':>17}"
    text += cols + "\n" + "-" * len(cols) + "\n"
    for row in r["rows"]:
        path = "  " * (row["depth"] - 1) + row["path"]
        kernel = "x".join(map(str, row["kernel"])) if isinstance(row["kernel"], list) else (row["kernel"] or "-")
        text += (f"{path[:33]:<34}{row['type'][:25]:<26}{_shape(row['out_shape']):>22}{row['params']:>13,}"
                 f"{str(kernel):>9}{row['macs']:>17,}\n")
    text += "-" * len(cols) + "\n"
    text += f"Total parameters: {r['params']:,} ({r['params'] / 1e6:.3f} M), each counted once\n"
    text += f"  of which {unused_params(cost)}\n" if unused_params(cost) else ""
    text += (f"Total MACs: {cost['macs']:,} ({cost['macs'] / 1e9:.3f} GMACs)   "
             f"FLOPs (= 2 x MACs): {cost['flops'] / 1e9:.3f} G\n")
    text += "MACs count convolutions and matrix products (torch.utils.flop_counter formulas); not counted: "
    text += ", ".join(cost["uncounted_ops"]) + "\n"
    text += (f"Parameter memory: {cost['param_mib']:.2f} MiB   "
             f"Feature memory (convnet-burden): {cost['feature_mib']:.2f} MiB\n")
    return text


def phase_table(rows: list[tuple[str, dict, float | None]]) -> str:
    """Rows of (phase, stats, achieved TFLOP/s or None): one line per phase."""
    cols = (f"{'phase':<11}{'median ms':>12}{'mean ms':>12}{'std ms':>10}{'p90 ms':>12}{'min ms':>12}{'max ms':>12}"
            f"{'images/s':>10}{'TFLOP/s':>9}")
    text = cols + "\n" + "-" * len(cols) + "\n"
    for name, s, tflops in rows:
        text += (f"{name:<11}{s['median_ms']:>12.3f}{s['mean_ms']:>12.3f}{s['std_ms']:>10.3f}{s['p90_ms']:>12.3f}"
                 f"{s['min_ms']:>12.3f}{s['max_ms']:>12.3f}{s['fps']:>10.2f}"
                 f"{(f'{tflops:.3f}' if tflops is not None else '-'):>9}" + ("  NOISY" if s["noisy"] else "") + "\n")
    return text


def train_txt(rec: dict) -> str:
    """A training-step record: phases (and units with --layers), memory, settings."""
    r = rec["result"]
    t, inf = r["train"], r["inference"]
    per_unit = "units" in r
    text = header("Training step per unit" if per_unit else "Training step, whole model", rec)
    text += (f"# clock: {t['forward']['clock']}   warm-up: {t['forward']['warmup']}   training steps: "
             f"{t['forward']['iters']} of {t['forward']['requested_iters']}   inference iterations: {inf['iters']}"
             + ("   (stopped early by --max-seconds)" if t["forward"]["stopped_early"] else "") + "\n")
    text += (f"# train mode; loss: {r['loss']} (inside forward); gradients cleared before each step, untimed\n"
             f"# optimizer: {r['optimizer'] or 'none (not run: parameters untouched)'}\n")
    text += "# inference: eval() + inference_mode on the same instance, after the training steps\n\n"
    fl = r["flops"]
    rows = [(p, t[p]["stats"], t[p].get("achieved_tflops")) for p in ("forward", "backward", "total", "optimizer")
            if p in t]
    rows.append(("inference", inf["stats"], fl["forward"] / (inf["stats"]["median_ms"] * 1e-3) / 1e12))
    text += phase_table(rows)
    text += (f"FLOPs per step: forward {fl['forward'] / 1e9:.2f} G, backward {fl['backward'] / 1e9:.2f} G "
             "(the loss included; TFLOP/s = FLOPs / median)\n")
    if r.get("train_peak") or r.get("inference_peak"):
        tp, ip = r.get("train_peak") or {}, r.get("inference_peak") or {}
        text += (f"Peak memory above resident: training step {_mib(tp.get('peak_train_step_mib'))}, "
                 f"inference {_mib(ip.get('peak_inference_mib'))}\n  measured as: {tp.get('method', '-')}\n")
    if per_unit:
        cols = (f"{'unit':<16}{'module (type)':<44}{'output':>20}{'fwd ms':>10}{'bwd ms':>10}{'total ms':>10}"
                f"{'bwd share':>10}")
        text += "\n" + cols + "\n" + "-" * len(cols) + "\n"
        bwd_sum = sum(u["backward"]["stats"]["median_ms"] for u in r["units"])
        for u in r["units"]:
            f, b = u["stats"]["median_ms"], u["backward"]["stats"]["median_ms"]
            module = f"{u['path'] or u['note']} ({u['type']})"
            text += (f"{u['label']:<16}{module[:43]:<44}{_shape(u['out_shape']):>20}{f:>10.3f}{b:>10.3f}"
                     f"{f + b:>10.3f}{b / bwd_sum if bwd_sum else 0:>10.1%}\n")
        c = r["coverage"]
        text += (f"\nMedians. Coverage (sum of unit means / whole pass mean, same run): forward {c['forward']:.3f}, "
                 f"backward {c['backward']:.3f}. Units' backward spans run from the moment the gradient of\n"
                 "the unit's output is complete to the moment the gradient of its input is (tensor hooks; one\n"
                 "device synchronize per step). The loss's own backward belongs to no unit.\n")
    return text


def _mib(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} MiB"


def layerbench_txt(rec: dict) -> str:
    spec, env, r = rec["request"], rec["env"], rec["result"]
    text = "\n".join([
        f"# Single-layer benchmarks, set {spec['layer_set']} (seed 004): forward, backward, total",
        f"# device: {env['device_name']} [{spec['device']}]" + (f"   driver: {env['driver']}" if env.get("driver") else ""),
        f"# host CPU: {env['host_cpu']}   threads: {env['threads']}",
        (f"# torch {env['torch']}   CUDA {env['cuda']}   cuDNN {env['cudnn']}   python {env['python']}"
         if env.get("device_type") == "cuda" else f"# torch {env['torch']}   python {env['python']}"),
        f"# precision: {spec['precision']}" + ("   backend flags: " + "  ".join(
            f"{k}={v}" for k, v in r["backend_flags"].items()) if env.get("device_type") == "cuda" else ""),
        f"# clock: {spec['clock']}   warm-up: {spec['warmup']}   iterations: up to {spec['iters']}"
        + (f", at most {spec['max_seconds']:g} s per layer (at least {spec['min_iters']})" if spec["max_seconds"] else ""),
        "# each layer in train mode; backward from a fixed all-ones output gradient, input gradient included;",
        "# gradients cleared before each step, untimed. Medians. FLOPs: torch.utils.flop_counter (pooling and",
        "# batch norm have no formula: 0). Bytes: every tensor read or written once (a lower bound).",
        f"# date: {env['date']}",
    ]) + "\n\n"
    cols = (f"{'layer':<15}{'module':<44}{'input':>18}{'fwd ms':>10}{'bwd ms':>10}{'total ms':>10}"
            f"{'fwd TFLOP/s':>12}{'bwd TFLOP/s':>12}{'fwd GB/s':>10}{'bwd GB/s':>10}{'iters':>7}")
    text += cols + "\n" + "-" * len(cols) + "\n"
    for row in r["rows"]:
        f, b, t = row["forward"], row["backward"], row["total"]
        text += (f"{row['layer']:<15}{row['module'][:43]:<44}{_shape(row['input_shape']):>18}"
                 f"{f['stats']['median_ms']:>10.4f}{b['stats']['median_ms']:>10.4f}{t['stats']['median_ms']:>10.4f}"
                 f"{f['achieved_tflops']:>12.3f}{b['achieved_tflops']:>12.3f}{f['achieved_gbs']:>10.1f}"
                 f"{b['achieved_gbs']:>10.1f}{f['iters']:>7}"
                 + ("  NOISY" if t["stats"]["noisy"] else "") + "\n")
    return text


FORMATTERS: dict[str, Callable[[dict], str]] = {
    "timing": timing_txt, "layers": layers_txt, "train-timing": train_txt, "train-layers": train_txt,
    "memory": memory_txt, "structure": structure_txt, "layer-bench": layerbench_txt}
