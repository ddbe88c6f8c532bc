#!/usr/bin/env bash
# The GPU suite as run through the device tool (one command of at most 10
# minutes): installs the carried wheels, runs the project's own drivers with the
# machine's python3, logs each stage's duration and status, stops starting stages
# once BUDGET_S seconds have passed, and always packs the records it wrote into
# $OUT/records.tgz (render them here with python -m common.render).
# Usage: device_suite.sh STAGE... [-- extra timer.py args]
#   peak     the device's measured matrix rate per precision and copy bandwidth
#   core     the eleven catalogue models: latency, per unit, memory, structure (quick protocol)
#   check    our timer against torch.utils.benchmark, same process
#   gputest  the tests marked gpu
#   modes    --mode fastest (no compile) for the six backbones on both presets
#   train    seed 004: training steps and layer sets
set -uo pipefail
cd "$(dirname "$0")/.."
stages=() extra=()
while [ $# -gt 0 ]; do [ "$1" = -- ] && { shift; extra=("$@"); break; }; stages+=("$1"); shift; done
out=${OUT:-/tmp/out}
budget=${BUDGET_S:-540}  # leaves the 10-minute command time to pack and return
mkdir -p "$out" results/records
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHON=python3 PYTHONUNBUFFERED=1
touch /tmp/suite_start
pack() { find results/records -newer /tmp/suite_start -name '*.json' > /tmp/new.txt; tar czf "$out/records.tgz" -T /tmp/new.txt; }
trap pack EXIT
start=$(date +%s)
stage() {  # stage NAME CMD...: run unless the budget is spent; log duration and status
  local t0=$(date +%s)
  if (( t0 - start > budget )); then echo "$1 skipped: suite budget ${budget}s spent" | tee -a "$out/log.txt"; return; fi
  timeout $(( budget - (t0 - start) + 5 )) "${@:2}" > "$out/$1.out" 2> "$out/$1.err"; local rc=$?
  echo "$1 rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$out/log.txt"
}
for s in "${stages[@]}"; do
  case $s in
    peak) stage peak python3 -m common.measure.peak --device cuda ;;
    core) stage core python3 -m common.drive profile --device cuda --models $(python3 -m common.registry list --tag catalogue --names) --no-seed004 "${extra[@]}" ;;
    check) stage check python3 scripts/check_timer.py "${extra[@]}" ;;
    gputest) stage gputest python3 -m pytest -q -m gpu tests ;;
    modes) for input in cityscapes pascal; do
             stage "modes_$input" python3 -m common.drive stats --model $(python3 -m common.registry list --tag backbone --names) \
               --input "$input" --mode fastest --no-search-compile --no-layers "${extra[@]}"
           done ;;
    train) stage train python3 -m common.drive seed004 "${extra[@]}" ;;
    *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done
echo "suite took $(( $(date +%s) - start )) s" | tee -a "$out/log.txt"
