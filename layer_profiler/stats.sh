#!/bin/sh
# Both layer sets (seed 004's shapes, and the large set that loads a modern GPU);
# extra arguments go to timer.py.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/python.sh"
for set in seed004 large; do
  "$py" "$root/layer_profiler/timer.py" --set "$set" "$@"
done
