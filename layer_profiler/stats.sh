#!/bin/sh
# Both single-layer sets (seed 004's shapes, and the large set that loads a modern GPU);
# extra arguments and --help: python -m common layer-sets.
exec sh "$(dirname "$0")/../scripts/common.sh" layer-sets "$@"
