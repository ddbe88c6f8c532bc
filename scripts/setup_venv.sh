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
    # A first set-up writes torch's CUDA build and its nvidia libraries: README states the
    # .venv's measured size (df's peak while making it was no higher); 8 GiB leaves room.
    # Short of that, pip fails half-way with an OSError and leaves a broken .venv (a CI run
    # on a nearly full disk did): say so in one line before starting.
    need_gib=${BP_SETUP_NEED_GIB:-8}
    free_gib=$(df -Pk . | awk 'NR==2 {printf "%d", $4 / 1048576}')
    if [ ! -x .venv/bin/python ] && [ -n "$free_gib" ] && [ "$free_gib" -lt "$need_gib" ]; then
      echo "setting up: error: creating .venv needs about ${need_gib} GiB free on $(df -P . | awk 'NR==2 {print $6}') and ${free_gib} GiB are: free some space (or set PYTHON to a Python that has requirements.txt)" >&2
      exit 1
    fi
    if [ -x .venv/bin/python ]; then
      echo "setting up: completing .venv (missing or changed requirements) ..." >&2
    else
      echo "setting up: creating .venv from requirements.txt (first run only; several GB, minutes: README states the measured figures) ..." >&2
      python3 -m venv .venv
      created=1
    fi
    .venv/bin/python -m pip install -q --upgrade pip >&2
    if ! .venv/bin/python -m pip install --progress-bar on -r requirements.txt >&2; then
      echo "setting up: error: pip could not install requirements.txt (its message is above); the next run completes .venv" >&2
      exit 1
    fi
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
