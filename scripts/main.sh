#!/usr/bin/env bash
# The main job: refine the sample corpus with conf/local.yaml into output/refined.
# Sets up (or reuses) the cached environment first. Extra arguments go to
# `prox-spark run`, e.g. --doc-model DIR --chunk-model DIR --limit 50.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
set -euo pipefail
prox-spark run conf/local.yaml "$@"
