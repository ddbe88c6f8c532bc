"""The Record class: one record's layout, checked and its numbers validated in this
one place when it is loaded (``common.records.load_records`` / ``load_record``,
``scripts/import_records.py``), before any renderer reads it."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

SCHEMA = 2  # bump when a record's layout changes; readers report other versions as problems
FIELDS = ("kind", "device_tag", "request", "env", "code_version", "result")


class InvalidRecord(ValueError):
    """A record that cannot be published, and why (one line)."""


# Result keys that hold a duration, a rate or a count of time: never negative.
_NON_NEGATIVE = ("fps", "images_per_s", "iters", "warmup")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _time_key(key: str) -> bool:
    return key.endswith(("_ms", "_s")) or key in _NON_NEGATIVE


def _check_values(value: object, where: str, timed: bool = False) -> None:
    """Every number finite; under a time key (``*_ms``, ``*_s``, FPS...) not negative;
    a loop's raw samples as many as its stated ``iters``."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRecord(f"{where} is {value!r}, not a finite number")
    if timed and _is_number(value) and value < 0:
        raise InvalidRecord(f"{where} is {value!r}, a negative time")
    if isinstance(value, dict):
        samples, iters = value.get("samples_ms"), value.get("iters")
        if isinstance(samples, list) and _is_number(iters) and len(samples) != iters:
            raise InvalidRecord(f"{where}: {len(samples)} samples_ms but iters {iters}")
        for k, v in value.items():
            _check_values(v, f"{where}.{k}", timed or (isinstance(k, str) and _time_key(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_values(v, f"{where}[{i}]", timed)


@dataclass
class Record:
    """One record as loaded: its layout checked and its numbers validated
    (``from_dict``), in this one place, before any renderer reads it.

    ``model`` is the model's metadata (``common.registry.metadata``: family, display
    name, library, expected parameters, published top-1), absent from records made
    before it was stored (``common.catalogue`` supplies it then). Other top-level keys
    are kept as they are (``extra``)."""

    kind: str
    device_tag: str
    request: dict
    env: dict
    code_version: dict | None
    result: dict
    superseded: str | None = None
    model: dict | None = None
    schema: int = SCHEMA
    path: str | None = None  # where it was read from
    history: bool = False  # an earlier run kept under history/
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: object, path: Path | str | None = None, history: bool = False) -> "Record":
        """The record ``d`` (as parsed from JSON); InvalidRecord naming the reason otherwise."""
        if not isinstance(d, dict):
            raise InvalidRecord(f"not a JSON object ({type(d).__name__})")
        if d.get("schema") != SCHEMA:
            raise InvalidRecord(f"schema {d.get('schema')!r}, expected {SCHEMA}")
        missing = [k for k in FIELDS if k not in d]
        if missing:
            raise InvalidRecord(f"missing {', '.join(missing)}")
        for key, kinds in (("kind", str), ("device_tag", str), ("request", dict), ("env", dict),
                           ("result", dict), ("code_version", (dict, type(None))),
                           ("superseded", (str, type(None))), ("model", (dict, type(None)))):
            if not isinstance(d.get(key), kinds):
                raise InvalidRecord(f"{key} is {type(d.get(key)).__name__}")
        _check_values({k: d[k] for k in ("request", "env", "code_version", "model") if d.get(k)}, "record")
        _check_values(d["result"], "result")
        names = {f.name for f in fields(cls)}
        return cls(**{k: d[k] for k in names if k in d and k not in ("path", "history", "extra")},
                   path=None if path is None else str(path), history=history,
                   extra={k: v for k, v in d.items() if k not in names and not k.startswith("_")})

    def to_dict(self) -> dict:
        """The record as the renderers read it: its JSON layout, ``_path`` and ``_history`` beside."""
        out = {**self.extra, "schema": self.schema, "kind": self.kind, "device_tag": self.device_tag,
               "request": self.request, "env": self.env, "code_version": self.code_version, "result": self.result,
               "superseded": self.superseded}
        if self.model is not None:
            out["model"] = self.model
        if self.path is not None:
            out["_path"] = self.path
        if self.history:
            out["_history"] = True
        return out
