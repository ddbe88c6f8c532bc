#!/usr/bin/env bash
# The GPU suite as run through the device tool (one command of at most 10
# minutes): installs the carried wheels, runs the project's own drivers with
# the machine's python3, logs each step's duration and status, stops starting
# steps once BUDGET_S seconds have passed, and always packs what was written
# into $OUT/results.tgz, even when the time limit cuts the suite short.
# Usage: device_suite.sh STAGE [extra timer.py args]
#   core     every family's timing drivers, memory reports, timer cross-check
#   modes    --mode fastest (no compile) for the six backbones on both presets
#   compile  ResNet-50 compiled for the target, per-unit roofline in bf16, compiled backbones
#   train    seed 004 (scripts/seed004.sh), per-unit backward, training steps at both presets
set -uo pipefail
cd "$(dirname "$0")/.."
stage=${1:?usage: device_suite.sh core|modes|compile|train [timer.py args]}
shift
out=${OUT:-/tmp/out}
budget=${BUDGET_S:-540}  # leaves the 10-minute command time to pack and return
mkdir -p "$out" results
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHON=python3 PYTHONUNBUFFERED=1
pack() { tar czf "$out/results.tgz" results */*_stats */layer_stats */memory_reports 2>/dev/null; }
trap pack EXIT
start=$(date +%s)
step() {  # step NAME CMD...: run unless the budget is spent; log duration and status
  local t0=$(date +%s)
  if (( t0 - start > budget )); then echo "$1 skipped: suite budget ${budget}s spent" | tee -a "$out/log.txt"; return; fi
  timeout $(( budget - (t0 - start) + 5 )) "${@:2}" > /dev/null 2>>"$out/stderr.log"; local rc=$?
  echo "$stage $1 rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$out/log.txt" results/device_suite_log.txt
}
backbones="resnet18 resnet34 resnet50 resnet101 mobilenet_v2 xception"
timer() { step "$1" sh scripts/timer.sh "${@:2}"; }  # timer NAME --model M ...
case $stage in
  core)
    for n in 18 34 50 101 152; do step "resnet$n" sh resnet_profiler/stats$n.sh "$@"; done
    step mobilenet_v2 sh mobilenetv2_profiler/stats.sh "$@"
    step xception sh xception_profiler/stats.sh "$@"
    step vgg sh vgg_profiler/stats.sh "$@"
    for fam in resnet mobilenetv2 xception vgg; do step "mem_$fam" sh ${fam}_profiler/mem_report.sh; done
    step check_timer python3 scripts/check_timer.py "$@" ;;
  modes)
    for input in cityscapes pascal; do
      for m in $backbones; do
        timer "fastest_${m}_$input" --model "$m" --input "$input" --mode fastest --no-search-compile "$@"
      done
    done ;;
  compile)
    timer resnet50_max_autotune --model resnet50 --precision bf16 --channels-last --compile max-autotune "$@"
    for m in $backbones; do
      timer "roofline_$m" --model "$m" --precision bf16 --channels-last --layers "$@"
    done
    for m in $backbones; do
      timer "compiled_$m" --model "$m" --precision bf16 --channels-last --compile default --cuda-graph "$@"
    done ;;
  train)
    step seed004 sh scripts/seed004.sh "$@"
    timer train_units_resnet50 --model resnet50 --input imagenet --batch 8 --pass train --layers "$@"
    timer train_units_vgg16 --model vgg16 --input imagenet --batch 8 --pass train --layers "$@"
    for input in cityscapes pascal; do
      for m in vgg16 vgg16_bn vgg19 vgg19_bn resnet18 resnet34 resnet50 resnet101 resnet152; do
        timer "train_${m}_$input" --model "$m" --input "$input" --pass train "$@"
      done
    done ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
echo "$stage took $(( $(date +%s) - start )) s" | tee -a "$out/log.txt" results/device_suite_log.txt
