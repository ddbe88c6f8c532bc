#!/bin/sh
# python -m common "$@" (the front door) with the project's interpreter: PYTHON when
# set (e.g. the GPU machine's own python3), else .venv's; without either, say how to
# set up instead of failing later with "No module named torch". Every shell driver is
# one line of this.
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
py=${PYTHON:-$root/.venv/bin/python}
if [ ! -x "$py" ] && ! command -v "$py" >/dev/null 2>&1; then
  echo "python -m common${1:+ $1}: error: the project's environment (.venv) is not set up: run ./test.sh or ./profile.sh first (or set PYTHON)" >&2
  exit 2
fi
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
exec "$py" -m common "$@"
