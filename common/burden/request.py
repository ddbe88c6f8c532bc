"""A burden request (one model's record ``request``) and the burden record kinds;
torch-free, so that the record store and the renderer read them without the analysis."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from common import catalogue

KIND = "burden"
RUN_KIND = "burden-run"  # the record of one full run (date, model count, minutes)
DEVICE_TAG = "any"  # meta-device costs: the same on every machine
SEED_SCALES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)  # burden.m: req.scales = 0.5:0.5:3
SEED_BATCH = 128  # burden.m: req.batchSize = 128


@dataclass(frozen=True)
class BurdenRequest:
    """Everything one model's burden depends on; its record's ``request``."""

    model: str
    size: tuple[int, int] | None = None  # None: the model's typical size
    batch: int = SEED_BATCH  # of the sweep (real CPU runs use 1)
    scales: tuple[float, ...] = SEED_SCALES
    peak: bool = True  # measure the CPU peak in the worker
    peak_max_gmacs: float = 160.0
    peak_max_mib: float = 8192.0
    peak_threads: int = 1
    peak_timeout_s: float = 300.0
    real_max_seconds: float = 10.0  # skip sweep sizes whose real CPU run would take longer

    @property
    def stem(self) -> str:
        return catalogue.stem(self.model) + (f"_{self.size[0]}x{self.size[1]}" if self.size else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        return {"kind": KIND, **d, "size": list(self.size) if self.size else None, "scales": list(self.scales)}

    @classmethod
    def from_dict(cls, d: dict) -> "BurdenRequest":
        d = {k: v for k, v in d.items() if k != "kind"}
        return cls(**{**d, "size": tuple(d["size"]) if d.get("size") else None, "scales": tuple(d["scales"])})
