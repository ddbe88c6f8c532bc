"""The one catalogue: every model the project knows, looked up by name.

Entries carry their builder, family (the ``<family>_profiler/`` folder of their
outputs), unit rules for per-unit timing (the depths a driver runs are data here,
not shell), tags and the expected parameter count where it is known:

- ``backbones.py``: the seeds' backbones (ResNet-18..152, MobileNet-V2, Xception)
  and seed 004's VGGs, with hand-written unit rules;
- ``zoo.py``: the model zoo of the burden table (torchvision classification,
  segmentation and detection models, and a list of timm models).

    python -m common.registry list [--tag TAG]
"""
from __future__ import annotations

import difflib
from typing import Iterable

import torch
from torch import nn

from common.errors import UserError
from common.registry.backbones import BACKBONE_ENTRIES, Entry, Unit, UnitsFn  # noqa: F401 - re-exported

# Tags: 'backbone' (the seeds' six tables), 'train-bench' (seed 004's nine, with the
# batch in Entry.train_batch), 'catalogue' (every entry of backbones.py), 'zoo'.
TAGS = ("backbone", "train-bench", "catalogue", "zoo")


def _catalogue() -> dict[str, Entry]:
    return {e.name: e for e in BACKBONE_ENTRIES}


REGISTRY: dict[str, Entry] = _catalogue()


def names(tag: str | None = None, family: str | None = None) -> list[str]:
    """Catalogue names in catalogue order, filtered by tag and/or family."""
    return [e.name for e in REGISTRY.values()
            if (tag is None or tag in e.tags) and (family is None or e.family == family)]


BACKBONES: tuple[str, ...] = tuple(names("backbone"))
# Seed 004's order: its VGGs first, then its ResNets.
SEED004: dict[str, int] = {n: REGISTRY[n].train_batch  # type: ignore[misc]
                           for n in sorted(names("train-bench"), key=lambda n: REGISTRY[n].family != "vgg")}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(e.family for e in REGISTRY.values()))


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.6)


def get(name: str) -> Entry:
    """The entry of ``name``; an unknown name is one error naming the closest names."""
    try:
        return REGISTRY[name]
    except KeyError:
        near = close_matches(name, REGISTRY)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; choose from: {', '.join(REGISTRY)}"
        raise UserError(f"unknown model {name!r}{hint} (python -m common.registry list)") from None


def family_models(family: str) -> list[str]:
    return names(family=family)


def build(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """The unmodified model, random weights, in eval mode, on ``device``. On
    ``meta`` it is built in place: shapes only, no memory, no initialisation cost."""
    if torch.device(device).type == "meta":
        with torch.device("meta"):
            return get(name).builder().eval()
    return get(name).builder().eval().to(device)


def units(name: str, model: nn.Module, depth: int = 1) -> list[Unit]:
    entry = get(name)
    if depth not in entry.depths:
        raise UserError(f"--depth {depth} is not defined for {name}: its unit depths are "
                        f"{', '.join(map(str, entry.depths))}")
    return entry.units(model, depth)
