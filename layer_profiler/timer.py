"""Single-layer benchmarks of seed 004: forward, backward, total, achieved rates."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.bootstrap import ensure_environment  # noqa: E402

ensure_environment("layer_profiler/timer.py")
from common.cli import main_layers  # noqa: E402

sys.exit(main_layers())
