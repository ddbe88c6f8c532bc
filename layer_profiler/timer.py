"""Single-layer benchmarks of seed 004 (one set, default seed004): python -m common layer-sets (--help: its flags)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.__main__ import run  # noqa: E402

sys.exit(run("layer-sets", ["--set", "seed004", *sys.argv[1:]], prog="layer_profiler/timer.py"))
