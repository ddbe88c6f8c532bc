"""The burden outputs, rendered from the burden records only: ``results/burden.md``
(the table of every recorded model, convnet-burden's figures beside ours),
``results/burden/<stem>.md`` (one report per model) and ``results/burden/figs/<stem>.png``.

    outputs(results)        {path: markdown} of every burden markdown file
    figures(results)        {path: PNG bytes} of every model's profile figure
    write(results, ...)     writes both (atomically)
"""
from __future__ import annotations

import io
from pathlib import Path

from common import records
from common.burden import fmt, store
from common.burden.fmt import ROOT_LABEL, describe
from common.burden.seed003 import compare, library, seed_of
from common.catalogue import GROUPS, TIMM_MODELS
from common.derive import MIB
from common.render.markdown import SUPERSEDED, md_table, superseded_note

SECTIONS = (("classification", "Image Classification Architectures (torchvision)"),
            ("timm", "timm models (convnet-burden's SE-Nets and MobileNet, the project's Xception)"),
            ("detection", "Object Detection Architectures (torchvision)"),
            ("segmentation", "Semantic Segmentation Architectures (torchvision)"))
CONVENTIONS = [
    "The numbers below are for single-element batches. Units: MiB = 2^20 bytes; "
    "K/M/G/T = 10^3/10^6/10^9/10^12.", "",
    "* **param mem**: parameters x 4 bytes (float32); buffers (batch-norm statistics) are not included.",
    "* **feat. mem**: convnet-burden's convention: every intermediate output counted once at 4 bytes, no "
    "memory reuse, in-place ops (ReLU, `+=`) and views add nothing, the input image not counted. "
    "A rough guide to how big the activations are, not a footprint.",
    "* **MACs / FLOPs**: from PyTorch's own formulas (`torch.utils.flop_counter`: convolutions, matrix "
    "products, attention); FLOPs = 2 x MACs. Batch norm, activations, pooling, element-wise ops, "
    "interpolation, NMS... have no formula and are not counted; each model's report names them.",
    "* **peak held (CPU)**: measured, not estimated: the most memory PyTorch's CPU allocator held at once "
    "during one inference beyond the resident parameters, buffers and input (torch.profiler memory "
    "events, batch 1, random weights, in a separate worker process). Runs above the machine's limits "
    "(`--peak-max-gmacs`, `--peak-max-mib`) are not made and the cell says so.",
    "* **convnet-burden**: its param mem / feat. mem / 'flops'. Its 'flops' count a fused multiply-add as "
    "one operation, so they are compared with our **MACs** (it also adds bias adds, ReLUs and pooling, "
    "a few % more). Its figures are printed rounded to whole units ('2 GFLOPs' is 1.5-2.5 G). "
    "Δ = (ours - its) / its, ours computed at its input size; † marks a difference over 10%, "
    "explained in [Differences](#differences-over-10-from-convnet-burden).",
    "* Detection models cannot run on the meta device (`nonzero`, NMS): they are run for real on the "
    "CPU; their RPN/ROI and post-processing costs are those of one random-weight model on a `torch.rand` "
    "image (seeded).", ""]


def peak_text(peak: dict | None) -> str:
    if not peak:
        return "not measured"
    if peak.get("status") == "measured":
        return fmt.mib(peak["peak_bytes"])
    if peak.get("status") == "failed":
        return f"failed: {peak.get('reason', '')}"
    return f"not measured: {peak.get('reason', peak.get('status'))}"


def _seed_text(e: dict) -> str:
    s = seed_of(e)["printed"]
    return f"{s['param_mem']} / {s['feat_mem']} / {s['flops']}"


def _model_head(e: dict) -> list[str]:
    name, b = e["model"], e["base"]
    lines = [f"### Report for {name}", ""]
    if e.get("superseded"):
        lines += [f"{SUPERSEDED}: {e['superseded']}", ""]
    lines.append(f"{library(e)} `{name}` ({e['group']}), random weights, `eval()`. {b['build'].capitalize()}; "
                 + ("analysed on the meta device (no memory, no compute)." if b["device"] == "meta" else
                    f"analysed in a real CPU run (the forward cannot run on meta: {b['meta_failure']})."))
    lines += ["", f"Model params: {b['params']:,} ({fmt.mib(b['param_bytes'])} as float32"
              + (f"; buffers {fmt.mib(b['buffer_bytes'])} more" if b["buffer_bytes"] else "") + ")"]
    uncalled = [r for r in e["layers"]["rows"] if r[0] is None and r[4]]
    if uncalled:
        n = sum(r[4] for r in uncalled)
        names = ", ".join(f"`{r[1]}`" for r in uncalled[:6]) + (f" and {len(uncalled) - 6} more" if len(uncalled) > 6 else "")
        lines.append(f"(of which {n:,}, {fmt.mib(4 * n)}, belong to modules this forward never calls: {names}; "
                     "auxiliary heads not run in eval, or weights that their parent module uses directly)")
    seed_conv = b["feature_bytes_seed_convention"]
    unc = ", ".join(f"`{k}` ({v})" for k, v in b["uncounted_ops"].items()) or "none"
    lines += ["", f"Estimates for a single full pass of the model at input size {fmt.size(b['size'])} "
              f"({e['size_note']}), batch 1:", "",
              f"* Memory required for features: {fmt.mib(b['feature_bytes'])} (convnet-burden's convention: "
              "every op output once, 4 bytes per value, no reuse, in-place ops add nothing)"
              + (f"; {fmt.mib(seed_conv)} if in-place sums are stored as new features, as convnet-burden does"
                 if seed_conv != b["feature_bytes"] else ""),
              f"* Peak memory held by PyTorch during inference (CPU, measured): {peak_text(e.get('peak'))}",
              f"* MACs: {fmt.si(b['macs'])}; FLOPs: {fmt.si(b['flops'])} (FLOPs = 2 x MACs)",
              f"* Operators without a FLOP formula (not counted; calls): {unc}"]
    cmp = compare(e)
    if cmp:
        c = e["compare"]
        lines.append(f"* convnet-burden (seed 003), `{c['seed_model']}` at {fmt.size(c['size'])}"
                     f"{' (a variant of this model)' if c['relation'] == 'variant' else ''}: {_seed_text(e)} "
                     f"(its 'flops' are MACs); ours at {fmt.size(c['size'])}: {fmt.mib(c['param_bytes'])} / "
                     f"{fmt.mib(c['feature_bytes'])} / {fmt.si(c['macs'])} MACs")
        lines += [f"  * {i['label']} {fmt.signed(i['pct'])}: {i['why']}" for i in cmp if i["why"]]
    return lines + [""]


def model_report(e: dict) -> str:
    name = e["model"]
    if e["status"] != "ok":
        f = e["failure"]
        return f"### Report for {name}\n\nNot covered: the {f['stage']} step failed.\n\nReason: {f['reason']}\n"
    b, sw = e["base"], e["sweep"]
    lines = _model_head(e)
    trunk = sw.get("trunk")
    lines.append(f"Estimates of the burden of a whole forward pass at different input sizes, batch {sw['batch']}"
                 + (f" (feature size: the output of `{trunk}`)" if trunk else "") + ":")
    if sw.get("note"):
        lines += ["", f"Note: {sw['note']}."]
    rows = []
    for r in sw["rows"]:
        if r["status"] == "ok":
            rows.append([fmt.size(r["size"]) + (f" ({r['note']})" if r.get("note") else ""),
                         describe(r.get("trunk_out")), fmt.mem(r["feature_bytes"]), fmt.si(r["macs"]),
                         fmt.si(r["flops"])])
        else:
            rows.append([fmt.size(r["size"]), f"{r['status']}: {r['reason']}", "-", "-", "-"])
    lines += ["", md_table(["input size", "feature size", "feature memory", "MACs", "FLOPs"], rows, 2)]
    lines += ["A rough outline of where in the network memory is allocated to parameters and features and "
              "where the greatest computational cost lies (self cost of each module, in execution order, "
              "left to right):", "", f"![{name} profile](figs/{e['stem']}.png)", ""]
    layers = e["layers"]["rows"]
    lines += [f"Per-layer breakdown at {fmt.size(b['size'])}, batch 1: each module's self cost (ops charged to the "
              "innermost module running them; a container's row holds only the ops of its own `forward`, "
              f"e.g. concatenations; `{ROOT_LABEL}` is the model's own `forward`). Modules without parameters, "
              "features or FLOPs (in-place ReLUs, pure containers) are left out; the rows add up to the totals.", ""]
    rows = [["-" if order is None else str(n), f"`{path}`" + (" (not called)" if order is None else ""), kind,
             outp, f"{params:,}", f"{params * 4 / MIB:.3f}", f"{feat / MIB:.3f}", fmt.si(flops // 2), fmt.si(flops)]
            for n, (order, path, kind, outp, params, feat, flops) in enumerate(layers, 1)]
    tp, tf, tfl = (sum(r[i] for r in layers) for i in (4, 5, 6))
    rows.append(["", "**total**", "", "", f"{tp:,}", f"{tp * 4 / MIB:.3f}", f"{tf / MIB:.3f}", fmt.si(tfl // 2),
                 fmt.si(tfl)])
    lines.append(md_table(["#", "module", "type", "output shape", "params", "param mem (MiB)", "feat. mem (MiB)",
                           "MACs", "FLOPs"], rows, 4))
    return "\n".join(lines)


def _published_why(e: dict, param_off: bool, macs_off: bool) -> str:
    pub, b, g = e["published"], e["base"], e["group"]
    why = []
    if param_off and e["model"] == "googlenet":
        aux = sum(r[4] for r in e["layers"]["rows"] if r[1].startswith("aux"))
        why.append(f"built without weights GoogLeNet keeps its auxiliary classifiers (`aux1`, `aux2`: {aux:,} "
                   f"params, not run in eval), which torchvision's pretrained model drops: without them "
                   f"{b['params'] - aux:,}")
    if g == "segmentation":
        why.append("torchvision's figures include the auxiliary FCN head (`aux_loss=True`, which its pretrained "
                   "weights switch on, used in training only); built without weights the model has none")
    if macs_off and g == "detection":
        why.append("torchvision does not say at which input size or over which parts its detection figures are "
                   "counted (its maskrcnn figure equals fasterrcnn's: the mask head is left out); ours are at "
                   f"{fmt.size(b['size'])} and count everything the forward runs, RoI heads on the proposals kept "
                   "and, for Mask/Keypoint R-CNN, the mask/keypoint heads on the detections")
    if macs_off and not why and pub.get("gops") is not None and abs(b["macs"] / 1e9 - pub["gops"]) < 0.0005:
        why.append("torchvision prints its figure with 3 decimals")
    return "; ".join(why) or "not explained"


def crosscheck(ok: list[dict]) -> list[str]:
    """Our parameters and MACs against torchvision's published ``num_params`` and ``_ops``."""
    rows = [e for e in ok if e.get("published") and e["published"].get("num_params")
            and not e["request"].get("size")]
    if not rows:
        return []
    off = []
    for e in rows:
        pub, b = e["published"], e["base"]
        p_off = abs(fmt.pct(b["params"], pub["num_params"])) > 0.5
        m_off = pub.get("gops") is None or abs(fmt.pct(b["macs"] / 1e9, pub["gops"])) > 1
        if p_off or m_off:
            off.append((e, p_off, m_off))
    L = ["### Cross-check with torchvision's published figures", "",
         "torchvision publishes, with each model's default weights, its parameter count (`num_params`) and its "
         "cost (`_ops`, documented as GFLOPS but counted in multiply-adds: resnet50's is 4.09). "
         f"Ours agree within 0.5% (parameters) and 1% (MACs) for {len(rows) - len(off)} of the {len(rows)} "
         "torchvision models; the others:", ""]
    cells = []
    for e, p_off, m_off in off:
        pub, b = e["published"], e["base"]
        gops = "-" if pub.get("gops") is None else f"{pub['gops']:g} G"
        cells.append([e["model"], f"{pub['num_params']:,} / {gops}",
                      f"{b['params']:,} / {fmt.si(b['macs'])} ({fmt.signed(fmt.pct(b['params'], pub['num_params']))} / "
                      f"{'-' if pub.get('gops') is None else fmt.signed(fmt.pct(b['macs'] / 1e9, pub['gops']))})",
                      _published_why(e, p_off, m_off)])
    L.append(md_table(["model", "torchvision: params / `_ops`", "ours: params / MACs", "why"], cells, 4))
    if any(e["group"] == "detection" for e in rows):
        L += ["Detection models built without weights have `BatchNorm2d` (trainable) in their backbone where the "
              "pretrained ones have `FrozenBatchNorm2d` (buffers): their parameter counts are about 0.1% higher.", ""]
    return L


def _order_key(e: dict) -> tuple:
    """Group order, then the group's own order: timm's as listed, torchvision's by name
    (``torchvision.models.list_models`` sorts), then the stem."""
    g = e.get("group") or "zz"
    gi = GROUPS.index(g) if g in GROUPS else len(GROUPS)
    if g == "timm":
        return gi, TIMM_MODELS.index(e["model"]) if e["model"] in TIMM_MODELS else 10**6, "", e["stem"]
    return gi, 0, e["model"] if g in GROUPS else "", e["stem"]


def _table_row(e: dict) -> list[str]:
    b, c = e["base"], e.get("compare")
    seed_cell, delta = "", ""
    cmp = compare(e)
    if cmp:
        seed_cell = (f"{c['seed_model']}{' (variant)' if c['relation'] == 'variant' else ''}"
                     f"{'' if list(c['size']) == list(b['size']) else ' @ ' + fmt.size(c['size'])}: {_seed_text(e)}")
        delta = " / ".join(fmt.signed(i["pct"]) + ("†" if i["why"] else "") for i in cmp)
    elif c and c.get("failure"):
        seed_cell = f"{c['seed_model']}: ours failed at its size ({c['failure']})"
    model = (f"[{e['model']}](burden/{e['stem']}.md){'' if b['device'] == 'meta' else ' ‡'}"
             f"{' ' + SUPERSEDED if e.get('superseded') else ''}")
    return [model, fmt.size(b["size"]), fmt.mib(b["param_bytes"]), fmt.mib(b["feature_bytes"]), fmt.si(b["macs"]),
            fmt.si(b["flops"]), peak_text(e.get("peak")), seed_cell, delta]


def _differences(ok: list[dict]) -> list[str]:
    L = ["### Differences over 10% from convnet-burden", ""]
    diffs = [(e, i) for e in ok for i in (compare(e) or []) if i["why"]]
    if not diffs:
        L.append("None.")
    for e, i in diffs:
        c = e["compare"]
        L.append(f"* **{e['model']}** vs `{c['seed_model']}`{' (a variant)' if c['relation'] == 'variant' else ''}, "
                 f"{i['label']} {fmt.signed(i['pct'])} ({fmt.num(i['ours'])} vs {fmt.num(i['seed'])}): {i['why']}")
    return L + [""]


def _uncounted(ok: list[dict]) -> list[str]:
    L = ["### Operators not counted in FLOPs", "",
         "Ops with no formula in `torch.utils.flop_counter` (name: models that run it). Views and `empty` are "
         "not listed.", ""]
    seen: dict[str, list[str]] = {}
    for e in ok:
        for op in e["base"]["uncounted_ops"]:
            seen.setdefault(op, []).append(e["model"])
    for op in sorted(seen, key=lambda o: (-len(seen[o]), o)):
        names = seen[op]
        L.append(f"* `{op}`: {', '.join(names) if len(names) <= 6 else f'{len(names)} models'}")
    return L + [""]


def _not_covered(ok: list[dict], failed: list[dict]) -> list[str]:
    skipped = [(e, r) for e in ok for r in e["sweep"]["rows"] if r["status"] in ("failed", "skipped")]
    L = ["### Not covered", "", "Models that could not be built or traced:", ""]
    L += [f"* **{e['model']}** ({e.get('group', '?')}): {e['failure']['stage']} failed: {e['failure']['reason']}"
          for e in failed] or ["* none"]
    L += ["", f"Input sizes of the per-model sweeps not covered ({len(skipped)}; n/a sizes of fixed-size models "
          "not counted): see each model's report. By model:", ""]
    by_model: dict[str, list[str]] = {}
    for e, r in skipped:
        by_model.setdefault(e["model"], []).append(f"{fmt.size(r['size'])} ({r['status']})")
    L += [f"* {name}: {', '.join(items)}" for name, items in by_model.items()] or ["* none"]
    return L + [""]


def table(entries: list[dict], run: dict | None = None) -> str:
    """burden.md: every recorded model, by group, with convnet-burden's figures beside ours."""
    entries = sorted(entries, key=_order_key)
    ok = [e for e in entries if e["status"] == "ok"]
    failed = [e for e in entries if e["status"] != "ok"]
    env = (ok or entries or [{}])[0].get("env", {})
    L = ["# Model-zoo burden: parameter memory, feature memory and FLOPs", "",
         "Generated by `python -m common.render` (also `python -m common burden`, `burden_profiler/burden.sh`) "
         "from the records in `records/any/burden/*.json`; do not edit by hand. Layout and conventions follow "
         "convnet-burden (seed 003, [albanie/convnet-burden](https://github.com/albanie/convnet-burden)); its "
         "published figures (`reference/convnet_burden.json`) stand beside ours where it has the model.", ""]
    if env:
        L.append(f"Software: torch {env.get('torch')}, torchvision {env.get('torchvision')}, timm {env.get('timm')}; "
                 f"host CPU {env.get('host_cpu')} ({env.get('cpu_count')} cores).")
    if run:
        r = run["result"]
        L.append(f"Last full run (`--models all`): {run['env']['date']}, {r['models']} models in "
                 f"{r['minutes']:.1f} min on this host ({r.get('settings', '')}).")
    L += [f"{len(ok)} models covered, {len(failed)} not covered (listed below with the reason).", "", *CONVENTIONS]
    headers = ["model", "input size", "param mem", "feat. mem", "MACs", "FLOPs", "peak held (CPU)", "convnet-burden",
               "Δ param / feat. / MACs"]
    for group, title in SECTIONS:
        rows = [e for e in ok if e.get("group") == group]
        if not rows:
            continue
        L += [f"### {title}", "", md_table(headers, [_table_row(e) for e in rows], 9).rstrip("\n")]
        if any(e["base"]["device"] != "meta" for e in rows):
            L += ["", "‡ analysed in a real CPU run: the forward cannot run on the meta device."]
        L.append("")
    note = superseded_note({e["stem"]: e["superseded"] for e in entries if e.get("superseded")})
    L += ([note.strip(), ""] if note else []) + _differences(ok) + crosscheck(ok) + _uncounted(ok)
    return "\n".join(L + _not_covered(ok, failed))


def outputs(results: Path) -> dict[Path, str]:
    """Every burden markdown file under ``results`` -> its content, from the records only."""
    results = Path(results)
    entries, run, _ = store.load(results)
    out = {results / "burden" / f"{e['stem']}.md": model_report(e) for e in entries}
    out[results / "burden.md"] = table(entries, run)
    return out


def figure(e: dict) -> bytes:
    """Parameter memory, feature memory and FLOPs of each layer (self cost), in
    execution order: convnet-burden's profile figure, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in e["layers"]["rows"] if r[0] is not None]
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    for ax, ys, color, title, unit in (
            (axes[0], [r[4] * 4 / MIB for r in rows], "tab:blue", "Parameter memory profile", "MiB (float32)"),
            (axes[1], [r[5] / MIB for r in rows], "tab:red", "Feature memory profile", "MiB"),
            (axes[2], [r[6] / 1e9 for r in rows], "tab:purple", "FLOPs profile (FLOPs = 2 x MACs)", "GFLOPs")):
        ax.bar(range(len(rows)), ys, width=1.0, color=color, alpha=0.6, edgecolor="none")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.set_xticks([])
    axes[2].set_xlabel(f"depth (modules in execution order; {len(rows)} with a cost)")
    fig.suptitle(f"{e['model']} at {fmt.size(e['base']['size'])}, batch 1", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def figures(results: Path, only: list[str] | None = None) -> dict[Path, bytes]:
    """Every covered model's profile figure (``only``: these stems) -> its PNG bytes."""
    entries, _, _ = store.load(Path(results))
    return {Path(results) / "burden" / "figs" / f"{e['stem']}.png": figure(e) for e in entries
            if e["status"] == "ok" and (only is None or e["stem"] in only)}


def write_figures(results: Path, only: list[str] | None = None) -> list[Path]:
    return _write(figures(results, only))


def _write(files: dict[Path, str | bytes]) -> list[Path]:
    for folder in {path.parent for path in files}:
        records.ensure_writable(folder)
    for path, data in files.items():
        records.write_atomic(path, data)
    return list(files)


def write(results: Path, figures: bool = True, only: list[str] | None = None) -> list[Path]:
    """burden.md, the reports (``only``: of these stems) and, with ``figures``, their figures."""
    md = {p: t for p, t in outputs(results).items() if only is None or p.name == "burden.md" or p.stem in only}
    return _write(md) + (write_figures(results, only) if figures else [])
