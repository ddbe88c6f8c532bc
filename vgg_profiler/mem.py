"""Memory report, or model structure with --struct for the vgg family."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.bootstrap import ensure_environment  # noqa: E402

ensure_environment("vgg_profiler/mem.py")
from common.cli import main  # noqa: E402

sys.exit(main("mem", "vgg"))
