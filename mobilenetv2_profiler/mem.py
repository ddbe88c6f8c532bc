"""Memory report, or model structure with --struct for the mobilenetv2 family: python -m common memory (--help: its flags)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.__main__ import run  # noqa: E402

sys.exit(run("memory", family="mobilenetv2", prog="mobilenetv2_profiler/mem.py"))
