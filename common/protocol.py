"""Protocol: how one request's timed loops run, one frozen value with named presets.

A protocol is time-budgeted as well as counted: after the warm-up (``warmup``
iterations and at least ``warmup_s`` seconds, ended by a device synchronise), the
timed loop takes at least ``min_iters`` samples and at least ``max_seconds`` of
timed work, at most ``iters`` samples, and within ``cap_s``: no sample starts that
would end past it (judged from the mean so far), though never fewer than
``CAP_FLOOR``. A fast request thus gets many samples and a slow one a few. Every
request carries its protocol (``common.spec.Request.protocol``) and every record
its request; a record made before protocols were named has its protocol derived
from the request fields it kept (``from_request``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

# The fewest samples a loop stopped by ``cap_s`` keeps: two give a spread, and a
# slow request (a CPU at Cityscapes size, seconds per iteration) cannot afford more.
CAP_FLOOR = 2
# Even with --max-seconds, never derive statistics from fewer samples than this.
MIN_ITERS = 5
DEVICE_TYPES = ("cpu", "cuda")


@dataclass(frozen=True)
class Protocol:
    name: str = "seeds"  # a preset's name; 'custom' once a value was changed
    warmup: int = 25  # the seeds' protocol: 25 warm-up iterations ...
    iters: int = 300  # ... then 300 timed (here: at most)
    max_seconds: float | None = None  # at least this long timed once min_iters ran; None: all iters
    min_iters: int = MIN_ITERS  # at least this many samples (unless cap_s ends the loop first)
    warmup_s: float = 0.0  # the warm-up lasts at least this long too
    repeats: int = 1  # the protocol N times on fresh instances (whole-model loops)
    cap_s: float | None = None  # no sample starts that would end past this (see the module doc)
    unit_iters: int | None = None  # per-unit hooked loop: at most this many samples (None: as iters)

    def __post_init__(self) -> None:
        for key in ("warmup_s",) + (("max_seconds",) if self.max_seconds is not None else ()) \
                + (("cap_s",) if self.cap_s is not None else ()):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"protocol {key} must be a finite number of seconds, 0 or more (got {v!r})")
        if self.warmup < 0 or self.iters < 1 or self.min_iters < 1 or self.repeats < 1 \
                or (self.unit_iters is not None and self.unit_iters < 1):
            raise ValueError(f"protocol counts out of range: {self}")

    def with_changes(self, **changes: object) -> "Protocol":
        """This protocol with some values changed; named 'custom' when any differs."""
        new = replace(self, **changes)  # type: ignore[arg-type]
        same = all(getattr(new, k) == getattr(self, k) for k in changes)
        return new if same or "name" in changes else replace(new, name="custom")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Protocol":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def text(self) -> str:
        """The protocol in words, for headers and tables."""
        loop = f"{self.warmup} warm-up" + (f" (at least {self.warmup_s:g} s)" if self.warmup and self.warmup_s else "")
        if self.max_seconds is None:
            timed = f"{self.iters} timed iterations"
        else:
            timed = (f"at least {self.min_iters} timed iterations and {self.max_seconds:g} s, at most {self.iters}"
                     + (f", within {self.cap_s:g} s (never below {CAP_FLOOR})" if self.cap_s else ""))
        reps = f", {self.repeats} repeats on fresh instances" if self.repeats > 1 else ""
        return f"{self.name}: {loop} + {timed}{reps}"


PRESETS: dict[tuple[str, str], Protocol] = {
    # The seeds' protocol, three repeats on a GPU (their spread is reported).
    ("full", "cpu"): Protocol("full", 25, 300, warmup_s=1.0),
    ("full", "cuda"): Protocol("full", 25, 300, warmup_s=1.0, repeats=3),
    # ./profile.sh's default. CPU: ten samples and a second of timed work, within 12 s
    # per loop (every catalogue model at PASCAL size gets its ten on a 2-core machine;
    # at Cityscapes size, seconds an iteration, the slow ones keep two); the per-unit
    # hooked loop keeps two samples, so the whole job stays within ten minutes.
    ("quick", "cpu"): Protocol("quick", 1, 300, max_seconds=1.0, min_iters=10, warmup_s=1.0, cap_s=12.0,
                               unit_iters=2),
    ("quick", "cuda"): Protocol("quick", 25, 300, max_seconds=0.5, min_iters=5, warmup_s=0.5, repeats=2),
    # python -m common zoo: hundreds of models, one bounded loop each. CPU: as quick's
    # whole-model loop (ten samples and a second, within 12 s), at most 100 samples.
    ("zoo", "cpu"): Protocol("zoo", 1, 100, max_seconds=1.0, min_iters=10, warmup_s=1.0, cap_s=12.0),
    ("zoo", "cuda"): Protocol("zoo", 10, 100, max_seconds=2.0, min_iters=10, warmup_s=1.0),
    # Images/s at each batch of the throughput search.
    ("throughput", "cpu"): Protocol("throughput", 3, 50, max_seconds=1.0, min_iters=3, warmup_s=1.0),
    ("throughput", "cuda"): Protocol("throughput", 3, 50, max_seconds=1.0, min_iters=3, warmup_s=1.0),
}
NAMES = tuple(dict.fromkeys(name for name, _ in PRESETS))


def device_type(device: str) -> str:
    return "cpu" if str(device).startswith("cpu") else "cuda"


def preset(name: str, device: str) -> Protocol:
    """The preset ``name`` for ``device`` ('cpu', 'cuda', 'cuda:0')."""
    try:
        return PRESETS[(name, device_type(device))]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; one of {', '.join(NAMES)}") from None


# What a request kept before protocols were named (the Request's defaults of the time).
_OLD_DEFAULTS = {"warmup": 25, "iters": 300, "max_seconds": None, "min_iters": 5, "warmup_s": 0.0, "repeats": 1}


def from_request(req: dict) -> Protocol:
    """A recorded request's protocol: its own, or, for a record made before protocols
    were named, the one its loop fields describe, named after the preset it equals
    (on its device type) or 'custom'."""
    if isinstance(req.get("protocol"), dict):
        return Protocol.from_dict(req["protocol"])
    values = {k: req.get(k, v) if req.get(k, v) is not None or k == "max_seconds" else v
              for k, v in _OLD_DEFAULTS.items()}
    derived = Protocol("custom", **values)
    for (name, dev), p in PRESETS.items():
        if dev == device_type(req.get("device", "cpu")) and replace(p, name="custom") == derived:
            return p
    return derived


def samples_for(p: Protocol, iter_s: float) -> int:
    """How many samples ``p``'s timed loop takes of a request whose every iteration
    lasts ``iter_s`` seconds (what ``timing.run_loop`` does, without running it)."""
    n = 0
    while True:
        n += 1
        if stop_after(p, n, n * iter_s):
            return n


def stop_after(p: Protocol, n: int, elapsed_s: float, iters: int | None = None) -> bool:
    """Whether a timed loop of ``p`` ends after ``n`` samples taking ``elapsed_s``
    (``iters``: the count cap when not ``p.iters``, e.g. the per-unit loop's)."""
    if n >= (iters or p.iters):
        return True
    if p.max_seconds is None:
        return False
    if n >= p.min_iters and elapsed_s >= p.max_seconds:
        return True
    return p.cap_s is not None and n >= CAP_FLOOR and elapsed_s + elapsed_s / n > p.cap_s
