"""Records: the machine-readable truth of one run, its paths, atomic writes.

A record is ``{schema, kind, device_tag, request, env, code_version, result,
superseded}``, one JSON file at ``results/records/<device_tag>/<kind>/<stem>.json``.
Every table, ``.txt`` and figure is rendered from records (``common.render``).
``superseded`` is null, or the reason a later change to the measuring code made
this record's numbers stale; renderers show such records as superseded.
"""
from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path

from common.errors import UserError
from common.spec import Request

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
SCHEMA = 2  # bump when a record's layout changes; readers report other versions as problems
FIELDS = ("kind", "device_tag", "request", "env", "code_version", "result")


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


def dumps(rec: dict) -> str:
    return json.dumps(_finite(rec), indent=1, allow_nan=False) + "\n"


def record_dir(results: Path, tag: str, kind: str) -> Path:
    return Path(results) / "records" / tag / kind


def record_path(results: Path, tag: str, kind: str, stem: str) -> Path:
    return record_dir(results, tag, kind) / f"{stem}.json"


def path_of(rec: dict, results: Path = RESULTS, stem: str | None = None) -> Path:
    stem = stem or Request.from_dict(rec["request"]).stem
    return record_path(results, rec["device_tag"], rec["kind"], stem)


def write_record(path: Path, record: dict) -> None:
    ensure_writable(path.parent)
    write_atomic(path, dumps(record))


def load_records(results: Path = RESULTS) -> tuple[list[dict], list[str]]:
    """Every record under ``results/records``; malformed or other-schema files
    are returned as problems (named), never mixed in."""
    records, problems = [], []
    for p in sorted((Path(results) / "records").rglob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"{p}: unreadable ({exc})")
            continue
        if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
            got = rec.get("schema") if isinstance(rec, dict) else None
            problems.append(f"{p}: schema {got!r}, expected {SCHEMA}")
            continue
        missing = [k for k in FIELDS if k not in rec]
        if missing:
            problems.append(f"{p}: missing {', '.join(missing)}")
            continue
        rec["_path"] = str(p)
        records.append(rec)
    return records, problems
