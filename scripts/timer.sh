#!/bin/sh
# timer.sh --model M [args]: time any registered model; its outputs go to its
# family's folder (<family>_profiler/), as with that family's own timer.py.
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
[ -x "$py" ] || py=python3
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m common.cli timer "$@"
