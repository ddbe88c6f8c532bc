"""Records (the machine-readable result of one run), atomic writes, output paths."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from common.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
SCHEMA = 1  # bump when a record's layout changes; readers skip other versions


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


def make_record(kind: str, spec: dict, env: dict, result: dict) -> dict:
    return {"schema": SCHEMA, "kind": kind, "spec": spec, "env": env, "result": result}


def record_dir(results: Path, tag: str, kind: str) -> Path:
    return Path(results) / "records" / tag / kind


def record_path(results: Path, tag: str, kind: str, stem: str) -> Path:
    return record_dir(results, tag, kind) / f"{stem}.json"


def write_record(path: Path, record: dict) -> None:
    ensure_writable(path.parent)
    write_atomic(path, json.dumps(record, indent=1) + "\n")


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
        missing = [k for k in ("kind", "spec", "env", "result") if k not in rec]
        if missing:
            problems.append(f"{p}: missing {', '.join(missing)}")
            continue
        rec["_path"] = str(p)
        records.append(rec)
    return records, problems
