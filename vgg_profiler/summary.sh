#!/bin/sh
# Model structures of every model in this family, both presets; extra arguments go to mem.py.
exec sh "$(dirname "$0")/../scripts/run_mem.sh" vgg --struct "$@"
