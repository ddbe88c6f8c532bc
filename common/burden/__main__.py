"""python -m common.burden: the model-zoo burden table (see common.burden)."""
import sys

from common.burden.cli import main

sys.exit(main())
