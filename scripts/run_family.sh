#!/bin/sh
# The one loop behind every per-model driver: both presets, whole model and per
# unit, one process per run. Usage: run_family.sh FAMILY MODEL [timer.py args...]
# With --size in the arguments the presets loop collapses to that one size.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
family=$1 model=$2
shift 2
py=${PYTHON:-$root/.venv/bin/python}
[ -x "$py" ] || py=python3
presets="cityscapes pascal"
case " $* " in *" --size "*|*" --size="*) presets=custom ;; esac
depths=1
[ "$family" = resnet ] && depths="1 2"  # ResNet also per block (--depth 2)
for input in $presets; do
  sel="--input $input"
  [ "$input" = custom ] && sel=""
  "$py" "$root/${family}_profiler/timer.py" --model "$model" $sel "$@"
  for depth in $depths; do
    "$py" "$root/${family}_profiler/timer.py" --model "$model" $sel --layers --depth "$depth" "$@"
  done
done
