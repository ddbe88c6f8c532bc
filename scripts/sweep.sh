#!/bin/sh
# sweep.sh [flags]: many requests as Dask tasks, one single run each, one task per
# GPU at a time (python -m common.sweep --help; docs/sweep.md). A re-run resumes.
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
. "$root/scripts/python.sh"
exec "$py" -m common.sweep "$@"
