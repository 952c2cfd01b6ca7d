#!/usr/bin/env bash
# Spark GPU discovery for a machine without GPUs (the local-cluster test and
# demo): each Spark worker that calls it gets one fake GPU address of its own
# ("0", then "1", ...), counted per driver process. Spark's own tests do the
# same; vLLM then runs on CPU while Spark schedules "GPU" tasks for real.
set -euo pipefail
dir="${TMPDIR:-/tmp}/prox-spark-fake-gpus-${PROX_SPARK_FAKE_GPU_KEY:-$PPID}"
mkdir -p "$dir"
i=0
until mkdir "$dir/$i" 2>/dev/null; do i=$((i + 1)); done
printf '{"name": "gpu", "addresses": ["%d"]}\n' "$i"
