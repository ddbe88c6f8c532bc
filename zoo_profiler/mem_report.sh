#!/bin/sh
# Memory reports of the zoo's models (the zoo sweep's memory slot only); extra arguments
# and --help: python -m common zoo (e.g. --models convnext_tiny --inputs cityscapes).
exec sh "$(dirname "$0")/../scripts/common.sh" zoo --what memory "$@"
