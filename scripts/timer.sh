#!/bin/sh
# timer.sh --model M [args]: run M's own family entry point (<family>_profiler/timer.py).
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
[ -x "$py" ] || py=python3
case $2 in
  resnet*) fam=resnet ;; mobilenet_v2) fam=mobilenetv2 ;; vgg*) fam=vgg ;; *) fam=$2 ;;
esac
exec "$py" "$root/${fam}_profiler/timer.py" "$@"
