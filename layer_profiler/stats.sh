#!/bin/sh
# Both layer sets (seed 004's shapes, and the large set that loads a modern GPU),
# one process each; extra arguments go to timer.py.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
[ -x "$py" ] || py=python3
for set in seed004 large; do
  "$py" "$root/layer_profiler/timer.py" --set "$set" "$@"
done
