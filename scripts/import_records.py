"""Bring the records of a run made elsewhere (the GPU machine's ``records.tgz``, a
colleague's results folder) into this repository's results, the way a local run
writes them: each through ``records.write_record``, so an earlier run at the same
path is kept under ``history/`` and nothing is lost. Then render
(``python -m common.render``).

    python scripts/import_records.py RUN.tgz|DIR [...] [--results DIR] [--dry-run]

Archives and folders are read in the order given (give them oldest first). Only
``results/records/<tag>/<kind>/<stem>.json`` members are taken; earlier runs kept by
the other machine (``history/``) and anything else are skipped and counted. A
member that is not a valid record (``common.records.Record``: layout, finite
non-negative times, sample counts), whose device tag or kind is not its folder's, or
whose path climbs out of ``results/records`` (``..``, an absolute path, a symlink) is
named on stderr and refused; the exit status is then 1.
"""
from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path, PurePosixPath
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import paths, records  # noqa: E402
from common import errors  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.parsers import maintenance  # noqa: E402

PROG = "scripts/import_records.py"


def members(source: Path) -> Iterator[tuple[PurePosixPath, bytes | None]]:
    """(path relative to the repository root, bytes) of every JSON file in a tarball or
    folder; bytes None for a folder's file that resolves outside the folder (a symlink)."""
    if source.is_dir():
        for p in sorted(source.rglob("*.json")):
            rel = PurePosixPath(p.relative_to(source).as_posix())
            try:
                paths.inside(p, source)
            except UserError:
                yield rel, None
                continue
            yield rel, p.read_bytes()
        return
    try:
        with tarfile.open(source) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name.endswith(".json"):
                    name = m.name
                    while name.startswith("./"):
                        name = name[2:]
                    yield PurePosixPath(name), tar.extractfile(m).read()  # type: ignore[union-attr]
    except (OSError, tarfile.TarError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(":")
        raise UserError(f"cannot read {str(source)!r} as a tar archive or a folder ({first})") from None


def target(rel: PurePosixPath, results: Path) -> Path | None:
    """Where a member goes: ``[results/]records/<tag>/<kind>/<stem>.json`` only (an
    archive of the repository, or a results folder given as a folder); None: skipped.
    A member that climbs out (``..``, an absolute path, a name that is not plain, a
    folder of ``results`` that is a symlink to elsewhere) is a UserError."""
    parts = rel.parts
    if rel.is_absolute() or ".." in parts:
        raise UserError("its path climbs out of the results folder")
    if records.HISTORY in parts or "records" not in parts:
        return None
    i = parts.index("records")
    if parts[:i] not in ((), ("results",)) or len(parts) - i != 4:
        return None
    return records.record_path(results, parts[i + 1], parts[i + 2], PurePosixPath(parts[i + 3]).stem)


def check(rec: object, path: Path) -> dict:
    """``rec`` when it is a record that belongs at ``path``: its device tag and kind are
    its folders' (they place its .txt when rendered); else a ValueError saying why."""
    if not records.is_record(rec):
        raise ValueError(f"not a schema-{records.SCHEMA} record")
    records.Record.from_dict(rec)  # the loader's validation: what cannot be published is not taken
    tag, kind = path.parent.parent.name, path.parent.name
    for field, want in (("device_tag", tag), ("kind", kind)):
        if rec[field] != want:  # type: ignore[index]
            raise ValueError(f"its {field} {rec[field]!r} is not its folder {want!r}")  # type: ignore[index]
    return rec  # type: ignore[return-value]


def import_one(source: Path, results: Path, dry_run: bool, counts: dict) -> None:
    for rel, data in members(source):
        try:
            if data is None:
                raise UserError("it is a link to a file outside the folder")
            path = target(rel, results)
        except UserError as exc:
            sys.stderr.write(f"{PROG}: {source.name}:{rel}: refused ({exc})\n")
            counts["bad"] += 1
            continue
        if path is None:
            counts["skipped"] += 1
            continue
        try:
            rec = check(json.loads(data), path)
        except ValueError as exc:
            sys.stderr.write(f"{PROG}: {source.name}:{rel}: skipped ({exc})\n")
            counts["bad"] += 1
            continue
        existed = path.exists()
        same = existed and json.loads(path.read_text(encoding="utf-8")) == rec
        counts["unchanged" if same else "replaced" if existed else "new"] += 1
        if not dry_run and not same:
            records.write_record(path, rec)


def main(argv: list[str] | None = None) -> int:
    ap = maintenance.import_records(PROG, __doc__.splitlines()[0])
    args = ap.parse_args(argv)
    counts = {"new": 0, "replaced": 0, "unchanged": 0, "skipped": 0, "bad": 0}
    try:
        for source in args.sources:
            if not source.exists():
                raise UserError(f"no such file or folder: {str(source)!r}")
            import_one(source, args.results, args.dry_run, counts)
    except UserError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    except OSError as exc:
        sys.stderr.write(f"{PROG}: error: {errors.os_error_line(exc)}\n")
        return errors.WriteFailed.exit_code
    print(f"{counts['new']} new, {counts['replaced']} replaced (the earlier run kept under history/), "
          f"{counts['unchanged']} unchanged, {counts['skipped']} not records of results/records (skipped), "
          f"{counts['bad']} refused or unreadable" + (" (dry run: nothing written)" if args.dry_run else ""))
    return 1 if counts["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
