"""Published ImageNet-1k top-1 accuracy of a model's default weights (reference data).

- torchvision: the weights' own metadata, offline:
  ``get_model_weights(name).DEFAULT.meta["_metrics"]["ImageNet-1K"]["acc@1"]``;
- timm: ``results/reference/timm_imagenet_top1.csv`` (model, weights, top1), the rows of
  timm's published ``results/results-imagenet.csv`` for the default pretrained tag of
  every timm model the project lists (source and commit: ``results/reference/README.md``).

Our models run with random weights: the accuracy is that of the published weights
of the same architecture, for the chooser's figure only.

    python -m common reference --from results-imagenet.csv [NAME ...]   rewrite the timm file
"""
from __future__ import annotations

import argparse
import csv
import functools
import io
import sys
from pathlib import Path

from common import records

TIMM_FILE = records.RESULTS / "reference" / "timm_imagenet_top1.csv"
# timm models beside the zoo's: aligned Xceptions (output stride), and the examples.
EXTRA_TIMM = ("xception41", "xception65", "xception71", "xception41p", "xception65p", "regnety_032",
              "vit_base_patch16_224", "vit_small_patch16_224", "convnext_tiny", "efficientnet_b0",
              "swin_tiny_patch4_window7_224", "mixer_b16_224", "resnet18", "resnet34", "resnet50", "resnet101",
              "resnet152", "mobilenetv2_100", "mobilenetv3_large_100", "efficientnet_b3", "regnety_040",
              "convnext_small", "convnext_base", "deit_small_patch16_224", "deit_base_patch16_224")


def default_weights(arch: str) -> str | None:
    """timm's default pretrained weights of ``arch``: ``<arch>.<tag>`` (offline)."""
    from timm.models._registry import get_arch_pretrained_cfgs

    try:
        tags = list(get_arch_pretrained_cfgs(arch))
    except Exception:  # noqa: BLE001 - no pretrained weights registered
        return None
    return tags[0] if tags else None


@functools.lru_cache(maxsize=1)
def timm_table(path: Path = TIMM_FILE) -> dict[str, tuple[str, float]]:
    """arch -> (weights, top1) from the stored reference file."""
    if not Path(path).is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["model"]: (r["weights"], float(r["top1"])) for r in csv.DictReader(f)}


def top1(name: str) -> dict | None:
    """{"top1": %, "weights": ..., "source": ...} of a model name, or None when nothing is published."""
    from common import registry

    entry = registry.get(name)
    if entry.source == "timm":
        arch = name.removeprefix("timm/")
        arch = "legacy_xception" if arch == "xception" else arch
        got = timm_table().get(arch)
        if got is None:
            return None
        return {"top1": got[1], "weights": got[0], "source": "timm results-imagenet.csv (results/reference/)"}
    arch = name.removesuffix(".backbone")
    if arch != name:
        return None  # a backbone alone has no classifier
    import torchvision.models as tvm

    try:
        w = tvm.get_model_weights(arch).DEFAULT
        acc = w.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    except Exception:  # noqa: BLE001 - no weights, or not ImageNet-classification weights
        return None
    return {"top1": float(acc), "weights": str(w), "source": "torchvision weights metadata"}


def timm_names() -> list[str]:
    from common.registry import zoo

    return list(dict.fromkeys(list(zoo.TIMM_MODELS) + list(EXTRA_TIMM)))


def extract(results_csv: str, names: list[str]) -> str:
    """The reference file's text: model, weights, top1 for each name's default weights."""
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(results_csv))}
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["model", "weights", "top1"])
    for n in names:
        weights = default_weights(n)
        if weights and weights in rows:
            w.writerow([n, weights, rows[weights]["top1"]])
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m common reference", description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="source", type=Path, required=True, metavar="CSV",
                   help="timm's results/results-imagenet.csv")
    p.add_argument("names", nargs="*", help="timm models (default: the zoo's and the extra list)")
    args = p.parse_args(argv)
    text = extract(args.source.read_text(encoding="utf-8"), args.names or timm_names())
    records.write_atomic(TIMM_FILE, text)
    print(TIMM_FILE)
    return 0

