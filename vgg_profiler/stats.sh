#!/bin/sh
# VGG16, VGG16-BN, VGG19, VGG19-BN: whole-model and per-layer latency on both presets,
# one process; extra arguments go to timer.py (--input/--size: that one input only).
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
. "$root/scripts/python.sh"
exec "$py" -m common.drive stats --family vgg "$@"
