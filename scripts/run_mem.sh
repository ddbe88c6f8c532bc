#!/bin/sh
# Memory reports (or, with --struct, model structures) for every model of a
# family on both presets. Usage: run_mem.sh FAMILY [mem.py args...]
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
family=$1
shift
py=${PYTHON:-$root/.venv/bin/python}
[ -x "$py" ] || py=python3
presets="cityscapes pascal"
case " $* " in *" --size "*|*" --size="*) presets=custom ;; esac
models=$("$py" -c "import sys; sys.path.insert(0, '$root'); from common.registry import family_models; print(' '.join(family_models('$family')))")
for model in $models; do
  for input in $presets; do
    sel="--input $input"
    [ "$input" = custom ] && sel=""
    "$py" "$root/${family}_profiler/mem.py" --model "$model" $sel "$@"
  done
done
