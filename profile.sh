#!/usr/bin/env bash
# Main job: set up .venv if missing, profile every backbone on both presets on
# the best device present (latency, per-unit latency, memory, structure), run
# seed 004's training-step and single-layer benchmarks, then regenerate
# results/tables.md and README's tables. Arguments go to timer.py.
set -euo pipefail
cd "$(dirname "$0")"
drivers=()
. scripts/setup_venv.sh
if "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  bounds=()  # the seeds' protocol: 25 warm-up + 300 timed iterations
  drivers+=(vgg_profiler/stats.sh)  # VGG at Cityscapes size takes minutes per run on a CPU: GPU only
  echo "profile.sh: GPU present: full protocol (25 warm-up + 300 iterations)" >&2
else
  # Full-size CPU inference takes seconds per image: bound each timed loop so the
  # whole job ends in minutes; every file states how many iterations ran.
  bounds=(--warmup 2 --max-seconds 5 --min-iters 3)
  echo "profile.sh: no GPU: CPU run bounded by ${bounds[*]} per loop" >&2
fi
for driver in resnet_profiler/stats18.sh resnet_profiler/stats34.sh resnet_profiler/stats50.sh \
              resnet_profiler/stats101.sh mobilenetv2_profiler/stats.sh xception_profiler/stats.sh "${drivers[@]}"; do
  sh "$driver" "${bounds[@]}" "$@"
done
sh scripts/seed004.sh "${bounds[@]}" "$@"
for family in resnet mobilenetv2 xception vgg; do
  sh "${family}_profiler/mem_report.sh"
  sh "${family}_profiler/summary.sh"
done
"$PYTHON" -m common.render.tables
