#!/bin/sh
# Memory reports of every model of this family on both presets, one process;
# extra arguments go to mem.py.
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
. "$root/scripts/python.sh"
exec "$py" -m common.drive mem --family resnet "$@"
