# Sourced by profile.sh and test.sh: make .venv from requirements.txt when it is
# missing, then export PYTHON. PYTHON set by the caller wins (e.g. the GPU
# machine's own python3, which already has torch and cannot reach PyPI).
if [ -z "${PYTHON:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    echo "setting up .venv from requirements.txt (first run only) ..." >&2
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip >&2
    .venv/bin/python -m pip install -q -r requirements.txt >&2
  fi
  PYTHON=$PWD/.venv/bin/python
fi
export PYTHON
