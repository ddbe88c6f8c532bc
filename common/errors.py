"""Errors a user can cause, reported as one line and a non-zero exit."""
from __future__ import annotations


class UserError(Exception):
    """Bad input or an impossible request: printed as one line, exit status 2."""

    exit_code = 2


class OutOfMemory(UserError):
    """A model/size that does not fit on the device: exit status 3."""

    exit_code = 3


class ChildFailed(UserError):
    """A measuring child process (fresh-process peak memory) failed for a reason
    other than memory: its reason in one line, exit status 4."""

    exit_code = 4


def oneline(exc: BaseException, limit: int = 240) -> str:
    """``Type: message`` on one line, at most ``limit`` characters."""
    text = f"{type(exc).__name__}: {' '.join(str(exc).split()) or type(exc).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class WriteFailed(UserError):
    """An output could not be written (full disk, read-only folder, a file where a
    folder should be): the path and the cause in one line, exit status 74 (EX_IOERR)."""

    exit_code = 74


def os_error_line(exc: OSError, doing: str = "cannot write") -> str:
    """One line for an OSError: what failed, on which path, and why."""
    where = f" {str(exc.filename)!r}" if exc.filename else ""
    also = f" -> {str(exc.filename2)!r}" if getattr(exc, "filename2", None) else ""
    cause = exc.strerror or (str(exc.args[0]) if exc.args else type(exc).__name__)
    return f"{doing}{where}{also}: {cause}"
