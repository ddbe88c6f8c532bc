#!/usr/bin/env bash
# Main job: set up .venv (see scripts/setup_venv.sh), then profile every catalogue
# model on both presets on the best device present (latency, per-unit latency,
# memory, structure) and seed 004's training steps and layer sets, in one process
# with an overall step counter; then render every table, .txt and figure from the
# records (python -m common.render).
set -euo pipefail
cd "$(dirname "$0")"
usage() {
  cat <<'TXT'
usage: ./profile.sh [--device DEV] [--tag NAME] [--full] [--models NAME ...] [timer.py flags]

Profiles every catalogue model (python -m common list) on both presets,
then renders results/*.md, README's tables and every .txt from the records.
  --device DEV      auto | cpu | cuda | cuda:N (default: auto, the GPU when present)
  --tag NAME        device folder name for every output (default: from the device)
  --full            the seeds' full protocol (25 warm-up + 300 iterations per loop);
                    default is the quick one (common/protocol.py): GPU at most 0.5 s per loop after 0.5 s
                    of warm-up, 2 repeats; CPU at least 10 samples and 1 s per loop within 12 s (never
                    below 2), per unit at depth 1 only at Cityscapes, seed 004 left out
                    (run python -m common seed004 for it)
  --models NAME...  only these models
Other flags go to every timer run (e.g. --threads 2). Outputs: results/records/
(the truth), <family>_profiler/ (.txt), results/*.md, README.md.
TXT
}
for a in "$@"; do case $a in -h|--help) usage; exit 0 ;; esac; done
. scripts/setup_venv.sh
status=0
"$PYTHON" -m common profile "$@" || status=$?
"$PYTHON" -m common render || status=$?
exit $status
