"""The measuring context of one process: its device, environment and tag, its device's
peaks, and where its records go (``common.run.Session``, re-exported there)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from common import paths, records
from common import env as envmod
from common.measure import peak
from common.spec import Request


@dataclass
class Session:
    """One process's measuring context: the device, its environment and tag, and
    where records and rendered files go."""

    device: torch.device
    root: Path = records.ROOT  # family folders and results/ live under it
    tag: str | None = None  # device folder; None: derived from the device
    env: dict = field(default_factory=dict)
    # A driver's session: records are saved with their kernel profile pending, and
    # ``add_kernels`` takes it after every timed loop of the process has run.
    defer_kernels: bool = False
    # The entry point's renderer of a saved record's .txt (rec, root) -> path: measuring
    # never imports rendering, so the caller that renders hands it in.
    write_txt: Callable[[dict, Path], Path | None] | None = None

    def __post_init__(self) -> None:
        self.env = self.env or envmod.collect(self.device)
        self.tag = paths.plain(self.tag or envmod.device_tag(self.env), "device tag")
        self.peaks = peak.load(self.tag, self.results)

    @property
    def results(self) -> Path:
        return Path(self.root) / "results"

    def record_path(self, req: Request) -> Path:
        return records.record_path(self.results, self.tag_of(req), req.kind, req.stem)

    def tag_of(self, req: Request) -> str:
        return "any" if req.kind == "structure" else self.tag  # a structure does not depend on the device

    def prepare(self, req: Request) -> Path:
        """Prove the record's folder writable before anything is measured (the entry
        point that renders the record's .txt proves that folder too)."""
        return records.ensure_writable(self.record_path(req).parent)
