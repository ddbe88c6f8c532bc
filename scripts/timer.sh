#!/bin/sh
# timer.sh --model M [args]: time any catalogue model (python -m common time; --help lists
# its flags); its outputs go to its family's folder (<family>_profiler/).
exec sh "$(dirname "$0")/../scripts/common.sh" time "$@"
