"""Seed 003's convnet-burden figures beside ours: which of its rows is which of our
models, the differences per metric, and the explanation of each difference over 10%.

Every explanation is computed from our record (at the seed's input size), so the
figures it quotes are ours. Used by the renderer (``common.render.burden``).
"""
from __future__ import annotations

import functools
import json
import math
from typing import Any

from common import records
from common.derive import MIB
from common.burden import fmt
from common.burden.fmt import ROOT_LABEL
from common.errors import oneline

REFERENCE = records.RESULTS / "reference" / "convnet_burden.json"

# Our model -> convnet-burden's row, and whether it is the same network or a variant.
COMPARE: dict[str, tuple[str, str]] = {
    "alexnet": ("alexnet", "same"), "squeezenet1_0": ("squeezenet1-0", "same"),
    "squeezenet1_1": ("squeezenet1-1", "same"), "vgg16": ("vgg-vd-16", "same"), "vgg19": ("vgg-vd-19", "same"),
    "googlenet": ("googlenet", "same"), "resnet18": ("resnet18", "same"), "resnet34": ("resnet34", "same"),
    "resnet50": ("resnet-50", "same"), "resnet101": ("resnet-101", "same"), "resnet152": ("resnet-152", "same"),
    "resnext50_32x4d": ("resnext-50-32x4d", "same"), "resnext101_32x8d": ("resnext-101-32x4d", "variant"),
    "resnext101_64x4d": ("resnext-101-64x4d", "same"), "inception_v3": ("inception-v3", "same"),
    "densenet121": ("densenet121", "same"), "densenet161": ("densenet161", "same"),
    "densenet169": ("densenet169", "same"), "densenet201": ("densenet201", "same"),
    "legacy_seresnet50": ("SE-ResNet-50", "same"), "legacy_seresnet101": ("SE-ResNet-101", "same"),
    "legacy_seresnet152": ("SE-ResNet-152", "same"), "legacy_seresnext50_32x4d": ("SE-ResNeXt-50-32x4d", "same"),
    "legacy_seresnext101_32x4d": ("SE-ResNeXt-101-32x4d", "same"), "legacy_senet154": ("SENet", "same"),
    "mobilenetv1_100": ("mcn-mobilenet", "same"),
    "ssd300_vgg16": ("ssd-pascal-vggvd-300", "variant"), "deeplabv3_resnet101": ("deeplab-res101-v2", "variant"),
}


# Element-wise arithmetic that torchvision/timm run in place (``out += identity``):


@functools.lru_cache(maxsize=None)
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


def seed_row(name: str) -> dict | None:
    """convnet-burden's row of our model ``name``, or None."""
    if name not in COMPARE:
        return None
    return next((r for r in reference()["rows"] if r["model"] == COMPARE[name][0]), None)


def seed_of(entry: dict) -> dict:
    """The seed row an entry's comparison was made with."""
    return next(r for r in reference()["rows"] if r["model"] == entry["compare"]["seed_model"])


METRICS = (("param", "param_bytes", "param_mib", "param mem"),
           ("feature", "feature_bytes", "feature_mib", "feat. mem"),
           ("macs", "macs", "flops_as_printed", "MACs vs its 'flops'"))


def compare(entry: dict) -> list[dict] | None:
    """Per metric: ours, the seed's printed value, the difference, and the explanation
    where it exceeds 10%."""
    cmp = entry.get("compare")
    if not cmp or "macs" not in cmp:
        return None
    seed = next((r for r in reference()["rows"] if r["model"] == cmp["seed_model"]), None)
    if seed is None:
        return None
    out = []
    for key, ours_key, seed_key, label in METRICS:
        scale = MIB if key != "macs" else 1
        ours = cmp[ours_key] / scale
        printed, step = seed[seed_key], seed["unit_steps"][seed_key]
        pct = fmt.pct(ours, printed)
        item = {"metric": key, "label": label, "ours": ours, "seed": printed, "pct": pct, "why": None}
        if abs(pct) > 10:
            lo, hi = printed - step / 2, printed + step / 2
            note = _note(entry, key)
            unit = "MiB" if key != "macs" else "operations"
            if lo <= ours < hi:
                item["why"] = (f"rounding: the seed prints {seed['printed'][{'param': 'param_mem', 'feature': 'feat_mem', 'macs': 'flops'}[key]]!r} "
                               f"to a whole number of units, i.e. anything in [{fmt.num(lo)}, {fmt.num(hi)}) {unit}; ours "
                               f"({fmt.num(ours)}) is inside that interval")
            elif key == "feature" and _close(cmp["feature_bytes_seed_convention"] / MIB, printed, step):
                conv = cmp["feature_bytes_seed_convention"] / MIB
                item["why"] = (f"in-place sums: {library(entry)} adds residuals in place (`out += identity`), which "
                               f"stores nothing new; convnet-burden stores every sum as a new feature. Counted its "
                               f"way ours is {conv:.1f} MiB ({fmt.signed(fmt.pct(conv, printed))})"
                               + (f". {note}" if note else ""))
            elif note:
                item["why"] = note
            else:
                item["why"] = "not explained"
        out.append(item)
    return out


def library(entry: dict) -> str:
    return "timm" if entry.get("source") == "timm" else "torchvision"


def _close(ours: float, printed: float, step: float) -> bool:
    return abs(fmt.pct(ours, printed)) <= 10 or printed - step / 2 <= ours < printed + step / 2


# Explanations of the differences over 10% that neither rounding nor in-place sums
# account for, keyed by our model and metric ("param", "feature", "macs"). Each is a
# function of the model's record, so the figures it quotes are ours, at the seed's size.

def _rows(entry: dict) -> list[list]:
    return (entry.get("compare") or {}).get("layers") or entry["layers"]["rows"]


def _part(entry: dict, col: int, prefix: str = "", kind: str | None = None, suffix: str = "") -> float:
    """Sum of one per-layer column (4 params, 5 feature bytes, 6 FLOPs) over the rows
    whose module path starts with ``prefix`` / ends with ``suffix`` / has type ``kind``."""
    return sum(r[col] for r in _rows(entry) if r[1].startswith(prefix) and r[1].endswith(suffix)
               and (kind is None or r[2] == kind))


def _ours(entry: dict, key: str) -> float:
    return entry["compare"][key]


def _seed(entry: dict, key: str) -> float:
    return seed_of(entry)[key]


def _alexnet_feature(e: dict) -> str:
    return ("torchvision's AlexNet is the single-tower variant of 'One weird trick' (64/192/384/256/256 filters, "
            "no LRN); convnet-burden's (MatConvNet's) keeps the original layout (96/256/384/384/256 filters, LRN "
            "after the first two stages). The fully connected layers, which dominate parameters and MACs, are the "
            "same (those agree); the wider early stages and their LRN outputs are the extra feature memory")


def _googlenet_feature(e: dict) -> str:
    bn = _part(e, 5, kind="BatchNorm2d") / MIB
    lrn = (64 * 56 * 56 + 192 * 56 * 56) * 4 / MIB
    alt = _ours(e, "feature_bytes") / MIB - bn + lrn
    return (f"torchvision's GoogLeNet puts a batch norm after every convolution (BasicConv2d): their outputs are "
            f"{bn:.1f} MiB of ours. The original (Caffe) GoogLeNet that convnet-burden imported has no batch norm "
            f"but two LRN layers (64x56x56 and 192x56x56 outputs, {lrn:.1f} MiB). Without the batch-norm outputs "
            f"and with the LRNs ours would be {alt:.1f} MiB ({fmt.signed(fmt.pct(alt, _seed(e, 'feature_mib')))})")


def _googlenet_macs(e: dict) -> str:
    return (f"ours ({fmt.si(_ours(e, 'macs'))} MACs) sits just below the lower edge (1.5 G) of its rounded "
            "'2 GFLOPs' = [1.5, 2.5) G; convnet-burden also counts bias adds, 2 operations per ReLU output, "
            "pooling and LRN, which our MACs leave out and which lift the original GoogLeNet past 1.5 G")


def _inception_param(e: dict) -> str:
    aux = _part(e, 4, prefix="AuxLogits") * 4 / MIB
    alt = _ours(e, "param_bytes") / MIB - aux
    return (f"torchvision's inception_v3 built without weights keeps its auxiliary classifier (`AuxLogits`, "
            f"{aux:.1f} MiB of parameters, not run in eval); convnet-burden's import has none: without it ours is "
            f"{alt:.1f} MiB ({fmt.signed(fmt.pct(alt, _seed(e, 'param_mib')))})")


def _resnext_variant(e: dict, metric: str) -> str:
    ours = {"param": _ours(e, "param_bytes") / MIB, "feature": _ours(e, "feature_bytes") / MIB,
            "macs": _ours(e, "macs")}[metric]
    seed = _seed(e, {"param": "param_mib", "feature": "feature_mib", "macs": "flops_as_printed"}[metric])
    return (f"a different variant: torchvision has no ResNeXt-101 32x4d, only 32x8d, whose grouped 3x3 "
            f"convolutions have twice the width (8 channels per group instead of 4), and so do the 1x1 "
            f"convolutions around them: {ours / seed:.2f}x the seed's figure")


def _ssd_note(e: dict, metric: str) -> str:
    k = 21 / 91  # PASCAL VOC's 20 classes + background vs COCO's 90 + background
    cls = "head.classification_head"
    if metric == "param":
        alt = (_ours(e, "param_bytes") - 4 * _part(e, 4, cls) * (1 - k)) / MIB
        seed, what = _seed(e, "param_mib"), f"{alt:.1f} MiB"
    elif metric == "macs":
        alt = _ours(e, "macs") - _part(e, 6, cls) / 2 * (1 - k)
        seed, what = _seed(e, "flops_as_printed"), f"{fmt.si(alt)} MACs"
    else:
        net = _part(e, 5, "backbone") + _part(e, 5, "head.regression_head") + _part(e, 5, cls) * k
        alt, seed = net / MIB, _seed(e, "feature_mib")
        return (f"a variant, and a wider count: ours includes torchvision's input transform (normalise, "
                f"resize: {_part(e, 5, 'transform') / MIB:.1f} MiB) and its post-processing in `SSD.forward` "
                f"(box decoding, per-class score filtering and NMS over 8,732 boxes x 91 classes: "
                f"{_part(e, 5, ROOT_LABEL) / MIB:.1f} MiB), which convnet-burden's network leaves to its "
                f"detector layer; the VGG-16 backbone and the heads, with the classification head scaled to "
                f"21 classes, come to {alt:.1f} MiB ({fmt.signed(fmt.pct(alt, seed))})")
    return (f"a variant: torchvision's SSD300 is trained on COCO (91 classes), convnet-burden's on PASCAL VOC "
            f"(21); the classification head's 3x3 convolutions scale with the classes (anchors x classes "
            f"outputs). Scaled to 21 classes ours is {what} ({fmt.signed(fmt.pct(alt, seed))})")


def _deeplab_note(e: dict, metric: str) -> str:
    scales = 1 + 0.75**2 + 0.5**2  # its multi-scale input: x1, x0.75, x0.5 (pixels)
    n_cls, side = 21, math.ceil(513 / 8)  # DeepLab-v2 ASPP-L: four 3x3 convs 2048 -> 21 at output stride 8
    head_params = 4 * (2048 * n_cls * 9 + n_cls)
    head_macs = 4 * side * side * n_cls * 2048 * 9
    trunk_p = _part(e, 4, "backbone") * 4 / MIB
    trunk_f = _part(e, 5, "backbone") / MIB
    sums = (_ours(e, "feature_bytes_seed_convention") - _ours(e, "feature_bytes")) / MIB
    trunk_m = _part(e, 6, "backbone") / 2
    common = ("a variant: DeepLab-v3 (torchvision) vs DeepLab-v2, both on a ResNet-101 at output stride 8. "
              "convnet-burden's deeplab-res101-v2 runs the network on three scales of the input (x1, x0.75, "
              f"x0.5: {scales:.2f}x the pixels) and its head is four 3x3 convolutions straight to 21 classes; "
              "v3's ASPP has 256-channel branches, image pooling and a 3x3 convolution. ")
    if metric == "param":
        alt = 3 * (trunk_p + head_params * 4 / MIB)
        return (common + f"Its 505 MB are three copies of the weights, one per scale branch: 3 x (our trunk "
                         f"{trunk_p:.1f} MiB + v2's head {head_params * 4 / MIB:.1f} MiB) = {alt:.0f} MiB")
    if metric == "feature":
        alt = scales * (trunk_f + sums) / 1024
        return (common + f"Our trunk's features at 513 x 513, counting in-place sums its way, are "
                         f"{trunk_f + sums:,.0f} MiB; over its three scales that is {alt:.2f} GiB, inside its "
                         f"'4 GB' = [3.5, 4.5) GiB")
    alt = scales * (trunk_m + head_macs)
    return (common + f"Our trunk's MACs at 513 x 513 ({fmt.si(trunk_m)}) plus v2's head ({fmt.si(head_macs)}), "
                     f"over its three scales: {fmt.si(alt)} ({fmt.signed(fmt.pct(alt, _seed(e, 'flops_as_printed')))})")


def _se_feature(e: dict) -> str:
    se = _part(e, 5, suffix="se_module") / MIB
    alt = _ours(e, "feature_bytes") / MIB - se
    return (f"timm's legacy SE blocks return the rescaled features (`x * se`) as a new tensor and then add the "
            f"shortcut out of place: both are stored. convnet-burden's SE-Nets (imported from Caffe) fuse the "
            f"scaling and the residual sum into one Axpy layer, one output per block. Without the `se_module` "
            f"outputs ({se:.1f} MiB) ours is {alt:.1f} MiB ({fmt.signed(fmt.pct(alt, _seed(e, 'feature_mib')))})")


NOTES: dict[str, dict[str, Any]] = {
    "alexnet": {"feature": _alexnet_feature},
    "googlenet": {"feature": _googlenet_feature, "macs": _googlenet_macs},
    "inception_v3": {"param": _inception_param},
    "resnext101_32x8d": {m: functools.partial(_resnext_variant, metric=m) for m in ("param", "feature", "macs")},
    "ssd300_vgg16": {m: functools.partial(_ssd_note, metric=m) for m in ("param", "feature", "macs")},
    "deeplabv3_resnet101": {m: functools.partial(_deeplab_note, metric=m) for m in ("param", "feature", "macs")},
    **{n: {"feature": _se_feature} for n in ("legacy_seresnet50", "legacy_seresnet101", "legacy_seresnet152",
                                             "legacy_seresnext50_32x4d", "legacy_seresnext101_32x4d",
                                             "legacy_senet154")},
}


def _note(entry: dict, key: str) -> str | None:
    fn = NOTES.get(entry["model"], {}).get(key)
    if fn is None:
        return None
    try:
        return fn(entry) if callable(fn) else fn
    except (KeyError, StopIteration, ZeroDivisionError, TypeError) as exc:
        return f"(explanation unavailable: {oneline(exc, 80)})"

