"""Figures from the selected rows: latency vs GMACs / parameters, per-unit
breakdowns, latency by execution mode. ``plan`` lists every figure the records
allow (the pages link exactly these); ``draw_png`` renders one to PNG bytes."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable

from common import catalogue
from common.render.markdown import MODEL_ORDER, PRESETS, preset_title
from common.render.select import Mode, Results, Row


@dataclass(frozen=True)
class Figure:
    tag: str  # device
    name: str  # file name under <results>/figures/
    title: str  # link text
    page: str  # the results page that links it: latency | modes
    draw: Callable[[Any], None]  # draws on a matplotlib Figure


# Latency scatter plots: (Row.values key, axis label, link text, file-name part).
SCATTERS = (("gmacs", "GMACs", "latency vs GMACs", "gmacs"),
            ("params_m", "parameters (M)", "latency vs parameters", "params"))


def plan(res: Results) -> list[Figure]:
    """Every figure the records allow."""
    out = []
    for dev in res.devices_with("timing"):
        for preset in PRESETS:
            rows = [r for r in res.of("timing", dev.tag) if r.preset == preset]
            for key, axis, link, slug in SCATTERS if rows else ():
                out.append(Figure(dev.tag, f"latency_vs_{slug}_{dev.tag}_{preset}.png", f"{link}, {PRESETS[preset]}",
                                  "latency", _scatter(rows, key, axis, f"{dev.name}, {preset_title(preset)}")))
    for dev in res.devices_with("layers"):
        rows = [r for r in res.of("layers", dev.tag) if r.preset == "cityscapes"]
        if rows:
            out.append(Figure(dev.tag, f"layers_{dev.tag}_cityscapes.png", "per-unit breakdown, Cityscapes", "latency",
                              _breakdown(rows, f"Per-unit mean latency, {dev.name}, {preset_title('cityscapes')}")))
    for tag in sorted({k[0] for k in res.modes if k[3]}):
        for preset in PRESETS:
            entries = {k: e for k, e in sorted(res.modes.items()) if k[0] == tag and k[2] == preset}
            if len({k[3] for k in entries}) > 1:
                name = next(iter(entries.values())).device_name
                out.append(Figure(tag, f"modes_{tag}_{preset}.png", f"latency by execution mode, {PRESETS[preset]}",
                                  "modes", _modes_bars(entries, f"Median latency by mode, {name}, "
                                                                f"{preset_title(preset)}")))
    return out


def links(res: Results, figures: list[Figure], prefix: str, page: str | None = None) -> str:
    """A bullet per device linking its figures (of one page, or all)."""
    by_dev: dict[str, list[Figure]] = {}
    for f in figures:
        if page is None or f.page == page:
            by_dev.setdefault(f.tag, []).append(f)
    if not by_dev:
        return "No figures: no records to draw them from.\n"
    names = {d.tag: d.name for d in res.devices}
    names.update({k[0]: e.device_name for k, e in res.modes.items() if k[0] not in names})
    return "\n".join(f"- {names.get(tag, tag)}: " + ", ".join(f"[{f.title}]({prefix}/{f.name})" for f in figs)
                     for tag, figs in by_dev.items()) + "\n"


def draw_png(figure: Figure) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display on the measuring machines
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(8, 5), layout="constrained")
    figure.draw(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def _modes_bars(entries: dict[tuple, Mode], title: str) -> Callable[[Any], None]:
    """Grouped bars: one group per model, one bar per execution mode (log scale)."""

    def draw(fig: Any) -> None:
        from matplotlib import colormaps

        ax = fig.add_subplot()
        model_names = [m for m in MODEL_ORDER if any(k[1] == m for k in entries)]
        variants = sorted({k[3] for k in entries},
                          key=lambda v: (-max(e.median_ms for k, e in entries.items() if k[3] == v), v))
        width = 0.8 / len(variants)
        cmap = colormaps["tab10"]
        for j, v in enumerate(variants):
            xs, ys = [], []
            for i, m in enumerate(model_names):
                e = next((e for k, e in entries.items() if k[1] == m and k[3] == v), None)
                if e:
                    xs.append(i + (j - (len(variants) - 1) / 2) * width)
                    ys.append(e.median_ms)
            label = next(e.mode for k, e in entries.items() if k[3] == v)
            ax.bar(xs, ys, width=width, color=cmap(j % 10), label=label, zorder=3)
        ax.set_xticks(range(len(model_names)), [catalogue.display(m) for m in model_names], fontsize=9)
        ax.set_yscale("log")
        ax.set_ylim(top=8 * max(e.median_ms for e in entries.values()))  # room for the legend
        ax.set_ylabel("median latency (ms, log scale)")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left", ncols=2)

    return draw


def _scatter(rows: list[Row], key: str, label: str, title: str) -> Callable[[Any], None]:
    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        xs, ys = [r.values[key] for r in rows], [r.values["median_ms"] for r in rows]
        ax.scatter(xs, ys, color="tab:blue", zorder=3)
        for r, x, y in zip(rows, xs, ys):
            ax.annotate(catalogue.display(r.model), (x, y), xytext=(5, 4), textcoords="offset points", fontsize=9)
        ax.set_xlabel(label)
        ax.set_ylabel("median latency (ms)")
        ax.set_title(title, fontsize=10)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.margins(x=0.15, y=0.15)
        ax.grid(alpha=0.3)

    return draw


def _breakdown(rows: list[Row], title: str) -> Callable[[Any], None]:
    """One horizontal bar per model, stacked by unit in execution order. Models
    have different units, so colour encodes position in the network (input to
    output), and segments large enough are labelled with their unit."""

    def draw(fig: Any) -> None:
        from matplotlib import cm, colormaps, colors

        ax = fig.add_subplot()
        cmap = colormaps["viridis"]
        # A label fits when its segment spans a fixed share of the widest bar.
        min_label_ms = 0.07 * max(sum(ms for _, ms in r.values["units"]) for r in rows)
        for y, r in enumerate(rows):
            units, left = r.values["units"], 0.0
            for i, (label, ms) in enumerate(units):
                ax.barh(y, ms, left=left, color=cmap(i / max(len(units) - 1, 1)), edgecolor="white", linewidth=0.4)
                if ms >= min_label_ms:
                    ax.text(left + ms / 2, y, label, ha="center", va="center", fontsize=7, color="white")
                left += ms
            ax.plot([r.values["whole_mean_ms"]] * 2, [y - 0.45, y + 0.45], color="black", linewidth=1.5)
        ax.set_yticks(range(len(rows)), [catalogue.display(r.model) for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel("mean latency (ms); black line: whole model without hooks")
        ax.set_title(title, fontsize=10)
        fig.colorbar(cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap=cmap), ax=ax,
                     label="unit position (0 = first, 1 = last)")

    return draw
