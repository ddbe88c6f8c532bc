#!/bin/sh
# MobileNet-V2: whole-model and per-unit latency on both presets, one process;
# extra arguments and --help: python -m common stats (--input/--size: that one input only).
exec sh "$(dirname "$0")/../scripts/common.sh" stats --model mobilenet_v2 "$@"
