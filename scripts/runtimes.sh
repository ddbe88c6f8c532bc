#!/bin/sh
# The deployment-runtimes matrix (python -m common runtimes --help), then every page rendered.
sh "$(dirname "$0")/common.sh" runtimes "$@" && exec sh "$(dirname "$0")/common.sh" render
