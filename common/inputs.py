"""Input presets, ``HxW`` parsing and seeded input tensors."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.errors import UserError

if TYPE_CHECKING:  # torch only where a tensor is made: records and the renderer read presets without it
    import torch

# (height, width) of the seeds' task inputs; batch 1 as in the seeds.
PRESETS: dict[str, tuple[int, int]] = {
    "cityscapes": (1024, 2048),
    "pascal": (500, 334),  # PASCAL VOC 2012 as the seeds sized it: H=500, W=334
    "imagenet": (224, 224),
}
SEED = 0  # one fixed seed so every run times the same input values


@dataclass(frozen=True)
class InputSpec:
    name: str  # preset name, or "HxW" for a custom size
    height: int
    width: int
    batch: int = 1
    channels: int = 3

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.channels, self.height, self.width)

    @property
    def tag(self) -> str:
        """File-name part: ``cityscapes``, ``64x64``, ``pascal_b8``."""
        return self.name if self.batch == 1 else f"{self.name}_b{self.batch}"

    def describe(self) -> str:
        return f"{self.name} ({'x'.join(map(str, self.shape))})"


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(-?\d+)\s*[xX]\s*(-?\d+)\s*", text)
    if not m:
        raise UserError(f"size {text!r} is not HxW (e.g. 512x1024)")
    h, w = int(m.group(1)), int(m.group(2))
    if h <= 0 or w <= 0:
        raise UserError(f"size {text!r} must have positive height and width")
    return h, w


def resolve(preset: str | None, size: str | None, batch: int = 1) -> InputSpec:
    """``--input PRESET`` or ``--size HxW`` (size wins when both are given)."""
    if batch <= 0:
        raise UserError(f"batch {batch} must be at least 1")
    if size is not None:
        h, w = parse_size(size)
        return InputSpec(f"{h}x{w}", h, w, batch)
    name = preset or "cityscapes"
    if name not in PRESETS:
        raise UserError(f"unknown input preset {name!r}; choose from: {', '.join(PRESETS)}")
    h, w = PRESETS[name]
    return InputSpec(name, h, w, batch)


def is_size(item: str) -> bool:
    return "x" in item and item[:1].isdigit()


def argv(item: str) -> list[str]:
    """A preset name or HxW as an entry point's flags (``--input`` or ``--size``)."""
    return ["--size", item] if is_size(item) else ["--input", item]


def of(item: str) -> InputSpec:
    """A preset name or HxW, resolved."""
    return resolve(None, item) if is_size(item) else resolve(item, None)


def check_fits(spec: InputSpec, min_side: int, model: str) -> None:
    if min(spec.height, spec.width) < min_side:
        raise UserError(
            f"input {spec.height}x{spec.width} is too small for {model}: "
            f"height and width must be at least {min_side}"
        )


def make(spec: InputSpec, device: torch.device | str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A seeded standard-normal tensor created directly on ``device`` (float32 unless ``dtype``)."""
    import torch

    dtype = torch.float32 if dtype is None else dtype
    gen = torch.Generator(device=device).manual_seed(SEED)
    return torch.randn(spec.shape, generator=gen, device=device, dtype=dtype)
