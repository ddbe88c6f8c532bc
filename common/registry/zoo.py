"""The model zoo of the burden table: every torchvision classification,
segmentation and detection model, and any timm model.

A zoo model is named as its library names it (``timm/<name>`` picks timm where
both libraries have the name). ``resolve`` gives its :class:`ModelSpec`: how to
build it at a given input size and its typical input size (from its default
weights' transforms, or timm's ``pretrained_cfg``). The catalogue's backbones
that are also zoo models (ResNets, VGGs, the project's Xception = timm's
``legacy_xception``) are built by the catalogue entry's own builder.
"""
from __future__ import annotations

import difflib
import functools
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from common.catalogue import GROUPS, TIMM_MODELS, stem  # noqa: F401 - re-exported (torch-free data)
from common.errors import UserError, oneline  # noqa: F401 - re-exported
from common.registry.backbones import BACKBONE_ENTRIES

# The catalogue's name of a zoo model where the two differ (the library's name is the zoo's).
CATALOGUE_NAMES = {("timm", "legacy_xception"): "xception"}


@functools.lru_cache(maxsize=None)
def torchvision_groups() -> dict[str, tuple[str, ...]]:
    import torchvision.models as tvm

    return {"classification": tuple(tvm.list_models(tvm)),
            "segmentation": tuple(tvm.list_models(tvm.segmentation)),
            "detection": tuple(tvm.list_models(tvm.detection))}


def group_models(group: str) -> list[str]:
    return list(TIMM_MODELS) if group == "timm" else list(torchvision_groups()[group])


def zoo_names(group: str | None = None) -> list[str]:
    """The zoo's names (one group's, or all in group order) without repeats."""
    if group is not None and group not in GROUPS:
        raise UserError(f"unknown zoo group {group!r}; choose from: {', '.join(GROUPS)}")
    return expand([group or "all"])


def expand(items: list[str]) -> list[str]:
    """Group names ('all' or one of GROUPS) and model names -> model names, in order, without repeats."""
    out: list[str] = []
    for item in items:
        names = ([n for g in GROUPS for n in group_models(g)] if item == "all"
                 else group_models(item) if item in GROUPS else [item])
        out += [n for n in names if n not in out]
    return out


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model at a given input size, and its typical size."""

    name: str  # as the user names it (``timm/<name>`` forces timm)
    group: str  # classification | segmentation | detection | timm
    source: str  # torchvision | timm
    size: tuple[int, int]  # typical (H, W)
    size_note: str
    size_kw: str | None = None  # builder argument that fixes the input size: rebuilt per size
    fixed_note: str | None = None  # why other input sizes cost the same (the model resizes its input)
    det_max_size: int = 0  # detection transforms' default max_size

    @property
    def arch(self) -> str:
        return self.name.split("/", 1)[1] if self.name.startswith("timm/") else self.name

    def kwargs(self, size: tuple[int, int]) -> dict:
        h, w = size
        if self.source == "timm":
            return {"pretrained": False, **({"img_size": (h, w)} if self.size_kw == "img_size" else {})}
        kw: dict = {"weights": None}
        if self.group in ("segmentation", "detection"):
            kw["weights_backbone"] = None  # their default would download ImageNet weights
        if self.size_kw == "image_size":
            if h != w:
                raise UserError(f"{self.name} takes square inputs only (got {h}x{w})")
            kw["image_size"] = h
        elif self.size_kw == "input_size":
            kw["input_size"] = (h, w)
        elif self.size_kw == "min_size":
            # The transform resizes the shorter side to min_size (longer side <= max_size):
            # with these, an HxW input goes through unresized.
            kw["min_size"] = min(h, w)
            kw["max_size"] = max(self.det_max_size, h, w)
        return kw

    def default_kwargs(self) -> dict:
        return {"pretrained": False} if self.source == "timm" else {"weights": None}


def catalogue_builder(spec: ModelSpec) -> Callable[[], nn.Module] | None:
    """The catalogue entry's builder of a zoo model that is also a catalogue backbone."""
    name = CATALOGUE_NAMES.get((spec.source, spec.arch), spec.arch)
    entry = next((e for e in BACKBONE_ENTRIES if e.name == name and e.source == spec.source), None)
    return entry.builder if entry is not None else None


def construct(spec: ModelSpec, size: tuple[int, int]) -> nn.Module:
    kw = spec.kwargs(size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's init-weights notices, timm deprecations
        builder = catalogue_builder(spec)
        if builder is not None and kw == spec.default_kwargs():
            return builder().eval()
        if spec.source == "timm":
            import timm

            return timm.create_model(spec.arch, **kw).eval()
        import torchvision.models as tvm

        return tvm.get_model(spec.arch, **kw).eval()


def build(spec: ModelSpec, size: tuple[int, int], device: str = "meta") -> tuple[nn.Module, str]:
    """The unmodified model, random weights (seeded on the CPU), in eval mode, and how it was built.

    On ``meta`` construction costs nothing; a model whose constructor computes with
    tensor values (RegNet's width schedule) is built on the CPU and moved to meta.
    """
    if device == "meta":
        try:
            with torch.device("meta"):
                return construct(spec, size), "built on the meta device"
        except Exception as exc:  # noqa: BLE001 - any constructor failure: try the CPU
            reason = oneline(exc, 120)
        model = build(spec, size, "cpu")[0].to("meta")
        return model, f"built on the CPU, moved to meta (construction on meta fails: {reason})"
    torch.manual_seed(0)
    return construct(spec, size), "built on the CPU (seed 0)"


def _unknown(name: str) -> UserError:
    import timm

    pool = [n for g in GROUPS[:3] for n in group_models(g)] + list(timm.list_models())
    near = difflib.get_close_matches(name.split("/", 1)[-1], pool, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    return UserError(f"unknown model {name!r}: not a torchvision classification/segmentation/detection model "
                     f"nor a timm model{hint}")


@functools.lru_cache(maxsize=None)
def resolve(name: str) -> ModelSpec:
    """A torchvision model name (classification, segmentation, detection) or a timm
    model name (``timm/<name>`` picks timm where both libraries have the name)."""
    forced_timm = name.startswith("timm/")
    arch = name.split("/", 1)[1] if forced_timm else name
    if not forced_timm:
        for group, names in torchvision_groups().items():
            if arch in names:
                return _torchvision_spec(arch, group)
    import timm

    if not timm.is_model(arch):
        raise _unknown(name)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model(arch, pretrained=False)
    cfg = model.pretrained_cfg or {}
    _, h, w = cfg.get("input_size", (3, 224, 224))
    tag = cfg.get("tag") or "default"
    return ModelSpec(name, "timm", "timm", (h, w), f"timm pretrained_cfg input_size ({arch}.{tag})",
                     size_kw="img_size" if cfg.get("fixed_input_size") else None)


def _torchvision_spec(name: str, group: str) -> ModelSpec:
    import torchvision.models as tvm

    weights = tvm.get_model_weights(name).DEFAULT
    if group == "classification":
        s = weights.transforms().crop_size[0]
        size_kw = "image_size" if name.startswith("vit_") else "input_size" if name.startswith("maxvit") else None
        note = f"crop size of torchvision's {weights} weights"
        if size_kw:
            note += f" (the architecture is built for it: {size_kw}={s}, rebuilt at each size)"
        return ModelSpec(name, group, "torchvision", (s, s), note, size_kw=size_kw)
    if group == "segmentation":
        s = weights.transforms().resize_size[0]
        return ModelSpec(name, group, "torchvision", (s, s),
                         f"resize size of torchvision's {weights} weights (shorter side {s}; square here)")
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tvm.get_model(name, weights=None, weights_backbone=None)
    t = model.transform
    if getattr(t, "fixed_size", None):
        h, w = t.fixed_size
        return ModelSpec(name, group, "torchvision", (h, w), f"the model's transform resizes every input to {h} x {w}",
                         fixed_note=f"the model's transform resizes every input to {h} x {w} (fixed_size), "
                                    "so other input sizes cost the same apart from that resize")
    s = t.min_size[-1]  # eval uses the last of the training sizes
    coco = " (COCO images become about 800 x 1067)" if s == 800 else ""
    return ModelSpec(name, group, "torchvision", (s, s),
                     f"the transform's min_size {s} (max_size {t.max_size}); a square {s} x {s} input goes "
                     f"through unresized{coco}", size_kw="min_size", det_max_size=t.max_size)


def published(spec: ModelSpec) -> dict | None:
    """torchvision's own figures for the model's default weights: ``num_params`` and
    ``_ops`` (documented as GFLOPS, in fact multiply-adds: resnet50's is 4.09)."""
    if spec.source != "torchvision":
        return None
    import torchvision.models as tvm

    try:
        w = tvm.get_model_weights(spec.arch).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None
    return {"weights": str(w), "num_params": w.meta.get("num_params"), "gops": w.meta.get("_ops")}
