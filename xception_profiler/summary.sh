#!/bin/sh
# Model structures of every model of this family on both presets, one process;
# extra arguments and --help: python -m common reports.
exec sh "$(dirname "$0")/../scripts/common.sh" reports --family xception --struct "$@"
