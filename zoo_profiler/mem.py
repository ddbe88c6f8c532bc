"""Memory report, or model structure with --struct, of any torchvision/timm model: python -m common memory (--help: its flags)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.__main__ import run  # noqa: E402

sys.exit(run("memory", family="zoo", prog="zoo_profiler/mem.py"))
