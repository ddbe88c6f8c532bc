"""Inference latency, whole model or per unit (--layers), or --throughput, of any torchvision/timm model: python -m common time (--help: its flags)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.__main__ import run  # noqa: E402

sys.exit(run("time", family="zoo", prog="zoo_profiler/timer.py"))
