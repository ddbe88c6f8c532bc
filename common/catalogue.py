"""What the catalogue says of a model without building it: torch-free metadata.

The renderer reads records only and must not load torch, yet it needs each model's
family (its ``<family>_profiler/`` folder), display name, block type, tags and the
published top-1 of its weights. The catalogue's eleven backbones are described
here as data; ``common.registry.backbones`` adds their builders and unit rules.
Any other name (torchvision, timm) is a zoo model, family ``zoo``.

Records made since schema 3 carry their model's metadata (``Record.model``);
``family_of`` / ``top1_of`` read it there first and fall back to this table for
the records made before.
"""
from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"
TIMM_TOP1 = REFERENCE / "timm_imagenet_top1.csv"
TORCHVISION_TOP1 = REFERENCE / "torchvision_imagenet_top1.csv"
ZOO_FAMILY = "zoo"

# The burden zoo's groups, and its timm models: the project's Xception and the timm
# counterparts of convnet-burden's models that torchvision lacks (SE-Nets, MobileNet-v1).
GROUPS = ("classification", "segmentation", "detection", "timm")
TIMM_MODELS = ("legacy_xception", "legacy_seresnet50", "legacy_seresnet101", "legacy_seresnet152",
               "legacy_seresnext50_32x4d", "legacy_seresnext101_32x4d", "legacy_senet154", "mobilenetv1_100")


@dataclass(frozen=True)
class ModelInfo:
    """One catalogue backbone as data (its builder and units live in the registry)."""

    name: str
    family: str  # the profiler folder of its outputs: <family>_profiler/
    display: str  # as the seeds' tables print it
    block: str = ""  # residual block type, for the seeds' BasicBlock/Bottleneck columns
    min_side: int = 1  # smallest H and W the architecture accepts
    depths: tuple[int, ...] = (1,)  # unit depths defined (and run by the drivers)
    tags: frozenset[str] = frozenset()
    train_batch: int | None = None  # seed 004's batch of 224x224 images ('train-bench')
    expected_params: int | None = None  # the reference count (torchvision / timm, 1000 classes)
    source: str = "torchvision"  # torchvision | timm
    arch: str = ""  # the library's name where it differs from ``name``


# Tags: 'backbone' (the seeds' six tables), 'train-bench' (seed 004's nine, with the
# batch in train_batch), 'catalogue' (every entry below), 'zoo' (the burden zoo's list).
TAGS = ("backbone", "train-bench", "catalogue", "zoo")
# The zoo sweep's models on a machine without a GPU (on a GPU: the burden zoo's list).
ZOO_CPU_MODELS = ("resnet18", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf", "shufflenet_v2_x1_0",
                  "convnext_tiny")
_B, _T = frozenset({"backbone", "catalogue"}), frozenset({"train-bench", "catalogue"})
_RESNET = dict(family="resnet", depths=(1, 2))  # depth 2: one unit per residual block

# In catalogue order: the seeds' six backbones (their tables' order), ResNet-152, seed 004's VGGs.
CATALOGUE: tuple[ModelInfo, ...] = (
    ModelInfo("resnet18", display="ResNet-18", block="BasicBlock", tags=_B | _T, train_batch=8,
              expected_params=11_689_512, **_RESNET),
    ModelInfo("resnet34", display="ResNet-34", block="BasicBlock", tags=_B | _T, train_batch=8,
              expected_params=21_797_672, **_RESNET),
    ModelInfo("resnet50", display="ResNet-50", block="Bottleneck", tags=_B | _T, train_batch=8,
              expected_params=25_557_032, **_RESNET),
    # Seed 004 ran its two deepest ResNets at batch 4.
    ModelInfo("resnet101", display="ResNet-101", block="Bottleneck", tags=_B | _T, train_batch=4,
              expected_params=44_549_160, **_RESNET),
    ModelInfo("mobilenet_v2", family="mobilenetv2", display="MobileNet-V2", block="InvertedResidual", tags=_B,
              expected_params=3_504_872),
    # Chollet 2017, 1000 classes: two un-padded stem convs need at least 7x7 input.
    ModelInfo("xception", family="xception", display="Xception", block="SeparableConv block", min_side=7, tags=_B,
              expected_params=22_855_952, source="timm", arch="legacy_xception"),
    ModelInfo("resnet152", display="ResNet-152", block="Bottleneck", tags=_T, train_batch=4,
              expected_params=60_192_808, **_RESNET),
    # Simonyan & Zisserman 2015, as in seed 004; five 2x2 poolings need 32x32.
    *(ModelInfo(n, family="vgg", display=d, block="plain conv stack", min_side=32, tags=_T, train_batch=8,
                expected_params=p)
      for n, d, p in [("vgg16", "VGG16", 138_357_544), ("vgg16_bn", "VGG16-BN", 138_365_992),
                      ("vgg19", "VGG19", 143_667_240), ("vgg19_bn", "VGG19-BN", 143_678_248)]),
)
INFO: dict[str, ModelInfo] = {i.name: i for i in CATALOGUE}
NAMES: tuple[str, ...] = tuple(INFO)
BACKBONES: tuple[str, ...] = tuple(i.name for i in CATALOGUE if "backbone" in i.tags)
# Seed 004's order: its VGGs first, then its ResNets.
SEED004: dict[str, int] = {i.name: i.train_batch  # type: ignore[misc]
                           for i in sorted((i for i in CATALOGUE if "train-bench" in i.tags),
                                           key=lambda i: i.family != "vgg")}


def family(model: str) -> str:
    """The family (output folder) of a model name: the catalogue's, else ``zoo``."""
    info = INFO.get(model)
    return info.family if info else ZOO_FAMILY


def source(model: str) -> str:
    """The library a model name comes from, as the registry resolves it (torchvision first)."""
    info = INFO.get(model)
    if info:
        return info.source
    if model.startswith("timm/"):
        return "timm"
    tv = _table(TORCHVISION_TOP1)
    return "torchvision" if model in tv or model.removesuffix(".backbone") in tv else "timm"


def display(model: str) -> str:
    """As the tables print a model: the catalogue's name, else the registry's rule for zoo names."""
    info = INFO.get(model)
    if info:
        return info.display
    return f"{model} (timm)" if source(model) == "timm" and not model.startswith("timm/") else model


def block(model: str) -> str:
    info = INFO.get(model)
    return info.block if info else ""


def stem(name: str) -> str:
    """File name of a model's outputs: ``timm/resnet18`` -> ``timm__resnet18``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name.replace("/", "__"))


def model_of(rec: dict) -> dict:
    """The model metadata a record carries (``{}`` in records made before schema 3)."""
    got = rec.get("model")
    return got if isinstance(got, dict) else {}


def family_of(rec: dict) -> str:
    """The family folder of a record's model: the one it was measured with, else the table's."""
    return model_of(rec).get("family") or family(rec["request"]["model"])


@functools.lru_cache(maxsize=None)
def _table(path: Path) -> dict[str, tuple[str, float | None]]:
    """model -> (weights, top-1 %) of a stored reference file (``common.zoo.reference`` writes them)."""
    if not Path(path).is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["model"]: (r["weights"], float(r["top1"]) if r["top1"] else None) for r in csv.DictReader(f)}


def top1(name: str, library: str | None = None) -> dict | None:
    """{"top1": %, "weights", "source"} of the published weights of ``name``'s architecture,
    from the stored reference files; None when nothing is published. ``library``: where
    the model comes from (torchvision | timm); None: ``source(name)``."""
    if (library or source(name)) == "timm":
        arch = name.removeprefix("timm/")
        arch = (INFO[arch].arch or arch) if arch in INFO else arch
        got = _table(TIMM_TOP1).get(arch)
        where = "timm results-imagenet.csv (results/reference/)"
    else:
        got = _table(TORCHVISION_TOP1).get(name)
        where = "torchvision weights metadata"
    if got is None or got[1] is None:
        return None
    return {"top1": got[1], "weights": got[0], "source": where}


def top1_of(rec: dict) -> float | None:
    """The published top-1 % of a record's model: the one stored with it, else the reference files'."""
    meta = model_of(rec)
    if "top1" in meta:
        return (meta["top1"] or {}).get("top1")
    got = top1(rec["request"]["model"], meta.get("source"))
    return got["top1"] if got else None
