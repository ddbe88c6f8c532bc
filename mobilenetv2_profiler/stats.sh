#!/bin/sh
# MobileNet-V2: whole-model and per-unit latency on both presets; extra arguments go to timer.py.
exec sh "$(dirname "$0")/../scripts/run_family.sh" mobilenetv2 mobilenet_v2 "$@"
