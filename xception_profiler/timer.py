"""Inference latency, whole model or per unit (--layers) for the xception family: python -m common time (--help: its flags)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.__main__ import run  # noqa: E402

sys.exit(run("time", family="xception", prog="xception_profiler/timer.py"))
