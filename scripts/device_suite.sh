#!/usr/bin/env bash
# The GPU suite as run through the device tool (one command of at most 10
# minutes): installs the carried wheels, runs the project's own drivers with the
# machine's python3, logs each stage's duration and status, stops starting stages
# once BUDGET_S seconds have passed, and always packs the records it wrote into
# $OUT/records.tgz (render them here with python -m common.render).
# Usage: device_suite.sh STAGE... [-- extra timer.py args]
#   peak     the device's measured matrix rate per precision and copy bandwidth
#   gputest  the tests marked gpu (CUDA events, peaks, graphs, compile, profiler)
#   core     the eleven catalogue models: latency, per unit, memory, structure (quick protocol)
#   check    our timer against torch.utils.benchmark, same process
#   honest   the six backbones at the GPU protocol (--max-seconds 2, 3 repeats, kernel time), per unit;
#            HONEST_MODELS chooses other catalogue models
#   bf16     the same per unit in bf16 channels-last
#   fresh    five fresh-process runs of Xception and MobileNet-V2 at PASCAL size
#   modes    --mode fastest (no compile) for the six backbones on both presets
#   sweep    the eleven catalogue models x both presets through the Dask sweep (one worker per GPU), into
#            SWEEP_OUT (default results/evidence/h200-sweep: it travels, so a later call resumes; bring it back
#            with tar, not import_records); SWEEP_MODELS / SWEEP_INPUTS / SWEEP_MODES (default eager;
#            'eager fastest') / SWEEP_NAME choose it; stops starting tasks when the suite budget is spent
#   alone    the sweep stage's requests run alone, one fresh process each without Dask (the command lines the sweep
#            prints with --dry-run), into ALONE_OUT (default results/evidence/h200-alone): python -m
#            common compare SWEEP_OUT ALONE_OUT compares the two
#   train    seed 004: training steps and layer sets
#   zoolayers  per unit for any model by name: convnext_tiny, efficientnet_b0, regnety_032, vit_base_patch16_224
#            (dynamic size or a clear error), swin_t, deeplabv3_resnet50's backbone at Cityscapes
#   os       segmentation-ready variants: ResNet-50/101 and xception65 at output stride 32, 16 and 8, Cityscapes,
#            whole model (GPU protocol) + per unit at depth 1; OS_MODELS / OS_STRIDES (then no OS32 run) narrow it
#   throughput  the eleven catalogue models at 224 (THROUGHPUT_MODELS chooses others): images/s at the largest
#            batch (doubling until out of memory, then bisecting) and at batch 1, eager fp32 and fastest (no compile),
#            cross-checked against torch.utils.benchmark in the same run; stops starting models when the suite
#            budget is spent
#   fp16     ResNet-50 at Cityscapes, channels-last, fp16 and bf16, eager and CUDA graph, full protocol: each
#            record names its top kernels (the fp16 puzzle)
#   compile  --mode fastest with compile candidates (max-autotune, reduce-overhead; bf16, fp16) for
#            COMPILE_MODELS (default resnet50) at Cityscapes, full protocol; run it twice on one machine to see the
#            persistent compile cache (BP_CACHE) at work
#   zoo      the burden zoo at imagenet and cityscapes: eager fp32, fastest (no compile), memory, each timing
#            record with its kernel profile; stops starting models when the suite budget is spent (a later call
#            resumes); ZOO_SHARD=I/N takes every N-th model; ZOO_MODELS (default: the zoo tag), ZOO_INPUTS,
#            ZOO_WHAT and ZOO_MAX_S (seconds per timed loop, default 0.3) choose the steps
#   zoosweep the same zoo steps through the Dask sweep (common sweep --kinds zoo): one task per model, each in its
#            own process, one worker per GPU; stops starting tasks when the suite budget is spent (a later call
#            resumes); ZOO_MODELS as for zoo
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
export PYTHON=python3 PYTHONUNBUFFERED=1 TQDM_MININTERVAL=20  # bars every 20 s: a readable log
[ -n "${BP_CODE_COMMIT:-}" ] || echo "device_suite.sh: BP_CODE_COMMIT not set: records name whatever commit this copy's .git says" >&2
touch /tmp/suite_start
pack() {  # the records written by this suite (the sweep's under results/evidence), and the logs
  find results/records results/evidence -newer /tmp/suite_start -name '*.json' > /tmp/new.txt 2>/dev/null
  tar czf "$out/records.tgz" -T /tmp/new.txt
}
trap pack EXIT
start=$(date +%s)
stage() {  # stage NAME CMD...: run unless the budget is spent; log duration and status
  local t0=$(date +%s)
  if (( t0 - start > budget )); then echo "$1 skipped: suite budget ${budget}s spent" | tee -a "$out/log.txt"; return; fi
  echo "== $1" >> "$out/stages.out"; echo "== $1" >> "$out/stages.err"
  timeout $(( budget - (t0 - start) + 5 )) "${@:2}" >> "$out/stages.out" 2>> "$out/stages.err"; local rc=$?
  echo "$1 rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$out/log.txt"
}
six=$(python3 -m common list --tag backbone --names)
# The sweep stage's requests and protocol, shared with the alone stage so the two compare like for like.
sweep=(--models ${SWEEP_MODELS:-catalogue} --inputs ${SWEEP_INPUTS:-cityscapes pascal} --modes ${SWEEP_MODES:-eager}
       --max-seconds 0.5 --warmup-seconds 0.5 --no-search-compile)
for s in "${stages[@]}"; do
  case $s in
    peak) stage peak python3 -m common peak --device cuda ;;
    gputest) stage gputest python3 -m pytest -q -m gpu tests ;;
    core) stage core python3 -m common profile --device cuda --no-seed004 "${extra[@]}" ;;
    check) stage check python3 -m common check-timer --device cuda --max-seconds 1 --no-coverage "${extra[@]}" ;;
    honest) stage honest_fp32 python3 -m common stats --model ${HONEST_MODELS:-$six} --max-seconds 2 "${extra[@]}" ;;
    bf16) stage honest_bf16 python3 -m common stats --model $six --precision bf16 --channels-last --layers \
            --depth 1 --max-seconds 2 "${extra[@]}" ;;
    fresh) for m in xception mobilenet_v2; do
             stage "fresh_$m" python3 -m common time --model $m --input pascal --repeats 5 --fresh-process \
               --max-seconds 2 "${extra[@]}"
           done ;;
    modes) stage modes python3 -m common stats --model $six --mode fastest --no-search-compile --no-layers \
             --max-seconds 1 "${extra[@]}" ;;
    sweep) left=$(( budget - ($(date +%s) - start) - 60 ))
           stage sweep python3 -m common sweep "${sweep[@]}" --out-dir ${SWEEP_OUT:-results/evidence/h200-sweep} \
             --budget-s $left --task-timeout 300 --name ${SWEEP_NAME:-catalogue} --no-dashboard "${extra[@]}" ;;
    alone) python3 -m common sweep "${sweep[@]}" --out-dir ${ALONE_OUT:-results/evidence/h200-alone} "${extra[@]}" \
             --dry-run > /tmp/alone.txt  # the sweep's own command lines, run one after another without Dask
           stage alone bash -c 'while read -r line; do eval "python3 ${line#python }" </dev/null \
             || echo "alone: failed: $line" >&2; done < /tmp/alone.txt' ;;
    os) [ -n "${OS_STRIDES:-}" ] || stage os_plain python3 -m common stats --model xception65 --input cityscapes \
          --depth 1 --max-seconds 2 "${extra[@]}"
        for st in ${OS_STRIDES:-16 8}; do
          stage "os$st" python3 -m common stats --model ${OS_MODELS:-resnet50 resnet101 xception65} --input cityscapes \
            --output-stride $st --depth 1 --max-seconds 2 "${extra[@]}"
        done ;;
    throughput) left=$(( budget - ($(date +%s) - start) - 90 ))  # a model's search takes about a minute
                stage throughput python3 -m common zoo --models ${THROUGHPUT_MODELS:-catalogue} --inputs imagenet \
                  --what throughput --force-catalogue --budget-s $left "${extra[@]}" ;;
    fp16) for p in fp16 bf16; do
            for g in "" --cuda-graph; do
              stage "fp16_${p}${g:+_graph}" python3 -m common time --model resnet50 --input cityscapes --precision $p \
                --channels-last $g --protocol full "${extra[@]}"
            done
          done ;;
    compile) for m in ${COMPILE_MODELS:-resnet50}; do
               stage "compile_$m" python3 -m common time --model $m --input cityscapes --mode fastest --protocol full \
                 "${extra[@]}"
             done ;;
    zoo) left=$(( budget - ($(date +%s) - start) - ${ZOO_MARGIN:-30} ))  # ZOO_MARGIN: room for the kernel profiles
         stage zoo python3 -m common zoo --models ${ZOO_MODELS:-zoo} --inputs ${ZOO_INPUTS:-imagenet cityscapes} \
           --what ${ZOO_WHAT:-eager fastest memory} --max-seconds ${ZOO_MAX_S:-0.3} --budget-s $left \
           ${ZOO_SHARD:+--shard $ZOO_SHARD} "${extra[@]}" ;;
    zoosweep) left=$(( budget - ($(date +%s) - start) - 60 ))  # the last task started may take a minute
         stage zoosweep python3 -m common sweep --models ${ZOO_MODELS:-zoo} --inputs imagenet cityscapes \
           --modes eager fastest --kinds zoo --max-seconds 0.3 --budget-s $left --task-timeout 300 --name zoo --no-dashboard \
           "${extra[@]}" ;;
    zoolayers) stage zoolayers python3 -m common stats --model convnext_tiny efficientnet_b0 regnety_032 \
                 vit_base_patch16_224 swin_t deeplabv3_resnet50.backbone --input cityscapes --depth 1 --max-seconds 1 \
                 "${extra[@]}" ;;
    train) stage train python3 -m common seed004 --max-seconds 1 "${extra[@]}" ;;
    *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done
echo "suite took $(( $(date +%s) - start )) s" | tee -a "$out/log.txt"
