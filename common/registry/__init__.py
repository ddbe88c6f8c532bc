"""The one catalogue: every model the project knows, looked up by name.

Entries carry their builder, family (the ``<family>_profiler/`` folder of their
outputs), unit rules for per-unit timing (the depths a driver runs are data here,
not shell), tags and the expected parameter count where it is known:

- ``backbones.py``: the seeds' backbones (ResNet-18..152, MobileNet-V2, Xception)
  and seed 004's VGGs, with hand-written unit rules;
- ``zoo.py``: the model zoo of the burden table (torchvision classification,
  segmentation and detection models, and a list of timm models);
- ``generic.py``: any other torchvision classification/segmentation model (or a
  segmentation model's ``.backbone``) and any timm model, family ``zoo``, with
  generic units traced from the module tree.

``get(name)`` looks in the catalogue, then in torchvision and timm; an unknown
name is one line naming the closest names of all of them. Build options that
change the architecture (``Options``: output stride, multi-scale features) travel
with the request: ``build_for(req, device)`` / ``units_for(req, model)``.

    python -m common list [--tag TAG]
"""
from __future__ import annotations

import difflib
from typing import Iterable

import torch
from torch import nn

from common import catalogue
from common.errors import UserError
from common.registry.backbones import BACKBONE_ENTRIES, Entry, Unit, UnitsFn  # noqa: F401 - re-exported
from common.registry.generic import DEFAULT, Options  # noqa: F401 - re-exported

TAGS = catalogue.TAGS


def _catalogue() -> dict[str, Entry]:
    return {e.name: e for e in BACKBONE_ENTRIES}


REGISTRY: dict[str, Entry] = _catalogue()


def names(tag: str | None = None, family: str | None = None) -> list[str]:
    """Catalogue names in catalogue order, filtered by tag and/or family; tag
    ``zoo``: the burden zoo's classification and timm models (the zoo sweep's list)."""
    if tag == "zoo":
        from common.registry import zoo

        return [n for n in zoo.zoo_names("classification") + zoo.zoo_names("timm")
                if family is None or (REGISTRY[n].family if n in REGISTRY else "zoo") == family]
    return [e.name for e in REGISTRY.values()
            if (tag is None or tag in e.tags) and (family is None or e.family == family)]


BACKBONES: tuple[str, ...] = tuple(names("backbone"))
# Seed 004's order: its VGGs first, then its ResNets.
SEED004: dict[str, int] = {n: REGISTRY[n].train_batch  # type: ignore[misc]
                           for n in sorted(names("train-bench"), key=lambda n: REGISTRY[n].family != "vgg")}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(e.family for e in REGISTRY.values()))


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.6)


def get(name: str, options: Options | None = None) -> Entry:
    """The entry of ``name`` (built with ``options``: output stride, features);
    an unknown name is one error naming the closest names of the catalogue,
    torchvision and timm."""
    opts = options or DEFAULT
    entry = REGISTRY.get(name)
    if entry is not None:
        return entry if opts.is_default else _catalogue_variant(entry, opts)
    from common.registry import generic

    found = generic.lookup(name, opts)
    if found is not None:
        return found
    if name in generic.detection_names():
        raise UserError(f"{name} is a torchvision detection model: the timers take classification and "
                        "segmentation models and backbones (its costs: python -m common burden)")
    pool = list(dict.fromkeys(list(REGISTRY) + generic.all_names()))
    near = close_matches(name.removeprefix("timm/"), pool)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; the catalogue: {', '.join(REGISTRY)}"
    raise UserError(f"unknown model {name!r}: not in the catalogue, torchvision or timm{hint} "
                    "(python -m common list)")


def _catalogue_variant(entry: Entry, opts: Options) -> Entry:
    """A catalogue backbone built with non-default options (same family, so its
    outputs stay in its folder; the request's stem says ``_os8``/``_features``)."""
    from dataclasses import replace

    from common.registry import generic

    if opts.output_stride != 32:
        if entry.source != "torchvision" or not entry.name.startswith("resnet"):
            raise UserError(f"{entry.name} has no output-stride option (torchvision's ResNets and timm models "
                            "with output_stride have one; for Xception: timm's aligned xception41/65/71)")
        if entry.block == "BasicBlock":
            raise UserError(f"{entry.name}: torchvision dilates only Bottleneck ResNets; "
                            f"timm/{entry.name} supports --output-stride")
    group = "classification"
    if entry.source == "timm":
        builder = generic.timm_builder(entry.name if entry.name != "xception" else "legacy_xception", opts, False)
    else:
        builder = generic.torchvision_builder(entry.name, group, opts)
    variant = replace(entry, builder=builder)
    if opts.features:  # the module tree changed: generic units
        z = generic.ZooEntry(**{f: getattr(variant, f) for f in entry.__dataclass_fields__}, options=opts,
                             notes=(opts.describe(),))
        return replace(z, units=lambda m, d, z=z: generic.generic_units(z, m, d), depths=(1, 2))
    return variant


def options_of(req: object) -> Options:
    return Options(getattr(req, "output_stride", 32), getattr(req, "features", False))


def family_models(family: str) -> list[str]:
    return names(family=family)


def build(name: str, device: torch.device | str = "cpu", options: Options | None = None) -> nn.Module:
    """The unmodified model, random weights, in eval mode, on ``device``. On
    ``meta`` it is built in place: shapes only, no memory, no initialisation cost
    (or on the CPU and moved, for a constructor that computes with tensor values)."""
    entry = get(name, options)
    if torch.device(device).type == "meta":
        if entry.family == "zoo" or not (options or DEFAULT).is_default:
            from common.registry.generic import meta_build

            return meta_build(entry.builder).eval()
        with torch.device("meta"):
            return entry.builder().eval()
    if torch.device(device).type == "cuda":
        try:  # initialise on the GPU: a large model's random init on the host takes seconds
            with torch.device(device):
                return entry.builder().eval().to(device)
        except Exception:  # noqa: BLE001 - a constructor that computes on host values: build on the CPU
            torch.cuda.empty_cache()
    return entry.builder().eval().to(device)


def check_depth(name: str, depth: int, options: Options | None = None) -> Entry:
    """The entry of ``name``; one error when per-unit ``depth`` is not one its rules define."""
    entry = get(name, options)
    if depth not in entry.depths:
        raise UserError(f"--depth {depth} is not defined for {name} (its unit depths: "
                        f"{', '.join(map(str, entry.depths))})")
    return entry


def units(name: str, model: nn.Module, depth: int = 1, options: Options | None = None) -> list[Unit]:
    entry = check_depth(name, depth, options)
    return entry.units(model, depth)


def build_for(req: object, device: torch.device | str) -> nn.Module:
    """The model of a request (its build options applied) on ``device``."""
    return build(req.model, device, options_of(req))  # type: ignore[attr-defined]


def units_for(req: object, model: nn.Module) -> list[Unit]:
    return units(req.model, model, req.depth, options_of(req))  # type: ignore[attr-defined]


def check_input(req: object) -> None:
    """One line (exit 2) when the request's model cannot take its input size or
    cannot be built with its options; a meta-device pass, nothing allocated."""
    from common.registry import generic

    entry = get(req.model, options_of(req))  # type: ignore[attr-defined]
    inp = req.input  # type: ignore[attr-defined]
    if entry.family == "zoo" or not options_of(req).is_default:
        generic.check_size(entry, inp.height, inp.width)


def metadata(req: object) -> dict:
    """What the renderer needs of a request's model, stored in its record (``Record.model``)
    so that rendering never asks the registry: family (output folder), display name,
    library, expected parameter count and the published top-1 of its weights."""
    entry = get(req.model, options_of(req))  # type: ignore[attr-defined]
    return {"family": entry.family, "display": entry.display, "source": entry.source,
            "expected_params": entry.expected_params,
            "top1": catalogue.top1(req.model, entry.source)}  # type: ignore[attr-defined]


def notes(name: str, options: Options | None = None) -> tuple[str, ...]:
    """How a model is built, where that is not plain (dynamic image size, options)."""
    return getattr(get(name, options), "notes", ())
