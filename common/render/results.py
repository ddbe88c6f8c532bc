"""What the selection (``common.render.select``) gives the tables: one Row per
default-mode record, the execution Modes, and Results, which holds them all."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from common import catalogue
from common.render.markdown import PRESETS, day, model_key, short_name
from common.render.publish import REDUCED


@dataclass(frozen=True)
class Row:
    """One default-mode record, reduced to what the tables print.

    ``values`` holds the numbers (unrounded, units in the key names);
    ``facts`` the header facts (versions, flags, protocol) as strings."""

    kind: str
    tag: str  # device folder: results/records/<tag>/...
    model: str
    preset: str
    date: dt.datetime  # UTC
    path: str
    device_name: str
    device_type: str
    values: dict = field(hash=False)
    facts: dict = field(hash=False)
    superseded: str | None = None
    reduced: bool = False  # below the stated protocol (see the module doc)

    @property
    def flags(self) -> str:
        """The Flag cell: the trust flags (NOISY, ...) and the reduced-protocol mark."""
        return ", ".join(f for f in (self.facts.get("noisy", ""), REDUCED if self.reduced else "") if f)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.tag, self.model, self.preset)

    @property
    def day(self) -> str:
        return day(self.date)


@dataclass(frozen=True)
class Device:
    tag: str
    name: str
    type: str  # cuda | cpu
    short: str  # column label


@dataclass(frozen=True)
class Mode:
    """One execution mode's whole-model timing on one device/model/preset."""

    mode: str
    median_ms: float
    mean_ms: float
    fps: float
    tflops: float | None
    of_peak: float | None
    date: dt.datetime
    device_name: str
    fastest: bool = False  # picked by a fastest search, then measured with the full protocol
    search_iters: int | None = None  # a search's brief sample of this mode (no full record of it)
    superseded: str | None = None
    reduced: bool = False  # a record below the stated protocol
    path: str = ""
    budget: str = ""  # 'timed 43% of a 1 s budget': its loop was cut short (evidence.budget_timed)


@dataclass
class Results:
    rows: dict[tuple[str, str, str, str], Row]  # one row per (kind, tag, model, preset)
    problems: list[str]
    modes: dict[tuple[str, str, str, str], Mode] = field(default_factory=dict)  # (tag, model, preset, variant)
    train: dict = field(default_factory=dict)  # (tag, model, input tag) -> train-timing record
    benches: dict = field(default_factory=dict)  # (tag, layer set) -> layer-bench record
    # (tag, mode, preset) -> {"span": [(model, coverage)], "kernel": [...], "busy": [...], "spread": [...]}
    evidence: dict = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)  # paths of the records named in problems: never published

    def get(self, kind: str, tag: str, model: str, preset: str) -> Row | None:
        return self.rows.get((kind, tag, model, preset))

    def of(self, kind: str, tag: str | None = None) -> list[Row]:
        """Rows of one kind (and device), in table order: model, then preset."""
        rows = [r for r in self.rows.values() if r.kind == kind and (tag is None or r.tag == tag)]
        return sorted(rows, key=lambda r: (model_key(r.model), list(PRESETS).index(r.preset)))

    @property
    def devices(self) -> list[Device]:
        """Every device with a row; GPUs first. Name/type from the device's newest row."""
        newest: dict[str, Row] = {}
        for r in self.rows.values():
            if r.tag not in newest or r.date > newest[r.tag].date:
                newest[r.tag] = r
        shorts = {t: short_name(r.device_name) for t, r in newest.items()}
        # Two folders of the same model of device (e.g. --tag per machine): label them by folder.
        label = {t: s if list(shorts.values()).count(s) == 1 else f"{s} ({t})" for t, s in shorts.items()}
        devs = [Device(t, r.device_name, r.device_type, label[t]) for t, r in newest.items()]
        return sorted(devs, key=lambda d: (d.type != "cuda", d.tag))

    def devices_with(self, kind: str) -> list[Device]:
        return [d for d in self.devices if self.of(kind, d.tag)]

    def models(self) -> list[str]:
        """The seeds' six backbones always; other models only when measured."""
        seen = {r.model for r in self.rows.values()}
        return sorted((m for m in set(catalogue.BACKBONES) | seen), key=model_key)
