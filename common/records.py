"""Records: the machine-readable truth of one run, its paths, atomic writes.

A record is ``{schema, kind, device_tag, request, env, code_version, result,
superseded}``, one JSON file at ``results/records/<device_tag>/<kind>/<stem>.json``.
Every table, ``.txt`` and figure is rendered from records (``common.render``).
``superseded`` is null, or the reason a later change to the measuring code made
this record's numbers stale; renderers show such records as superseded.

Records accumulate: a new run never destroys an older one. When ``write_record``'s
target already holds a record of another run (another ``env.run_id``; records from
before run ids: another ``env.date``), that file is first moved, by a hard link (or a
no-clobber rename) under a free name, to ``<kind>/history/<stem>/<its UTC date>.json``;
the main path always holds the newest run (an older one written later goes straight
to history). Writers lock the record's folder, so concurrent runs of one request each
keep their record, and a run is never listed twice. Loading (``load_records``, the
history records with ``history=True``) lives in ``common.records_read``, re-exported here.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import math
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from common import errors, paths
from common.errors import UserError, WriteFailed
from common.paths import write_atomic  # noqa: F401 (one home; callers use records.write_atomic)
from common.record import FIELDS, SCHEMA, InvalidRecord, Record  # noqa: F401 - re-exported: the loading side
from common.records_read import (HISTORY, RESULTS, ROOT, history_dir, is_history, is_record,  # noqa: F401
                                 load_history, load_record, load_records, run_date, run_when, short,
                                 utc)  # re-exported: one home for reading records
from common.spec import Request


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
    """``results/records/<tag>/<kind>/<stem>.json``; each part a plain name and the
    whole resolving under ``results/records`` (a tag from input never climbs out)."""
    for name, what in ((tag, "device tag"), (kind, "record kind"), (stem, "file name")):
        paths.plain(name, what)
    return paths.inside(record_dir(results, tag, kind) / f"{stem}.json", Path(results) / "records", "record path")


def path_of(rec: dict, results: Path = RESULTS, stem: str | None = None) -> Path:
    stem = stem or Request.from_dict(rec["request"]).stem
    return record_path(results, rec["device_tag"], rec["kind"], stem)



def _history_name(old: object, path: Path) -> str:
    """A sortable name for the earlier run: its UTC date (else the file's modification time)."""
    when = run_when(old) or dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
    return when.strftime("%Y%m%dT%H%M%S") + (f".{when.microsecond:06d}" if when.microsecond else "") + "Z"


def _same_run(a: object, b: object) -> bool:
    """Whether two records are one run (one re-written, e.g. marked superseded): the
    same ``env.run_id``; records from before run ids by their date (1 s resolution)."""
    ids = [(r.get("env") or {}).get("run_id") if isinstance(r, dict) else None for r in (a, b)]
    if all(ids):
        return ids[0] == ids[1]
    return run_date(a) is not None and run_date(a) == run_date(b)


def _read(path: Path) -> tuple[str | None, object]:
    """The text at ``path`` (None: no file) and its JSON (None: not readable as JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    try:
        return text, json.loads(text)
    except ValueError:
        return text, None  # not readable as a record: kept all the same (load_records names it a problem)


def _in_history(folder: Path, base: str, rec: object, path: Path | None = None) -> Path | None:
    """The file under ``folder`` that already keeps this run (the same file as ``path``,
    or a record of the same run), so that history never lists a run twice."""
    names = re.compile(re.escape(base) + r"(_\d+)?\.json")
    for cand in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path is not None and os.path.samefile(cand, path):
            return cand
        if rec is not None and names.fullmatch(cand.name) and _same_run(_read(cand)[1], rec):
            return cand
    return None


def _free_names(folder: Path, base: str):
    for n in range(1, 1000):
        yield folder / (f"{base}.json" if n == 1 else f"{base}_{n}.json")
    raise UserError(f"cannot keep an earlier run under {str(folder)!r}: too many runs with the same date")


def _keep_earlier(path: Path, old: object, record: dict, data: str) -> Path | None:
    """Give the run now at ``path`` (parsed: ``old``) a second name under its history
    folder when ``record`` (serialised as ``data``) is another run; returns that new
    name (None: nothing there, the same run, or a run history already keeps).
    A hard link, never a copy: the old file is never absent, never clobbered."""
    if _same_run(old, record) or old == json.loads(data):
        return None  # the same run re-written (e.g. marked superseded): replaced in place
    folder = history_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    base = _history_name(old, path)
    if _in_history(folder, base, old, path) is not None:
        return None  # kept by a write that was killed before it replaced the record
    for target in _free_names(folder, base):
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
    return None


def _into_history(path: Path, record: dict, data: str) -> Path:
    """An older run than the one at ``path`` is kept under history, the newer one stays
    current; a run history already keeps is not listed again."""
    folder = history_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    base = _history_name(record, path)
    there = _in_history(folder, base, record)
    if there is not None:
        return there
    tmp = paths.temp_name(path)
    write_atomic(tmp, data)
    try:
        for target in _free_names(folder, base):
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
    finally:
        paths.unlink(tmp)
    raise UserError(f"cannot keep an earlier run under {str(folder)!r}")


def _newer(old: object, record: dict) -> bool:
    """Whether the run at the main path is newer than ``record`` (then it stays current)."""
    a, b = run_when(old), run_when(record)
    return a is not None and b is not None and a > b


def write_record(path: Path, record: dict, then: Callable[[], object] | None = None) -> Path:
    """Write ``record`` at ``path`` atomically, the folder locked: concurrent writers of
    one request each keep their run. An earlier run there is kept under
    ``history_dir(path)`` first (see the module doc); a record older than the run at
    ``path`` goes straight to history, the newer one staying current. ``then`` (the
    ``.txt`` rendered from the new record) runs once the record is in place; if the
    record or ``then`` fails, the earlier record is put back, so record and ``.txt`` are
    replaced together or not at all. Returns where the record was written. An OSError
    ends as a WriteFailed naming the path and the cause."""
    path = Path(path)
    if path.suffix == ".json" and path.parent.parent.parent.name == "records":
        paths.inside(path, path.parent.parent.parent, "record path")
    ensure_writable(path.parent)
    data = dumps(record)  # a record that cannot be written moves nothing
    try:
        with paths.locked(path.parent):
            for stale in paths.stale_temps(path, "tmp|bak\\.tmp"):
                paths.unlink(stale)
            text, old = _read(path)
            if text is not None and not _same_run(old, record) and _newer(old, record):
                return _into_history(path, record, data)
            return _replace(path, old if text is not None else None, text is not None, record, data, then)
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise WriteFailed(errors.os_error_line(exc) + "; the earlier record and its .txt are unchanged") from None


def _replace(path: Path, old: object, existed: bool, record: dict, data: str,
             then: Callable[[], object] | None) -> Path:
    backup = None
    if existed:  # a second name for the earlier file, to put it back if anything fails
        backup = paths.temp_name(path, "bak.tmp")
        try:
            os.link(path, backup)
        except OSError:
            backup = None
    kept = None
    try:
        kept = _keep_earlier(path, old, record, data) if existed else None
        write_atomic(path, data)
        if then is not None:
            then()
    except BaseException:
        _put_back(path, existed, backup, kept)
        raise
    finally:
        if backup is not None:
            paths.unlink(backup)
    return path


def _put_back(path: Path, existed: bool, backup: Path | None, kept: Path | None) -> None:
    """After a failed write: the earlier record at ``path`` again (or no record, as
    before), its history entry made by this write removed, no empty history folder."""
    if backup is not None:
        if not (path.exists() and os.path.samefile(backup, path)):
            os.replace(backup, path)
    elif not existed:
        paths.unlink(path)
    elif kept is not None and not path.exists():
        os.rename(kept, path)  # renamed (no hard links): put it back
        kept = None
    if kept is not None:
        paths.unlink(kept)
    with contextlib.suppress(OSError):
        history_dir(path).rmdir()  # only when empty
