#!/bin/sh
# The zoo sweep: latency (eager fp32 and fastest), memory and throughput of many models
# (default on a GPU: the burden zoo's classification + timm models at imagenet and cityscapes;
# on the CPU: a short list at imagenet), failures recorded and the sweep goes on; resumable.
# Extra arguments and --help: python -m common zoo (e.g. --models convnext_tiny swin_t --budget-s 540).
exec sh "$(dirname "$0")/../scripts/common.sh" zoo "$@"
