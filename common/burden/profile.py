"""The burden of one zoo model, as the ``result`` of its record: the figures at its
typical size (per layer), convnet-burden's input size where that differs, a sweep of
input sizes, and the measured CPU peak (submitted to the worker of ``peak_held``).

Failures are recorded in the result (``status``, ``failure``), never raised: one
model's failure never stops a run of many.
"""
from __future__ import annotations

import gc

from torch import nn

from common.derive import MIB
from common.burden import analysis
from common.burden.analysis import Pass, run_pass
from common.burden.peak_held import PeakRunner
from common.burden.request import DEVICE_TAG, KIND, RUN_KIND, SEED_BATCH, SEED_SCALES, BurdenRequest  # noqa: F401
from common.burden.seed003 import COMPARE, seed_row
from common.registry import zoo

def profile_model(req: BurdenRequest, peaks: PeakRunner | None) -> dict:
    """Every figure of one model; failures are recorded in the entry, never raised."""
    name = req.model
    entry: dict = {"status": "ok", "failure": None}
    try:
        spec = zoo.resolve(name)
    except Exception as exc:  # noqa: BLE001
        return {**entry, "status": "failed", "failure": {"stage": "resolve", "reason": zoo.oneline(exc)}}
    size = req.size or spec.size
    entry.update(group=spec.group, source=spec.source, size_note=spec.size_note if not req.size else "--size",
                 published=zoo.published(spec))
    # Build, then analyse at the typical size (batch 1, per layer): meta first, real CPU if meta fails.
    try:
        model, build_note = zoo.build(spec, size, "meta")
    except Exception as exc:  # noqa: BLE001
        return {**entry, "status": "failed", "failure": {"stage": "build", "reason": zoo.oneline(exc)}}
    device, meta_reason, cpu_model = "meta", None, None
    try:
        base = run_pass(model, size, 1, "meta", per_layer=True)
    except Exception as exc:  # noqa: BLE001 - data-dependent forward: run it for real
        meta_reason = zoo.oneline(exc, 160)
        device = "cpu"
        try:
            cpu_model, build_note = zoo.build(spec, size, "cpu")
            model = cpu_model
            base = run_pass(model, size, 1, "cpu", per_layer=True)
        except Exception as exc2:  # noqa: BLE001
            return {**entry, "status": "failed",
                    "failure": {"stage": "trace", "reason": f"meta: {meta_reason}; CPU: {zoo.oneline(exc2)}"}}
    trunk = analysis.find_trunk(model, base)
    entry["base"] = {**analysis.whole_cost(base), "build": build_note, "meta_failure": meta_reason,
                     "trunk": trunk, "trunk_out": base.outputs.get(trunk) if trunk else None}
    entry["layers"] = {"columns": analysis.LAYER_COLUMNS,
                       "rows": analysis.layer_rows(model, base)}
    # Peak memory: measured in the worker where the run is affordable.
    gmacs = base.cost.macs / 1e9
    need_mib = (base.cost.param_bytes + base.cost.buffer_bytes + base.cost.feature_bytes) / MIB
    if not req.peak or peaks is None:
        entry["peak"] = {"status": "not measured", "reason": "--no-peak"}
    elif gmacs > req.peak_max_gmacs:
        entry["peak"] = {"status": "not measured",
                         "reason": f"too slow here: {gmacs:,.0f} GMACs > --peak-max-gmacs {req.peak_max_gmacs:g}"}
    elif need_mib > req.peak_max_mib:
        entry["peak"] = {"status": "not measured",
                         "reason": f"too big here: params + features {need_mib:,.0f} MiB > --peak-max-mib "
                                   f"{req.peak_max_mib:g}"}
    else:
        entry["peak"] = {"status": "pending"}
        peaks.submit(name, size)
    # convnet-burden's row, at its input size when that differs from ours.
    seed = seed_row(name)
    entry["compare"] = None
    if seed is not None:
        seed_size = tuple(seed["input_size"])
        cmp = {"seed_model": seed["model"], "relation": COMPARE[name][1], "size": list(seed_size)}
        try:
            if seed_size == tuple(size):
                cp = base
            else:
                m2 = model if spec.size_kw is None else zoo.build(spec, seed_size, device)[0]
                cp = run_pass(m2, seed_size, 1, device, per_layer=True)
                cmp["layers"] = analysis.layer_rows(m2, cp)
            cmp.update(params=cp.cost.params, param_bytes=cp.cost.param_bytes, macs=cp.cost.macs,
                       feature_bytes=cp.cost.feature_bytes,
                       feature_bytes_seed_convention=cp.feature_bytes_seed_convention)
        except Exception as exc:  # noqa: BLE001
            cmp["failure"] = zoo.oneline(exc)
        entry["compare"] = cmp
    # Sweep of input sizes (convnet-burden: 0.5x..3x at batch 128), whole model.
    entry["sweep"] = _sweep(spec, model, size, device, base, trunk, req)
    del model, cpu_model
    gc.collect()
    return entry


def _sweep(spec: zoo.ModelSpec, model: nn.Module, size: tuple[int, int], device: str, base: Pass,
           trunk: str | None, req: BurdenRequest) -> dict:
    batch = req.batch if device == "meta" else 1
    out: dict = {"batch": batch, "device": device, "trunk": trunk, "rows": []}
    if device == "cpu":
        out["note"] = (f"real CPU runs (the forward cannot run on meta), batch 1; sizes whose run would take "
                       f"more than --real-max-seconds {req.real_max_seconds:g} s here are skipped")
    patch = getattr(model, "patch_size", None) if spec.size_kw == "image_size" else None
    for k in req.scales:
        s = (max(1, round(size[0] * k)), max(1, round(size[1] * k)))
        row: dict = {"scale": k, "size": list(s), "batch": batch}
        if isinstance(patch, int) and s[0] % patch:
            # A ViT takes whole patches only: the nearest multiple of the patch size.
            s = (max(patch, round(s[0] / patch) * patch),) * 2
            row.update(size=list(s), note=f"rounded to a multiple of the {patch}-pixel patch")
        if spec.fixed_note and s != tuple(size):
            out["rows"].append({**row, "status": "n/a", "reason": spec.fixed_note})
            continue
        if device == "cpu":
            estimate = base.seconds * (s[0] * s[1]) / (size[0] * size[1])
            if s == tuple(size) and batch == 1:
                out["rows"].append({**row, "status": "ok", **analysis.sweep_cost(base, trunk)})
                continue
            if estimate > req.real_max_seconds:
                out["rows"].append({**row, "status": "skipped",
                                    "reason": f"real CPU run estimated at {estimate:,.0f} s > --real-max-seconds "
                                              f"{req.real_max_seconds:g}"})
                continue
        try:
            m = model if spec.size_kw is None or s == tuple(size) else zoo.build(spec, s, device)[0]
            p = run_pass(m, s, batch, device, trunk=trunk)
            out["rows"].append({**row, "status": "ok", **analysis.sweep_cost(p, trunk)})
        except Exception as exc:  # noqa: BLE001 - this size fails, the others go on
            out["rows"].append({**row, "status": "failed", "reason": zoo.oneline(exc, 160)})
    return out
