"""python -m common.sweep: see common/sweep/cli.py and docs/sweep.md."""
import sys

from common.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main())
