"""Model registry: name -> builder, family, and the ordered units timed per layer.

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

from common.errors import UserError


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


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str  # the profiler folder: <family>_profiler/
    display: str  # as the seeds' tables print it
    builder: Callable[[], nn.Module]
    units: UnitsFn
    block: str  # residual block type, for the seeds' BasicBlock/Bottleneck columns
    min_side: int = 1  # smallest H and W the architecture accepts


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


REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in [
        ModelEntry("resnet18", "resnet", "ResNet-18", _torchvision("resnet18"), resnet_units, "BasicBlock"),
        ModelEntry("resnet34", "resnet", "ResNet-34", _torchvision("resnet34"), resnet_units, "BasicBlock"),
        ModelEntry("resnet50", "resnet", "ResNet-50", _torchvision("resnet50"), resnet_units, "Bottleneck"),
        ModelEntry("resnet101", "resnet", "ResNet-101", _torchvision("resnet101"), resnet_units, "Bottleneck"),
        ModelEntry("resnet152", "resnet", "ResNet-152", _torchvision("resnet152"), resnet_units, "Bottleneck"),
        ModelEntry("mobilenet_v2", "mobilenetv2", "MobileNet-V2", _torchvision("mobilenet_v2"),
                   mobilenet_v2_units, "InvertedResidual"),
        # Chollet 2017, 1000 classes: two un-padded stem convs need at least 7x7 input.
        ModelEntry("xception", "xception", "Xception", _timm("legacy_xception"), xception_units,
                   "SeparableConv block", min_side=7),
        # Simonyan & Zisserman 2015, as in seed 004; five 2x2 poolings need 32x32.
        *(ModelEntry(n, "vgg", d, _torchvision(n), vgg_units, "plain conv stack", min_side=32)
          for n, d in [("vgg16", "VGG16"), ("vgg16_bn", "VGG16-BN"), ("vgg19", "VGG19"), ("vgg19_bn", "VGG19-BN")]),
    ]
}

# The six backbones of the seeds' tables, in their order.
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2", "xception")
# The nine models of seed 004's forward/backward benchmark, in its order, with
# its batch of 224x224 images (4 for the two deepest ResNets, 8 otherwise).
SEED004 = {"vgg16": 8, "vgg16_bn": 8, "vgg19": 8, "vgg19_bn": 8,
           "resnet18": 8, "resnet34": 8, "resnet50": 8, "resnet101": 4, "resnet152": 4}


def get(name: str) -> ModelEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; choose from: {', '.join(REGISTRY)}") from None


def family_models(family: str) -> list[str]:
    return [e.name for e in REGISTRY.values() if e.family == family]


def build(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """The unmodified model, random weights, in eval mode, on ``device``. On
    ``meta`` it is built in place: shapes only, no memory, no initialisation cost."""
    if torch.device(device).type == "meta":
        with torch.device("meta"):
            return get(name).builder().eval()
    return get(name).builder().eval().to(device)


def units(name: str, model: nn.Module, depth: int = 1) -> list[Unit]:
    return get(name).units(model, depth)
