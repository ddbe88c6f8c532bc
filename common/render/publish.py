"""The publishing rule: which of a key's records a table publishes.

Records accumulate (earlier runs are kept under ``<kind>/history/``, see
``common.records``); every table states a minimum protocol per device type
(``STATED``): what ``./profile.sh`` runs by default there, its 'quick' protocol
(``common.protocol.PRESETS``, read, never retyped):

- on the CPU (and any device type other than CUDA): at least the quick protocol's
  warm-up iterations and at least the fewest timed samples it can keep (its
  ``iters``, or ``CAP_FLOOR`` where its ``cap_s`` may end a slow loop first);
- on a CUDA GPU: at least its warm-up iterations and a timed loop at least as
  long as the quick one: its ``iters`` timed samples, or a loop that a
  ``--max-seconds`` budget of at least its ``max_seconds`` stopped (``stopped_early``).

Compared are the timed loop's warm-up (``result.timing.warmup``) and its samples
(``len(result.timing.samples_ms)``, ``samples``): what was run, not what was asked.
Warm-up seconds and repeats are not compared (records before those options exist
have neither; repeats only add a spread). The rule reads the whole-model inference
loop (``result.timing``: timing, per-unit and mode records); records without one
(memory, training steps, layer sets) always meet it. A record below it is a
*reduced protocol* run. Among the runs of one key, ``rank`` orders: current before
superseded (whatever the protocol), then meeting the stated protocol before
reduced, then newest, then path; ``published`` takes the first.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from common import protocol as protocols
from common.render.markdown import utc

REDUCED = "reduced protocol"  # the mark of a row whose record is below the stated protocol


@dataclass(frozen=True)
class Protocol:
    """The minimum protocol a table states for one device type (see the module doc)."""

    name: str  # the device type's words: 'CPU', 'GPU'
    warmup: int  # at least this many warm-up iterations
    samples: int  # at least this many timed samples ...
    budget_s: float | None = None  # ... or a timed loop that a --max-seconds budget at least this long stopped

    def met_by(self, timing: dict, request: dict) -> bool:
        if timing["warmup"] < self.warmup:
            return False
        if samples(timing) >= self.samples:
            return True
        budget = protocols.from_request(request).max_seconds
        return self.budget_s is not None and bool(timing.get("stopped_early")) and budget is not None \
            and budget >= self.budget_s

    @property
    def text(self) -> str:
        loop = f"at least {self.samples} timed samples"
        if self.budget_s is not None:
            loop += f" or a timed loop stopped by a --max-seconds budget of at least {self.budget_s:g} s"
        return f"{self.name}: at least {self.warmup} warm-up iteration{'s' * (self.warmup != 1)} and {loop}"


def samples(timing: dict) -> int:
    """How many timed samples a loop took: its raw samples (a record slimmed of them: its ``iters``)."""
    return len(timing["samples_ms"]) if "samples_ms" in timing else int(timing["iters"])


@functools.lru_cache(maxsize=1)
def stated_protocols() -> dict[str, Protocol]:
    """Per device type, what ./profile.sh runs there by default (its quick preset)."""
    out = {}
    for dev, words in (("cpu", "CPU"), ("cuda", "GPU")):
        q = protocols.preset("quick", dev)
        fewest = protocols.CAP_FLOOR if q.cap_s else q.iters
        out[dev] = Protocol(words, q.warmup, fewest, None if q.cap_s else q.max_seconds)
    return out


def __getattr__(name: str) -> object:
    """``STATED``: the named constant {device type: Protocol}, built on first use (see ``stated_protocols``)."""
    if name == "STATED":
        return stated_protocols()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def stated(device_type: str) -> Protocol:
    """The protocol the tables state for ``device_type`` (CUDA: the GPU's; anything else: the CPU's)."""
    return stated_protocols()["cuda" if device_type == "cuda" else "cpu"]


def stated_text() -> str:
    """The stated protocols in one sentence, for table headers and footnotes."""
    return "; ".join(p.text for p in stated_protocols().values())


def own_protocol(request: dict) -> Protocol:
    """What a record's own protocol promises: its warm-up, and its ``min_iters`` samples under
    a time budget (``CAP_FLOOR`` where a cap may end the loop first) or else all its ``iters``."""
    p = protocols.from_request(request)
    fewest = (protocols.CAP_FLOOR if p.cap_s else p.min_iters) if p.max_seconds is not None else p.iters
    return Protocol(f"its own protocol ({p.name})", p.warmup, fewest)


def verdict_protocol(rec: dict, zoo: bool) -> Protocol:
    """The protocol a record's .txt is judged against: a zoo model's record (``zoo``), or one
    made with the zoo's preset, against its own protocol (the zoo's, or the one it was given);
    any other against the tables' stated protocol."""
    if zoo or protocols.from_request(rec["request"]).name == "zoo":
        return own_protocol(rec["request"])
    return stated(rec["env"]["device_type"])


def meets(rec: dict) -> bool:
    """Whether ``rec`` was made with at least the stated protocol of its device type
    (a record without a timed loop always is)."""
    timing = rec["result"].get("timing")
    if not isinstance(timing, dict):
        return True
    return stated(rec["env"]["device_type"]).met_by(timing, rec["request"])


def rank(rec: dict) -> tuple:
    """Sort key of competing records: current before superseded, then at least the
    stated protocol before reduced, then newest, then path."""
    return (not rec.get("superseded"), meets(rec), utc(rec["env"]["date"]), rec["_path"])


def published(candidates: list[dict]) -> dict:
    """The record a table publishes among the runs of one key (the highest ``rank``)."""
    return max(candidates, key=rank)
