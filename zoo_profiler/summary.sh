#!/bin/sh
# Model structure of zoo models on both presets; NAME first, extra arguments and --help:
# python -m common reports. Example: sh zoo_profiler/summary.sh convnext_tiny --depth 2
exec sh "$(dirname "$0")/../scripts/common.sh" reports --struct --model "$@"
