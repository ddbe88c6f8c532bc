#!/bin/sh
# ResNet-101: whole-model and per-unit latency (depth 1 and 2) on both presets, one process;
# extra arguments and --help: python -m common stats (--input/--size: that one input only).
exec sh "$(dirname "$0")/../scripts/common.sh" stats --model resnet101 "$@"
