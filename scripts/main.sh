#!/usr/bin/env bash
# The main job: refine the sample corpus with conf/local.yaml into output/refined.
# Sets up (or reuses) the cached environment first. Extra arguments go to
# `prox-spark run`, e.g. --doc-model DIR --chunk-model DIR --limit 50.
# Without model arguments, where the released ProX models cannot be fetched
# (no Hugging Face hub), it refines with the starter refiner instead
# (scripts/build_starter.sh builds it once) and says so first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
set -euo pipefail
models=()
case " $* " in
  *" --doc-model"* | *" --chunk-model"*) ;;
  *)
    reachable=0
    python -m prox_spark.distill.starter --reachable conf/local.yaml || reachable=$?
    if [ "$reachable" -eq 2 ]; then
      exit 2  # the config itself is wrong: say so, never fall back
    fi
    if [ "$reachable" -ne 0 ]; then
      echo "[main] refining with the starter refiner: a small model distilled from the" \
           "rule stages on a generated corpus (scripts/build_starter.sh), because the" \
           "released ProX models cannot be fetched here. It shows the pipeline at work;" \
           "for real corpora use the released ProX models (--doc-model/--chunk-model)" \
           "or a refiner you distilled (prox-spark annotate | train | evaluate)."
      starter="$(scripts/build_starter.sh)"
      echo "[main] starter refiner: $starter"
      cat "$(dirname "$starter")/evaluation.txt"
      models=(--doc-model "$starter" --chunk-model "$starter")
    fi
    ;;
esac
prox-spark run conf/local.yaml "${models[@]}" "$@"
