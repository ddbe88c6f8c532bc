"""Memory report, or model structure with --struct for the xception family: python -m common memory (--help: its flags)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.__main__ import run  # noqa: E402

sys.exit(run("memory", family="xception", prog="xception_profiler/mem.py"))
