#!/bin/sh
# timer.sh --model M [args]: time any catalogue model; its outputs go to its
# family's folder (<family>_profiler/), as with that family's own timer.py.
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
. "$root/scripts/python.sh"
PROFILE_PROG=scripts/timer.sh exec "$py" -m common.cli timer "$@"
