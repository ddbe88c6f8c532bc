"""The Pareto frontier of accuracy against latency, and its figure (the zoo's
``results/figures/zoo_pareto_<device>_<input>.png``, drawn by ``common.render.zoo``)."""
from __future__ import annotations

import io
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    model: str
    latency_ms: float
    top1: float


def frontier(points: list[Point]) -> list[Point]:
    """Points no other point beats on both axes (lower or equal latency and higher top-1,
    or lower latency and equal top-1), fastest first."""
    best: list[Point] = []
    top = float("-inf")
    for p in sorted(points, key=lambda p: (p.latency_ms, -p.top1, p.model)):
        if p.top1 > top:
            best.append(p)
            top = p.top1
    return best


def pareto_png(series: dict[str, list[Point]], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=110)
    style = {"eager": ("o", "tab:blue", "eager fp32"), "fastest": ("^", "tab:orange", "fastest mode")}
    for slot, pts in series.items():
        if not pts:
            continue
        marker, color, label = style[slot]
        ax.scatter([p.latency_ms for p in pts], [p.top1 for p in pts], marker=marker, color=color, alpha=0.35,
                   s=22, label=f"{label} (all models)")
        best = frontier(pts)
        ax.plot([p.latency_ms for p in best], [p.top1 for p in best], marker=marker, color=color, lw=1.8,
                ms=7, drawstyle="steps-post", label=f"{label}: Pareto frontier")
        for p in best:
            ax.annotate(p.model, (p.latency_ms, p.top1), xytext=(4, 3 if slot == "eager" else -10),
                        textcoords="offset points", fontsize=7, color=color)
    ax.set_xscale("log")
    ax.set_xlabel("measured latency, median (ms, log scale), batch 1")
    ax.set_ylabel("ImageNet top-1 of the published weights (%)")
    ax.set_title(f"Accuracy against latency: {title}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
