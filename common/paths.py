"""Paths built from input (plain names, containment under a root); a folder lock; atomic writes.

A tag, a record kind, a file stem or an archive member becomes part of a path;
one that climbs out (``..``, an absolute path, a symlink pointing elsewhere) would
write outside the results folder. Every such name is checked here, and every
path built from one is proved to resolve under its root before anything is written.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from common.errors import UserError

# Letters, digits, '-', '_', '.'; never '.' or '..' (they name a folder, not a file).
PLAIN = re.compile(r"[A-Za-z0-9_.-]+")


def plain_problem(name: object) -> str | None:
    """Why ``name`` is not a plain file or folder name; None when it is one."""
    if not isinstance(name, str) or not name:
        return "is empty" if name == "" else f"is not a name ({type(name).__name__})"
    if name in (".", ".."):
        return "names a folder, not a file"
    if not PLAIN.fullmatch(name):
        return "may hold only letters, digits, '-', '_' and '.'"
    return None


def plain(name: object, what: str) -> str:
    """``name`` unchanged when it is plain, else a UserError naming ``what`` and why."""
    problem = plain_problem(name)
    if problem:
        raise UserError(f"{what} {name!r} {problem}")
    return name  # type: ignore[return-value]


def tag_arg(text: str) -> str:
    """``type=tag_arg`` for a ``--tag``/``--name`` option: a plain name or one argparse error."""
    problem = plain_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r} {problem}")
    return text


def inside(path: Path, root: Path, what: str = "path") -> Path:
    """``path`` when it resolves (symlinks followed) under ``root``; else a UserError."""
    path, root = Path(path), Path(root)
    real, real_root = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if real != real_root and real_root not in real.parents:
        raise UserError(f"{what} {str(path)!r} resolves to {str(real)!r}, outside {str(root)!r}: refused")
    return path


_held = threading.local()


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (flock on the folder itself: no lock file
    is left behind, and the kernel releases it when a process dies). Re-entrant in
    one thread; other threads and processes wait."""
    key = os.path.realpath(folder)
    held = _held.__dict__.setdefault("dirs", set())
    if key in held:
        yield
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
    finally:
        os.close(fd)


def _new_file_mode() -> int:
    """Mode a plain open() would give a new file under the current umask
    (mkstemp's temp files are 0600, which the rename would otherwise keep)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temp_name(path: Path, suffix: str = "tmp") -> Path:
    """A sibling name for a temporary file of ``path``, of the shape ``stale_temps`` finds."""
    return path.parent / f".{path.name}.{secrets.token_hex(4)}.{suffix}"


def stale_temps(path: Path, suffixes: str = "tmp") -> list[Path]:
    """Temporary files of ``path`` left by a process killed mid-write (``bak.tmp``: the
    second name ``write_record`` gives the earlier record meanwhile; ``*.tmp`` is
    ignored by git, so neither shows as a change while it lives). Called with the
    folder locked: every writer of ``path`` holds that lock, so none of them is live."""
    pattern = re.compile(re.escape(f".{path.name}.") + rf"[A-Za-z0-9_]{{8}}\.({suffixes})")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return [path.parent / n for n in names if pattern.fullmatch(n)]


def unlink(path: Path | str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temp file in the same folder + rename: readers never see a
    half-written file and a failed run never clobbers the previous one. The folder is
    locked meanwhile, and temp files a killed writer left for ``path`` are removed.
    An OSError names ``path`` (a failed write alone names no file)."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with locked(path.parent):
        for stale in stale_temps(path):
            unlink(stale)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.chmod(tmp, _new_file_mode())
            os.replace(tmp, path)
        except OSError as exc:
            unlink(tmp)
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        except BaseException:
            unlink(tmp)
            raise


def cache_root() -> Path:
    """``$BP_CACHE``, else ``~/.cache/backbone-profile``: caches (ONNX exports, compiled
    kernels) that outlive a run, never inside the repository."""
    return Path(os.environ.get("BP_CACHE") or Path.home() / ".cache" / "backbone-profile")


def cache_shown(path: str) -> str:
    """A cached file's path as recorded: under ``$BP_CACHE`` or ``~``, never this machine's absolute path."""
    base = os.environ.get("BP_CACHE")
    if base and path.startswith(base):
        return "$BP_CACHE" + path[len(base):]
    home = str(Path.home())
    return "~" + path[len(home):] if path.startswith(home) else path
