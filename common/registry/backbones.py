"""The catalogue's hand-described backbones: builders and per-unit rules.

Models come unmodified from torchvision (timm for Xception), with random weights
(nothing is downloaded) and in ``eval()`` mode. The per-layer timer needs each
architecture's *units*: the modules (or functional gaps between modules) that
together cover one forward pass exactly once and in execution order. They are
described here as data, per family.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from common.catalogue import CATALOGUE, ModelInfo

@dataclass(frozen=True)
class Unit:
    """One row of a per-layer profile.

    ``path`` is the module's dotted path in the unmodified model. A unit with
    ``path=None`` is a functional gap: the ops the model's ``forward`` runs between
    the previous and the next module unit (e.g. MobileNet-V2's
    ``adaptive_avg_pool2d`` + ``flatten``), described by ``note``.
    """

    label: str
    path: str | None
    note: str = ""

UnitsFn = Callable[[nn.Module, int], list[Unit]]

@dataclass(frozen=True, kw_only=True)
class Entry(ModelInfo):
    """One catalogue entry: the backbone as data (``common.catalogue.ModelInfo``, which
    rendering reads without torch), and how to build and profile it."""

    builder: Callable[[], nn.Module]
    units: UnitsFn  # per-unit rules: (model, depth) -> units in execution order


def _children_units(model: nn.Module, depth: int, expand: tuple[str, ...]) -> list[Unit]:
    """Top-level children in order; at depth >= 2 the ``expand`` containers are
    replaced by their own children (e.g. ResNet's layer1 -> its blocks)."""
    units: list[Unit] = []
    for name, child in model.named_children():
        if depth >= 2 and name in expand:
            units += [Unit(f"{name}.{sub}", f"{name}.{sub}") for sub, _ in child.named_children()]
        else:
            units.append(Unit(name, name))
    return units

def resnet_units(model: nn.Module, depth: int) -> list[Unit]:
    # conv1, bn1, relu, maxpool, layer1..4, avgpool, fc; the flatten between
    # avgpool and fc is a view and costs nothing measurable.
    return _children_units(model, depth, ("layer1", "layer2", "layer3", "layer4"))

def mobilenet_v2_units(model: nn.Module, depth: int) -> list[Unit]:
    features = model.features
    last = len(features) - 1
    units = [Unit("stem", "features.0")]
    units += [Unit(f"block{i}", f"features.{i}") for i in range(1, last)]
    units.append(Unit("last_conv", f"features.{last}"))
    # torchvision's MobileNetV2.forward pools functionally: no module to hook.
    units.append(Unit("pooling", None, "functional adaptive_avg_pool2d + flatten"))
    units.append(Unit("classifier", "classifier"))
    return units

def xception_units(model: nn.Module, depth: int) -> list[Unit]:
    return _children_units(model, depth, ())

def vgg_units(model: nn.Module, depth: int) -> list[Unit]:
    """Every layer, named as in the VGG paper (conv3_2, pool3, fc7); depth has no
    effect: VGG has no blocks to group by."""
    units: list[Unit] = []
    stage, index = 1, 0
    for name, layer in model.features.named_children():
        kind = type(layer).__name__
        if kind == "Conv2d":
            index += 1
        label = {"Conv2d": f"conv{stage}_{index}", "BatchNorm2d": f"bn{stage}_{index}",
                 "ReLU": f"relu{stage}_{index}", "MaxPool2d": f"pool{stage}"}[kind]
        units.append(Unit(label, f"features.{name}"))
        if kind == "MaxPool2d":
            stage, index = stage + 1, 0
    # avgpool, then the flatten view (costs nothing measurable), then fc6..fc8.
    units.append(Unit("avgpool", "avgpool"))
    fc = 5
    for name, layer in model.classifier.named_children():
        kind = type(layer).__name__
        fc += kind == "Linear"
        units.append(Unit({"Linear": f"fc{fc}", "ReLU": f"relu{fc}", "Dropout": f"drop{fc}"}[kind],
                          f"classifier.{name}"))
    return units

def _torchvision(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None)

    return build

def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        with warnings.catch_warnings():
            # timm flags legacy_xception as deprecated in favour of its
            # re-implemented xception41; the seeds' model is the legacy one.
            warnings.simplefilter("ignore")
            return timm.create_model(name, pretrained=False)

    return build

_UNITS: dict[str, UnitsFn] = {"resnet": resnet_units, "mobilenetv2": mobilenet_v2_units,
                              "xception": xception_units, "vgg": vgg_units}


def _entry(info: ModelInfo) -> Entry:
    """A catalogue backbone's metadata (``common.catalogue``) with its builder and unit rules."""
    arch = info.arch or info.name
    builder = _timm(arch) if info.source == "timm" else _torchvision(arch)
    shared = {f: getattr(info, f) for f in ModelInfo.__dataclass_fields__}
    return Entry(**shared, builder=builder, units=_UNITS[info.family])


# In catalogue order: the seeds' six backbones (their tables' order), ResNet-152, seed 004's VGGs.
BACKBONE_ENTRIES: tuple[Entry, ...] = tuple(_entry(i) for i in CATALOGUE)
