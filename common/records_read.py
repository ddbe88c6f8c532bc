"""Reading records: where the earlier runs of a record are kept, and loading.

Records live at ``results/records/<device_tag>/<kind>/<stem>.json``; the earlier runs
of one (``common.records.write_record`` keeps them) under
``<kind>/history/<stem>/<UTC date>.json``. ``load_records`` validates every record
(``Record.from_dict``) and names each file it cannot read; with ``history=True`` it
also returns the earlier runs, each marked ``_history: True`` (the renderer's selection
considers them; readers that want one current record per request leave them out, the
default). Everything here is re-exported by ``common.records``.
"""
from __future__ import annotations

import datetime as dt
import json
import marshal
from pathlib import Path

from common.record import FIELDS, SCHEMA, InvalidRecord, Record

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


HISTORY = "history"  # <kind>/history/<stem>/<UTC date>.json: earlier runs of <kind>/<stem>.json


def history_dir(path: Path) -> Path:
    """Where the earlier runs of the record at ``path`` are kept."""
    path = Path(path)
    return path.parent / HISTORY / path.stem


def is_history(path: Path) -> bool:
    """Whether ``path`` is an earlier run kept under a ``history`` folder."""
    parts = Path(path).parts
    return len(parts) >= 3 and parts[-3] == HISTORY


def utc(text: str) -> dt.datetime:
    """A record's date in UTC (records carry an offset; a bare timestamp is taken as
    UTC, as ``env.collect`` writes it). ValueError when it is not a date."""
    when = dt.datetime.fromisoformat(text)
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when.astimezone(dt.timezone.utc)


def is_record(obj: object) -> bool:
    """Whether ``obj`` has this schema's layout: a dict of schema SCHEMA with every field."""
    return isinstance(obj, dict) and obj.get("schema") == SCHEMA and all(k in obj for k in FIELDS)


def run_date(rec: object) -> str | None:
    """A record's ``env.date`` (None when it has none)."""
    env = rec.get("env") if isinstance(rec, dict) else None
    date = env.get("date") if isinstance(env, dict) else None
    return date if isinstance(date, str) else None


def run_when(rec: object) -> dt.datetime | None:
    """A record's run date in UTC; None when it has none."""
    try:
        return utc(run_date(rec) or "")
    except ValueError:
        return None


def load_history(path: Path) -> list[dict]:
    """The valid earlier runs of the record at ``path`` (``_path`` and ``_history`` set)."""
    try:
        newer = {**json.loads(Path(path).read_text(encoding="utf-8")), "_path": str(path)}
    except (OSError, ValueError):
        newer = None
    out = []
    for p in sorted(history_dir(path).glob("*.json")):
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        try:
            out.append(_inherit(Record.from_dict(rec, p, history=True).to_dict(), newer))
        except InvalidRecord:
            continue  # named by load_records; never published
    return out


def short(path: Path | str) -> str:
    """A record's path from its device folder on: ``<tag>/<kind>/[history/<stem>/]<name>.json``."""
    parts = Path(path).parts
    return "/".join(parts[-5:] if is_history(path) else parts[-3:])


def load_record(path: Path) -> dict:
    """The record at ``path``, validated (``Record.from_dict``), as the renderers read it;
    InvalidRecord naming the path and the reason when it cannot be read or is invalid."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return Record.from_dict(raw, path).to_dict()
    except InvalidRecord as exc:
        raise InvalidRecord(f"{path}: invalid record ({exc})") from None
    except (OSError, ValueError) as exc:
        raise InvalidRecord(f"{path}: unreadable ({exc})") from None


def load_records(results: Path = RESULTS, history: bool = False) -> tuple[list[dict], list[str]]:
    """Every record under ``results/records``, validated (``Record.from_dict``); a file
    that cannot be read or is invalid is returned as a problem (its path and the reason),
    never mixed in. ``history``: also the earlier runs kept under ``<kind>/history/``
    (marked ``_history: True``)."""
    records, problems = [], []
    root = Path(results) / "records"
    for p in sorted(root.rglob("*.json")):
        rel = p.relative_to(root).parts  # <tag>/<kind>/<stem>.json or <tag>/<kind>/history/<stem>/<date>.json
        hist = len(rel) == 5 and rel[2] == HISTORY
        if hist and not history:
            continue
        try:
            data = p.read_bytes()
        except OSError as exc:
            problems.append(f"{p}: unreadable ({exc})")
            continue
        rec, problem = _validated(data)
        if problem is not None:
            problems.append(f"{p}: {problem}")
            continue
        rec["_path"] = str(p)  # where to_dict puts it: after the fields, before _history
        if hist:
            rec["_history"] = True
        records.append(rec)
    if history:
        _inherit_superseded(records)
    return records, problems


# A render reads every record several times (each page's renderer loads them), and a test
# process renders the same records again and again: validating ~1,300 records costs about
# a second each time. The validated form of a file's exact bytes is kept (its path and
# history mark are added on load), so a file that changed in any way is validated anew.
# Each load gets its own copy (marshal): a caller may change what it was given.
_VALIDATED: dict[bytes, bytes | str] = {}
_VALIDATED_MAX_BYTES = 512 * 2**20  # past this much kept (records and their copies), start over
_validated_bytes = 0


def _validated(data: bytes) -> tuple[dict | None, str | None]:
    """(the record in ``data`` as ``Record.to_dict`` gives it, less ``_path`` and ``_history``,
    None), or (None, why it cannot be published)."""
    global _validated_bytes
    kept = _VALIDATED.get(data)
    if kept is None:
        try:
            raw = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            kept = f"unreadable ({exc})"
        else:
            try:
                kept = marshal.dumps(Record.from_dict(raw).to_dict())
            except InvalidRecord as exc:
                kept = str(exc)
        if _validated_bytes > _VALIDATED_MAX_BYTES:
            _VALIDATED.clear()
            _validated_bytes = 0
        _VALIDATED[data] = kept
        _validated_bytes += len(data) + len(kept)
    return (None, kept) if isinstance(kept, str) else (marshal.loads(kept), None)


def _inherit_superseded(recs: list[dict]) -> None:
    main = {r["_path"]: r for r in recs if not r.get("_history")}
    for r in recs:
        if r.get("_history"):
            p = Path(r["_path"])
            _inherit(r, main.get(str(p.parents[2] / f"{p.parent.name}.json")))


def _inherit(earlier: dict, newer: dict | None) -> dict:
    """An earlier run of a record marked superseded is stale too (it was measured with
    code at least as old): it takes the mark, in memory, unless it has its own."""
    if newer and newer.get("superseded") and not earlier.get("superseded"):
        low = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        if (run_when(earlier) or low) <= (run_when(newer) or low):
            earlier["superseded"] = (f"{newer['superseded']} (an earlier run of {short(newer['_path'])}, "
                                     "which is marked so)")
    return earlier
