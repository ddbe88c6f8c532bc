#!/bin/sh
# Memory reports of the zoo's models (the zoo sweep's memory slot only); extra arguments go to
# python -m common.zoo (e.g. --models convnext_tiny --inputs cityscapes).
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
. "$root/scripts/python.sh"
exec "$py" -m common.zoo --what memory "$@"
