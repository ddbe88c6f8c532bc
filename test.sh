#!/usr/bin/env bash
# Set up .venv if missing (as profile.sh does), then run the CPU test suite.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/setup_venv.sh
exec "$PYTHON" -m pytest -q "$@"
