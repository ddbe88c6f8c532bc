#!/bin/sh
# VGG16, VGG16-BN, VGG19, VGG19-BN: whole-model and per-layer latency on both presets, one process;
# extra arguments and --help: python -m common stats (--input/--size: that one input only).
exec sh "$(dirname "$0")/../scripts/common.sh" stats --family vgg "$@"
