"""Seed 004's tables from the records: training steps (Model | Forward | Backward
| Total | Inference) and single layers (Layer | Forward | Backward | Total), per
device, with seed 004's PyTorch figures beside them. The records come selected
and validated by ``select.collect`` (default mode and clock, newest per key)."""
from __future__ import annotations

from pathlib import Path

from common import catalogue
from common.render.markdown import MISSING, PRESETS, day, display, md_table, num, superseded_note, utc

SEED004_ORDER = list(catalogue.SEED004)


def _seed_input(model: str) -> str:
    return f"imagenet_b{catalogue.SEED004[model]}"


def _ms(phase: dict | None) -> float | None:
    return None if phase is None else phase["stats"]["mean_ms"]


def _peak(r: dict, key: str, field: str) -> float | None:
    return (r.get(key) or {}).get(field)


def _seed_device(seed: dict, device_type: str) -> tuple[str | None, str]:
    sid = next((k for k, d in seed["devices"].items() if d["type"] == device_type), None)
    return sid, seed["devices"][sid]["short"] if sid else "seed"


def _notes(recs: list[dict]) -> str:
    return superseded_note({"/".join(Path(r["_path"]).parts[-3:]): r["superseded"] for r in recs
                            if r.get("superseded")})


def model_table(train: dict, tag: str, seed: dict) -> str:
    """Seed 004's inputs: ours beside the seed's device of the same type."""
    ours_type = next(r["env"]["device_type"] for (t, *_), r in train.items() if t == tag)
    sid, short = _seed_device(seed, ours_type)
    ref = {r["model"]: r for r in seed["models"] if r["device"] == sid}
    headers = ["Model", "Batch", "Forward (ms)", "Backward (ms)", "Total (ms)", "Inference (ms)",
               f"Total (ms) [{short}, seed]", f"Inference (ms) [{short}, seed]",
               f"Speed-up total (x) [vs {short}]", "Peak train step (MiB)", "Peak inference (MiB)", "Steps",
               "Measured"]
    rows, used = [], []
    for model in SEED004_ORDER:
        rec = train.get((tag, model, _seed_input(model)))
        s = ref.get(model, {})
        if rec is None and not s:
            continue
        used += [rec] if rec else []
        r = rec["result"] if rec else {}
        t = r.get("train", {})
        total = _ms(t.get("total"))
        rows.append([
            display(model, bool(rec and rec.get("superseded"))), str(catalogue.SEED004[model]),
            num(_ms(t.get("forward")), ".2f"), num(_ms(t.get("backward")), ".2f"),
            num(total, ".2f"), num(_ms(r.get("inference")), ".2f"),
            num(s.get("total_ms"), ".1f"), num(s.get("inference_ms"), ".1f"),
            num(s["total_ms"] / total if total and s.get("total_ms") else None, ".2f"),
            num(_peak(r, "train_peak", "peak_train_step_mib"), ".0f"),
            num(_peak(r, "inference_peak", "peak_inference_mib"), ".0f"),
            str(t["total"]["iters"]) if rec else MISSING, day(utc(rec["env"]["date"])) if rec else MISSING,
        ])
    return md_table(headers, rows, numeric_from=1) + _notes(used)


def preset_table(train: dict, tag: str) -> str:
    """Our two presets at batch 1 (no seed figures exist for them)."""
    headers = ["Model", "Input", "Forward (ms)", "Backward (ms)", "Total (ms)", "Inference (ms)",
               "Total TFLOP/s", "Peak train step (MiB)", "Peak inference (MiB)", "Steps"]
    rows, used = [], []
    for model in SEED004_ORDER:
        for preset in PRESETS:
            rec = train.get((tag, model, preset))
            if rec is None:
                continue
            used.append(rec)
            r, t = rec["result"], rec["result"]["train"]
            rows.append([display(model, bool(rec.get("superseded"))), preset, num(_ms(t["forward"]), ".2f"),
                         num(_ms(t["backward"]), ".2f"), num(_ms(t["total"]), ".2f"),
                         num(_ms(r["inference"]), ".2f"), num(t["total"].get("achieved_tflops"), ".2f"),
                         num(_peak(r, "train_peak", "peak_train_step_mib"), ".0f"),
                         num(_peak(r, "inference_peak", "peak_inference_mib"), ".0f"), str(t["total"]["iters"])])
    return md_table(headers, rows, numeric_from=2) + _notes(used) if rows else ""


def layer_table(rec: dict, seed: dict) -> str:
    sid, short = _seed_device(seed, rec["env"]["device_type"])
    with_seed = rec["request"]["layer_set"] == "seed004"
    ref = {r["layer"]: r for r in seed["layers"] if r["device"] == sid} if with_seed else {}
    headers = ["Layer", "Input", "Forward (ms)", "Backward (ms)", "Total (ms)", "Forward TFLOP/s",
               "Backward TFLOP/s", "Forward GB/s", "Backward GB/s"]
    if ref:
        headers += [f"Total (ms) [{short}, seed]", f"Speed-up total (x) [vs {short}]"]
    rows = []
    for row in rec["result"]["rows"]:
        f, b, t = row["forward"], row["backward"], row["total"]
        cells = [f"**{row['layer']}**", "x".join(map(str, row["input_shape"])), num(_ms(f), ".4f"),
                 num(_ms(b), ".4f"), num(_ms(t), ".4f"),
                 num(f["achieved_tflops"] if f["flops"] else None, ".3f"),
                 num(b["achieved_tflops"] if b["flops"] else None, ".3f"),
                 num(f["achieved_gbs"], ".1f"), num(b["achieved_gbs"], ".1f")]
        if ref:
            s = ref.get(row["layer"], {}).get("total_ms")
            cells += [num(s, ".4f"), num(s / _ms(t) if s else None, ".2f")]
        rows.append(cells)
    return md_table(headers, rows, numeric_from=2) + _notes([rec])


def section(train: dict, benches: dict, seed: dict | None) -> str:
    """The whole seed-004 section; empty when no training or layer record exists."""
    if not (train or benches) or seed is None:
        return ""
    src = f"seed 004 (`{seed['source']}`, {seed['document']})"
    out = [f"Mean time of a training step's forward (model + cross-entropy loss), backward, and their total in "
           "the same step (its own statistics), with inference (eval + inference_mode) beside them; train mode, "
           "no optimizer step, gradients cleared untimed; eager fp32, the device's default clock. "
           f"Seed figures: {src}; its inputs: {seed['inputs']}. Speed-up = seed mean / our mean. "
           "Peak memory = allocator peak (GPU) or peak RSS growth (CPU) above what was resident.\n"]
    for tag in sorted({k[0] for k in train} | {k[0] for k in benches}):
        any_rec = next(r for k, r in sorted(train.items()) + sorted(benches.items()) if k[0] == tag)
        out.append(f"## {any_rec['env']['device_name']}\n")
        if any(k[0] == tag for k in train):
            out.append(f"Seed 004's inputs:\n\n{model_table(train, tag, seed)}")
            presets = preset_table(train, tag)
            if presets:
                out.append(f"Our presets, batch 1:\n\n{presets}")
        for set_name in ("seed004", "large"):
            rec = benches.get((tag, set_name))
            if rec:
                what = ("seed 004's shapes" if set_name == "seed004"
                        else "the large set (batch 8, 64 channels; Dense 4096->4096 at batch 256)")
                out.append(f"Single layers, {what}, mean ms (TFLOP/s: pooling and batch norm have no FLOP "
                           f"formula; GB/s counts each tensor once):\n\n{layer_table(rec, seed)}")
    return "\n".join(out)
