#!/usr/bin/env bash
# The GPU suite as run through the device tool (one command of at most 10
# minutes): installs the carried wheels, runs the project's own drivers with
# the machine's python3, logs each step's duration, and always packs what was
# written into $OUT/results.tgz, even when the time limit cuts the suite short.
# Usage: device_suite.sh [extra timer.py args, e.g. --max-seconds 4]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHON=python3 PYTHONUNBUFFERED=1
pack() { tar czf "$out/results.tgz" results */*_stats */memory_reports 2>/dev/null; }
trap pack EXIT
step() {  # step NAME CMD...: run, log its duration and status
  local t0=$(date +%s); "${@:2}" > /dev/null 2>>"$out/stderr.log"; local rc=$?
  echo "$1 rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$out/log.txt" results/device_suite_log.txt
}
start=$(date +%s)
for n in 18 34 50 101; do step "resnet$n" sh resnet_profiler/stats$n.sh "$@"; done
step mobilenet_v2 sh mobilenetv2_profiler/stats.sh "$@"
step xception sh xception_profiler/stats.sh "$@"
for fam in resnet mobilenetv2 xception; do step "mem_$fam" sh ${fam}_profiler/mem_report.sh; done
step check_timer python3 scripts/check_timer.py "$@"
echo "suite took $(( $(date +%s) - start )) s" | tee -a "$out/log.txt" results/device_suite_log.txt
