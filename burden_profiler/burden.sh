#!/bin/sh
# Model-zoo burden table (seed 003): parameter memory, feature memory, MACs/FLOPs of
# torchvision and timm models (common/registry/zoo.py). Every argument goes to `python -m common.burden`
# (try --help); with none, the whole zoo is analysed, its records written and results/burden.md rebuilt.
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
py=$root/.venv/bin/python
[ -x "$py" ] || py=python3
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
exec "$py" -m common.burden "$@"
