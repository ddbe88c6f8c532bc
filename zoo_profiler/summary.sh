#!/bin/sh
# Model structure of one zoo model on both presets (mem.py --struct); NAME first, extra
# arguments go to mem.py. Example: sh zoo_profiler/summary.sh convnext_tiny --depth 2
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
. "$root/scripts/python.sh"
[ $# -ge 1 ] || { echo "usage: $0 NAME [mem.py flags]" >&2; exit 2; }
model=$1; shift
for preset in cityscapes pascal; do
  "$py" "$root/zoo_profiler/mem.py" --model "$model" --input "$preset" --struct "$@" || exit $?
done
