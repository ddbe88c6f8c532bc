#!/bin/sh
# Seed 004's benchmark in one process: training steps (forward, backward, total, with
# inference beside them) of its nine models at its inputs (batch 8 of 224x224; batch 4 for
# ResNet-101/152, from the catalogue), then both single-layer sets; extra arguments go to every run.
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
. "$root/scripts/python.sh"
exec "$py" -m common.drive seed004 "$@"
