#!/bin/sh
# Seed 004's benchmark: training steps (forward, backward, total, with inference
# beside them) of its nine models at its inputs (batch 8 of 224x224; batch 4 for
# ResNet-101/152), then both single-layer sets. One process per run; extra
# arguments go to every timer.py (e.g. --max-seconds 5).
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
[ -x "$py" ] || py=python3
pairs=$("$py" -c "import sys; sys.path.insert(0, '$root'); from common.registry import SEED004; print(' '.join(f'{m}:{b}' for m, b in SEED004.items()))")
for pair in $pairs; do
  sh "$root/scripts/timer.sh" --model "${pair%:*}" --input imagenet --batch "${pair#*:}" --pass train "$@"
done
sh "$root/layer_profiler/stats.sh" "$@"
