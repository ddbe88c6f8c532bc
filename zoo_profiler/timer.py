"""Inference latency, whole model or per unit (--layers), or --throughput, of any torchvision/timm model."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.bootstrap import ensure_environment  # noqa: E402

ensure_environment("zoo_profiler/timer.py")
from common.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("timer", "zoo"))
