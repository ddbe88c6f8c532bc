#!/bin/sh
# ResNet-101: whole-model and per-unit latency on both presets; extra arguments go to timer.py.
exec sh "$(dirname "$0")/../scripts/run_family.sh" resnet resnet101 "$@"
