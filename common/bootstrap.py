"""Entry points started by any Python: go on in the project's .venv when this
interpreter lacks the project's packages, or say in one line how to set it up.
Standard library only: it runs before anything else is importable."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"


def ensure_environment(prog: str, argv: list[str] | None = None) -> None:
    """Return when torch is importable; else re-run this command (``argv``: Python's
    arguments, default this script's) in .venv's Python, or exit 2 with the set-up
    hint when there is no usable .venv."""
    if importlib.util.find_spec("torch") is not None:
        return
    python = VENV / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(python), [str(python), *(sys.argv if argv is None else argv)])
    sys.stderr.write(f"{prog}: error: the project's environment (.venv) is not set up: "
                     "run ./test.sh or ./profile.sh first\n")
    raise SystemExit(2)


# The first set-up's cost, measured, never typed: scripts/setup_venv.sh stamps how long
# creating .venv took and how much disk it takes; profile.sh's job record carries the
# stamp (common.drive.save_job) and README's generated block states it from there.
SETUP_STAMP = ".setup.json"


def venv_bytes(folder: Path = VENV) -> int:
    """Bytes of every file and link under ``folder`` (apparent sizes, links not followed;
    ``du -sb`` also counts the folders themselves)."""
    total = 0
    for top, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                pass
    return total


def write_setup_stamp(seconds: float | None, folder: Path = VENV) -> dict:
    """Stamp ``folder`` with its size now and, when it was just created, how long that took."""
    import datetime as dt
    import json

    stamp = {"first_install_s": seconds, "venv_bytes": venv_bytes(folder),
             "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    tmp = Path(folder) / f"{SETUP_STAMP}.tmp"
    tmp.write_text(json.dumps(stamp) + "\n", encoding="utf-8")
    os.replace(tmp, Path(folder) / SETUP_STAMP)
    return stamp


def setup_stamp(folder: Path | None = None) -> dict | None:
    """The set-up stamp of ``folder`` (default: .venv, when this interpreter is .venv's);
    ``first_install_s`` None: .venv predates the stamp, only its size was measured.
    None when there is none (e.g. a python given by PYTHON, not .venv's)."""
    import json

    if folder is None:
        if Path(sys.prefix).resolve() != VENV.resolve():
            return None
        folder = VENV
    try:
        return checked_stamp(json.loads((Path(folder) / SETUP_STAMP).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def checked_stamp(stamp: object) -> dict | None:
    """``stamp``'s fields when it is a well-formed set-up stamp (in .venv or in a job record), else None."""
    ok = isinstance(stamp, dict) and isinstance(stamp.get("venv_bytes"), int) and isinstance(stamp.get("date"), str) \
        and (stamp.get("first_install_s") is None or isinstance(stamp["first_install_s"], (int, float)))
    return {k: stamp.get(k) for k in ("first_install_s", "venv_bytes", "date")} if ok else None


if __name__ == "__main__":  # python -m common.bootstrap stamp [SECONDS]: what scripts/setup_venv.sh runs
    if sys.argv[1:2] != ["stamp"] or len(sys.argv) > 3:
        sys.stderr.write("usage: python -m common.bootstrap stamp [SECONDS]\n")
        raise SystemExit(2)
    write_setup_stamp(float(sys.argv[2]) if len(sys.argv) == 3 else None)
