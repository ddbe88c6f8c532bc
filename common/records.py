"""Records: the machine-readable truth of one run, its paths, atomic writes.

A record is ``{schema, kind, device_tag, request, env, code_version, result,
superseded}``, one JSON file at ``results/records/<device_tag>/<kind>/<stem>.json``.
Every table, ``.txt`` and figure is rendered from records (``common.render``).
``superseded`` is null, or the reason a later change to the measuring code made
this record's numbers stale; renderers show such records as superseded.

Records accumulate: a new run never destroys an older one. When ``write_record``'s
target already holds a record of another run (another ``env.date``), that file is
first moved, by a hard link (or a no-clobber rename) under a free name, to
``<kind>/history/<stem>/<its UTC date>.json``; the main path always holds the
newest run. ``load_records(..., history=True)`` also returns the history records,
each marked ``_history: True`` (the renderer's selection considers them; readers
that want one current record per request leave them out, the default).
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import math
import os
import re
import subprocess
import tempfile
from pathlib import Path

from common.errors import UserError
from common.record import FIELDS, SCHEMA, InvalidRecord, Record  # noqa: F401 - re-exported: the loading side
from common.spec import Request

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def _new_file_mode() -> int:
    """Mode a plain open() would give a new file under the current umask
    (mkstemp's temp files are 0600, which the rename would otherwise keep)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temp file in the same folder + rename: readers never see a
    half-written file and a failed run never clobbers the previous one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def ensure_writable(folder: Path) -> Path:
    """Create ``folder`` and prove it is writable before any long measurement."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot write to output folder {str(folder)!r}: {exc.strerror or exc}") from None
    return folder


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """The git commit of the measuring code and whether the tree had changes
    (``dirty``); both None outside a git checkout (e.g. a copied tree)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    if os.environ.get("BP_CODE_COMMIT"):
        # A copied tree (the GPU machine's) may carry a stale .git: the sender names the commit.
        return {"commit": os.environ["BP_CODE_COMMIT"], "dirty": os.environ.get("BP_CODE_DIRTY") == "1"}
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", "common", "*.py", "*.sh")
    return {"commit": commit, "dirty": None if status is None or commit is None else bool(status)}


def make_record(kind: str, device_tag: str, request: dict, env: dict, result: dict) -> dict:
    return {"schema": SCHEMA, "kind": kind, "device_tag": device_tag, "request": request, "env": env,
            "code_version": code_version(), "result": result, "superseded": None}


def measured(rec: dict) -> dict:
    """The request as measured: a fastest search's request in the mode it picked."""
    picked = (rec["result"].get("fastest") or {}).get("picked_mode")
    return {**rec["request"], **picked} if picked else rec["request"]


def _finite(value: object) -> object:
    """JSON has no NaN/Infinity: refuse them before anything is written."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r} in a record")
    if isinstance(value, dict):
        for v in value.values():
            _finite(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _finite(v)
    return value


# A list of numbers is written on one line: the records travel with the tree to the GPU
# machine, whose copy is capped, and per-unit raw samples were most of their size. The
# pattern needs json.dumps's raw newlines, which no JSON string holds: text is never touched.
_NUMBER_LIST = re.compile(r"\[\n\s*(-?\d[\d.eE+-]*(?:,\n\s*-?\d[\d.eE+-]*)*)\n\s*\]")


def dumps(rec: dict) -> str:
    text = json.dumps(_finite(rec), indent=1, allow_nan=False)
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def record_dir(results: Path, tag: str, kind: str) -> Path:
    return Path(results) / "records" / tag / kind


def record_path(results: Path, tag: str, kind: str, stem: str) -> Path:
    return record_dir(results, tag, kind) / f"{stem}.json"


def path_of(rec: dict, results: Path = RESULTS, stem: str | None = None) -> Path:
    stem = stem or Request.from_dict(rec["request"]).stem
    return record_path(results, rec["device_tag"], rec["kind"], stem)


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


def _run_date(rec: object) -> str | None:
    env = rec.get("env") if isinstance(rec, dict) else None
    date = env.get("date") if isinstance(env, dict) else None
    return date if isinstance(date, str) else None


def _history_name(old: object, path: Path) -> str:
    """A sortable name for the earlier run: its UTC date (else the file's modification time)."""
    when = _when(old) or dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
    return when.strftime("%Y%m%dT%H%M%S") + (f".{when.microsecond:06d}" if when.microsecond else "") + "Z"


def _keep_earlier(path: Path, record: dict, data: str) -> Path | None:
    """Give the run now at ``path`` a second name under its history folder when
    ``record`` (serialised as ``data``) is another run; returns that name (None: nothing there, or the same run).
    A hard link, never a copy: the old file is never absent, never clobbered."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        old = json.loads(text)
    except ValueError:
        old = None  # not readable as a record: kept all the same (load_records names it a problem)
    if old is not None and _run_date(old) is not None and _run_date(old) == _run_date(record):
        return None  # the same run re-written (e.g. marked superseded): replaced in place
    if old == json.loads(data):
        return None
    folder = history_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    base = _history_name(old, path)
    for n in range(1, 1000):
        target = folder / (f"{base}.json" if n == 1 else f"{base}_{n}.json")
        try:
            os.link(path, target)  # fails when the name is taken: never overwrites an earlier run
            return target
        except FileExistsError:
            continue
        except OSError:  # no hard links on this file system: a rename under a free name
            if target.exists():
                continue
            os.rename(path, target)
            return target
    raise UserError(f"cannot keep the earlier run of {str(path)!r}: too many runs with the same date")


def write_record(path: Path, record: dict) -> None:
    """Write ``record`` at ``path`` atomically; an earlier run there is kept under
    ``history_dir(path)`` first (see the module doc). If the write fails, the
    earlier run stays at ``path``."""
    path = Path(path)
    ensure_writable(path.parent)
    data = dumps(record)  # a record that cannot be written moves nothing
    kept = _keep_earlier(path, record, data)
    try:
        write_atomic(path, data)
    except BaseException:
        if kept is not None:
            if path.exists():
                os.unlink(kept)  # hard link: the earlier run is still at path
            else:
                os.rename(kept, path)  # renamed: put it back
        raise


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
            raw = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"{p}: unreadable ({exc})")
            continue
        try:
            records.append(Record.from_dict(raw, p, hist).to_dict())
        except InvalidRecord as exc:
            problems.append(f"{p}: {exc}")
    if history:
        _inherit_superseded(records)
    return records, problems


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
        if (_when(earlier) or low) <= (_when(newer) or low):
            earlier["superseded"] = (f"{newer['superseded']} (an earlier run of {short(newer['_path'])}, "
                                     "which is marked so)")
    return earlier


def _when(rec: object) -> dt.datetime | None:
    """A record's run date in UTC; None when it has none."""
    try:
        return utc(_run_date(rec) or "")
    except ValueError:
        return None
