#!/bin/sh
# Xception: whole-model and per-unit latency on both presets, one process;
# extra arguments go to timer.py (--input/--size: that one input only).
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
. "$root/scripts/python.sh"
exec "$py" -m common.drive stats --model xception "$@"
