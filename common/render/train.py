"""Seed 004's tables from the records: training steps (Model | Forward | Backward
| Total | Inference) and single layers (Layer | Forward | Backward | Total), per
device, with seed 004's PyTorch figures beside them. Called by ``common.render.tables``."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from common import registry
from common.render.tables import MISSING, PRESETS, _num, _utc, md_table

SEED004_ORDER = list(registry.SEED004)


def newest(recs: list[dict]) -> tuple[dict, dict]:
    """Default-mode training-step records per (device folder, model, input tag) and
    layer-set records per (device folder, set), the newest of each."""
    train: dict[tuple[str, str, str], dict] = {}
    layers: dict[tuple[str, str], dict] = {}
    for rec in recs:
        spec = rec["spec"]
        tag = Path(rec["_path"]).parent.parent.name
        if rec["kind"] == "train-timing" and spec["variant"] == "" and not rec["result"]["with_optimizer"]:
            key, table = (tag, spec["model"], _input_tag(spec)), train
        elif rec["kind"] == "layer-bench" and spec["variant"] == "":
            key, table = (tag, spec["set"]), layers
        else:
            continue
        if key not in table or _utc(rec["env"]["date"]) > _utc(table[key]["env"]["date"]):
            table[key] = rec
    return train, layers


def _input_tag(spec: dict) -> str:
    i = spec["input"]
    return i["name"] if i["batch"] == 1 else f"{i['name']}_b{i['batch']}"


def _seed_input(model: str) -> str:
    return f"imagenet_b{registry.SEED004[model]}"


def _device_name(rec: dict) -> str:
    return rec["env"]["device_name"]


def _ms(phase: dict | None) -> float | None:
    return None if phase is None else phase["stats"]["mean_ms"]


def _peak(r: dict, key: str, field: str) -> float | None:
    return (r.get(key) or {}).get(field)


def _day(rec: dict) -> str:
    return _utc(rec["env"]["date"]).astimezone(dt.timezone.utc).strftime("%Y-%m-%d")


def model_table(train: dict, tag: str, seed: dict) -> str:
    """Seed 004's inputs: ours beside the seed's device of the same type."""
    ours_type = next(r["env"]["device_type"] for (t, *_), r in train.items() if t == tag)
    sid = next((k for k, d in seed["devices"].items() if d["type"] == ours_type), None)
    ref = {r["model"]: r for r in seed["models"] if r["device"] == sid}
    short = seed["devices"][sid]["short"] if sid else "seed"
    headers = ["Model", "Batch", "Forward (ms)", "Backward (ms)", "Total (ms)", "Inference (ms)",
               f"Total (ms) [{short}, seed]", f"Inference (ms) [{short}, seed]",
               f"Speed-up total (x) [vs {short}]", "Peak train step (MiB)", "Peak inference (MiB)", "Steps",
               "Measured"]
    rows = []
    for model in SEED004_ORDER:
        rec = train.get((tag, model, _seed_input(model)))
        s = ref.get(model, {})
        if rec is None and not s:
            continue
        r = rec["result"] if rec else {}
        total = _ms(r.get("train", {}).get("total"))
        rows.append([
            f"**{registry.get(model).display}**", str(registry.SEED004[model]),
            _num(_ms(r.get("train", {}).get("forward")), ".2f"), _num(_ms(r.get("train", {}).get("backward")), ".2f"),
            _num(total, ".2f"), _num(_ms(r.get("inference")), ".2f"),
            _num(s.get("total_ms"), ".1f"), _num(s.get("inference_ms"), ".1f"),
            _num(s["total_ms"] / total if total and s.get("total_ms") else None, ".2f"),
            _num(_peak(r, "train_peak", "peak_train_step_mib"), ".0f"),
            _num(_peak(r, "inference_peak", "peak_inference_mib"), ".0f"),
            str(r["train"]["total"]["iters"]) if rec else MISSING, _day(rec) if rec else MISSING,
        ])
    return md_table(headers, rows, numeric_from=1)


def preset_table(train: dict, tag: str) -> str:
    """Our two presets at batch 1 (no seed figures exist for them)."""
    headers = ["Model", "Input", "Forward (ms)", "Backward (ms)", "Total (ms)", "Inference (ms)",
               "Total TFLOP/s", "Peak train step (MiB)", "Peak inference (MiB)", "Steps"]
    rows = []
    for model in SEED004_ORDER:
        for preset in PRESETS:
            rec = train.get((tag, model, preset))
            if rec is None:
                continue
            r, t = rec["result"], rec["result"]["train"]
            rows.append([f"**{registry.get(model).display}**", preset, _num(_ms(t["forward"]), ".2f"),
                         _num(_ms(t["backward"]), ".2f"), _num(_ms(t["total"]), ".2f"),
                         _num(_ms(r["inference"]), ".2f"), _num(t["total"].get("achieved_tflops"), ".2f"),
                         _num(_peak(r, "train_peak", "peak_train_step_mib"), ".0f"),
                         _num(_peak(r, "inference_peak", "peak_inference_mib"), ".0f"), str(t["total"]["iters"])])
    return md_table(headers, rows, numeric_from=2) if rows else ""


def layer_table(rec: dict, seed: dict) -> str:
    ours_type = rec["env"]["device_type"]
    sid = next((k for k, d in seed["devices"].items() if d["type"] == ours_type), None)
    with_seed = rec["spec"]["set"] == "seed004"
    ref = {r["layer"]: r for r in seed["layers"] if r["device"] == sid} if with_seed else {}
    short = seed["devices"][sid]["short"] if sid else "seed"
    headers = ["Layer", "Input", "Forward (ms)", "Backward (ms)", "Total (ms)", "Forward TFLOP/s",
               "Backward TFLOP/s", "Forward GB/s", "Backward GB/s"]
    if ref:
        headers += [f"Total (ms) [{short}, seed]", f"Speed-up total (x) [vs {short}]"]
    rows = []
    for row in rec["result"]["rows"]:
        f, b, t = row["forward"], row["backward"], row["total"]
        cells = [f"**{row['layer']}**", "x".join(map(str, row["input_shape"])), _num(_ms(f), ".4f"),
                 _num(_ms(b), ".4f"), _num(_ms(t), ".4f"),
                 _num(f["achieved_tflops"] if f["flops"] else None, ".3f"),
                 _num(b["achieved_tflops"] if b["flops"] else None, ".3f"),
                 _num(f["achieved_gbs"], ".1f"), _num(b["achieved_gbs"], ".1f")]
        if ref:
            s = ref.get(row["layer"], {}).get("total_ms")
            cells += [_num(s, ".4f"), _num(s / _ms(t) if s else None, ".2f")]
        rows.append(cells)
    return md_table(headers, rows, numeric_from=2)


def section(recs: list[dict], seed: dict | None) -> str:
    """The whole seed-004 section; empty when no training or layer record exists."""
    train, layers = newest(recs)
    if not (train or layers) or seed is None:
        return ""
    src = f"seed 004 (`{seed['source']}`, {seed['document']})"
    out = [f"### Training step and single layers (seed 004)\n\nMean time of a training step's forward (model + "
           "cross-entropy loss), backward, and their total in the same step (its own statistics), with "
           "inference (eval + inference_mode) beside them; train mode, no optimizer step, gradients cleared "
           f"untimed. Seed figures: {src}; its inputs: {seed['inputs']}. Speed-up = seed mean / our mean. "
           "Peak memory = allocator peak (GPU) or peak RSS growth (CPU) above what was resident.\n"]
    for tag in sorted({k[0] for k in train} | {k[0] for k in layers}):
        any_rec = next(r for k, r in list(train.items()) + list(layers.items()) if k[0] == tag)
        out.append(f"#### {_device_name(any_rec)}\n")
        if any(k[0] == tag for k in train):
            out.append(f"Seed 004's inputs:\n\n{model_table(train, tag, seed)}")
            presets = preset_table(train, tag)
            if presets:
                out.append(f"Our presets, batch 1:\n\n{presets}")
        for set_name in ("seed004", "large"):
            rec = layers.get((tag, set_name))
            if rec:
                what = ("seed 004's shapes" if set_name == "seed004"
                        else "the large set (batch 8, 64 channels; Dense 4096->4096 at batch 256)")
                out.append(f"Single layers, {what}, mean ms (TFLOP/s: pooling and batch norm have no FLOP "
                           f"formula; GB/s counts each tensor once):\n\n{layer_table(rec, seed)}")
    return "\n".join(out)
