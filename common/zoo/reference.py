"""Published ImageNet-1k top-1 accuracy of a model's default weights (reference data).

- torchvision: ``results/reference/torchvision_imagenet_top1.csv``, the weights' own
  metadata read offline (``get_model_weights(name).DEFAULT.meta["_metrics"]["ImageNet-1K"]["acc@1"]``)
  and stored, so that the renderer reads it without torch;
- timm: ``results/reference/timm_imagenet_top1.csv`` (model, weights, top1), the rows of
  timm's published ``results/results-imagenet.csv`` for the default pretrained tag of
  every timm model the project lists (source and commit: ``results/reference/README.md``).

Our models run with random weights: the accuracy is that of the published weights
of the same architecture, for the chooser's figure only.

    python -m common reference --from results-imagenet.csv [NAME ...]   rewrite the timm file
    python -m common reference --torchvision                           rewrite the torchvision file
"""
from __future__ import annotations

import csv
import io

from common import catalogue, records
from common.parsers import tools

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


def top1(name: str) -> dict | None:
    """{"top1": %, "weights": ..., "source": ...} of a model name, or None when nothing is published
    (from the stored reference files, as the renderer reads them: ``common.catalogue.top1``)."""
    from common import registry

    return catalogue.top1(name, registry.get(name).source)


def torchvision_table() -> str:
    """The torchvision reference file's text: every classification, segmentation and
    detection model, its default weights and their ImageNet-1K top-1 (empty where the
    weights state none), read offline. Its names also tell the renderer which zoo names
    are torchvision's (``common.catalogue.source``)."""
    import torchvision.models as tvm

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["model", "weights", "top1"])
    for name in sorted({*tvm.list_models(tvm), *tvm.list_models(tvm.segmentation), *tvm.list_models(tvm.detection)}):
        try:
            weights = tvm.get_model_weights(name).DEFAULT
            acc = weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        except Exception:  # noqa: BLE001 - no weights, or not ImageNet-classification weights
            w.writerow([name, "", ""])
            continue
        w.writerow([name, str(weights), float(acc)])
    return out.getvalue()


def timm_names() -> list[str]:
    return list(dict.fromkeys(list(catalogue.TIMM_MODELS) + list(EXTRA_TIMM)))


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
    p = tools.reference(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    if args.torchvision:
        path, text = catalogue.TORCHVISION_TOP1, torchvision_table()
    else:
        path, text = catalogue.TIMM_TOP1, extract(args.source.read_text(encoding="utf-8"), args.names or timm_names())
    records.write_atomic(path, text)
    print(path)
    return 0

