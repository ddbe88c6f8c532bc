# Sourced by profile.sh and test.sh: make .venv from requirements.txt, or complete
# it when the last set-up did not finish or requirements.txt changed since (a
# stamp of the installed requirements' hash lives in .venv), then export PYTHON.
# PYTHON set by the caller wins (e.g. the GPU machine's own python3, which already
# has torch and cannot reach PyPI). Creating .venv is timed and its size measured
# (.venv/.setup.json, python -m common.bootstrap stamp): profile.sh's job record
# carries both and README states them from there.
if [ -z "${PYTHON:-}" ]; then
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
    t0=$(date +%s)
    created=
    if [ -x .venv/bin/python ]; then
      echo "setting up: completing .venv (missing or changed requirements) ..." >&2
    else
      echo "setting up: creating .venv from requirements.txt (first run only; several GB, minutes: README states the measured figures) ..." >&2
      python3 -m venv .venv
      created=1
    fi
    .venv/bin/python -m pip install -q --upgrade pip >&2
    .venv/bin/python -m pip install --progress-bar on -r requirements.txt >&2
    echo "$want" > .venv/.requirements.sha256
    if [ -n "$created" ]; then
      .venv/bin/python -m common.bootstrap stamp "$(( $(date +%s) - t0 ))" || true
    fi
  fi
  if [ ! -f .venv/.setup.json ]; then
    .venv/bin/python -m common.bootstrap stamp || true  # a .venv made before the stamp: its size only
  fi
  PYTHON=$PWD/.venv/bin/python
fi
export PYTHON
