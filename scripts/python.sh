# Sourced by every driver (after setting root=<repository>): the project's
# interpreter in $py, the repository on PYTHONPATH. PYTHON set by the caller wins
# (e.g. the GPU machine's own python3); without it and without .venv, say how to
# set up instead of failing later with "No module named torch".
py=${PYTHON:-$root/.venv/bin/python}
if [ ! -x "$py" ] && ! command -v "$py" >/dev/null 2>&1; then
  echo "$0: error: the project's environment (.venv) is not set up: run ./test.sh or ./profile.sh first (or set PYTHON)" >&2
  exit 2
fi
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
