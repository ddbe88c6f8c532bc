#!/bin/sh
# ResNet-152: whole-model and per-unit latency (depth 1 and 2) on both presets, one process;
# extra arguments go to timer.py (--input/--size: that one input only).
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
. "$root/scripts/python.sh"
exec "$py" -m common.drive stats --model resnet152 "$@"
