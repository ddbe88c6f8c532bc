#!/bin/sh
# runtimes.sh [--budget-s S] [--zoo] [...]: the runtimes matrix (PyTorch, ONNX Runtime,
# OpenVINO; fp32, bf16, int8) on this CPU, budgeted and resumable (python -m common.deploy),
# then every page rendered from the records (results/runtimes.md among them).
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
. "$root/scripts/python.sh"
cd "$root" || exit 1
"$py" -m common.deploy "$@" || exit $?
exec "$py" -m common.render
