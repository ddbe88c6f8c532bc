#!/bin/sh
# VGG16, VGG16-BN, VGG19, VGG19-BN: whole-model and per-layer latency on both presets;
# extra arguments go to timer.py.
set -e
for model in vgg16 vgg16_bn vgg19 vgg19_bn; do
  sh "$(dirname "$0")/../scripts/run_family.sh" vgg "$model" "$@"
done
