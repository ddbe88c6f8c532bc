#!/usr/bin/env bash
# The GPU suite as run through the device tool, in parts that each fit one
# 10-minute command. Usage: device_suite.sh PART, PART in resnet | rest.
# Installs the carried wheels, runs the project's own drivers with the
# machine's python3, and packs every output into $OUT/results-PART.tgz.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHON=python3 PYTHONUNBUFFERED=1
part=$1
start=$(date +%s)
case $part in
  resnet)
    for n in 18 34 50 101 152; do sh resnet_profiler/stats$n.sh || exit 1; done ;;
  rest)
    sh mobilenetv2_profiler/stats.sh && sh xception_profiler/stats.sh || exit 1
    for fam in resnet mobilenetv2 xception; do sh ${fam}_profiler/mem_report.sh || exit 1; done
    python3 scripts/check_timer.py || exit 1 ;;
  *) echo "device_suite.sh: unknown part '$part' (resnet | rest)" >&2; exit 2 ;;
esac
echo "part $part took $(( $(date +%s) - start )) s" | tee -a results/device_suite_times.txt
tar czf "${OUT:-/tmp}/results-$part.tgz" results */*_stats */memory_reports 2>/dev/null
