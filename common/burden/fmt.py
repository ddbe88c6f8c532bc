"""How the burden outputs print numbers: MiB, SI prefixes, sizes, signed percentages.
The one place burden figures are rounded (markdown tables: ``common.render.markdown``)."""
from __future__ import annotations

import math

from common.derive import MIB

ROOT_LABEL = "(model)"  # the per-layer row of the ops in the model's own forward


def mib(b: float | None) -> str:
    if b is None:
        return "-"
    v = b / MIB
    return f"{v:,.0f} MiB" if v >= 100 else f"{v:.1f} MiB" if v >= 1 else f"{v:.2f} MiB"


def mem(b: float) -> str:
    """Binary units for the sweep's large figures (convnet-burden prints MB/GB/TB too)."""
    for step, unit in ((2**40, "TiB"), (2**30, "GiB")):
        if b >= 10 * step:
            return f"{b / step:,.1f} {unit}"
    return mib(b)


def si(n: float | None) -> str:
    if n is None:
        return "-"
    for step, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= step:
            v = n / step
            return f"{v:.3g} {prefix}" if v < 100 else f"{v:,.0f} {prefix}"
    return f"{n:.0f}"


def num(v: float) -> str:
    if v >= 1e6:
        return si(v)
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def size(s) -> str:
    return f"{s[0]} x {s[1]}"


def pct(ours: float, seed: float) -> float:
    """Relative difference in percent: (ours - seed) / seed."""
    return (ours - seed) / seed * 100


def signed(p: float) -> str:
    return f"{p:+.0f}%".replace("-", "\u2212")


def describe(shapes: list[list[int]] | None, batch_first: bool = True) -> str:
    """``512 x 7 x 7``: a feature map's shape without its batch dimension (``batch_first``)
    or the whole shape; of a multi-tensor output (detection backbones' maps, detections)
    the largest tensor, and how many others there are."""
    if not shapes:
        return "-"
    big = max(shapes, key=math.prod)
    dims = big[1:] if batch_first else big
    text = " x ".join(map(str, dims)) or "scalar"
    return text + (f" (largest of {len(shapes)})" if len(shapes) > 1 else "")
