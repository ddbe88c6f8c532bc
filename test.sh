#!/usr/bin/env bash
# Set up .venv (as profile.sh does), then run the CPU test suite; `gpu`-marked
# tests skip themselves without a GPU (scripts/device_suite.sh runs them there).
set -euo pipefail
cd "$(dirname "$0")"
case " $* " in *" -h "*|*" --help "*) echo "usage: ./test.sh [pytest args]  (runs the CPU test suite after setting up .venv)"; exit 0 ;; esac
. scripts/setup_venv.sh
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "test.sh: no chromium/chromedriver: the page's browser test skips (get them: apt-get install chromium chromium-driver)" >&2
fi
# Two workers: the machines this runs on have 2 cores (the tests assert no timings).
# loadgroup: the longest tests go out first, a module's shared fixture stays on one
# worker (tests/conftest.py, GROUPED and LONGEST_FIRST).
exec "$PYTHON" -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder "$@"
