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


def ensure_environment(prog: str) -> None:
    """Return when torch is importable; else re-run this command in .venv's
    Python, or exit 2 with the set-up hint when there is no usable .venv."""
    if importlib.util.find_spec("torch") is not None:
        return
    python = VENV / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(python), [str(python), *sys.argv])
    sys.stderr.write(f"{prog}: error: the project's environment (.venv) is not set up: "
                     "run ./test.sh or ./profile.sh first\n")
    raise SystemExit(2)
