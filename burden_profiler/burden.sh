#!/bin/sh
# Model-zoo burden table (seed 003): parameter memory, feature memory, MACs/FLOPs of
# torchvision and timm models; with no argument the whole zoo is analysed, its records written
# and results/burden.md rebuilt. Extra arguments and --help: python -m common burden.
exec sh "$(dirname "$0")/../scripts/common.sh" burden "$@"
