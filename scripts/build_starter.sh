#!/usr/bin/env bash
# Builds, once, the starter refiner: a small model distilled from the rule
# stages (conf/starter.yaml) on a generated corpus, with the same three
# commands a team uses for its own refiner:
#   prox-spark annotate | train | evaluate conf/starter.yaml
# Deterministic and cached under $PROX_SPARK_CACHE/starter-<key>. The key
# hashes everything that can decide the model: the config, the corpus
# generator, all of the package's code and the pinned versions, so a cached
# starter is never one trained on other examples or by other code (the rule
# `prox-spark train` keeps for its checkpoints). Prints the model directory on
# stdout; progress goes to stderr.
set -euo pipefail
_here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PROX_SPARK_PYTHON:-}" ]; then
  . "$_here/scripts/setup.sh"
  set -euo pipefail
fi
# This checkout's `prox-spark`, also when PATH holds another checkout's.
_cli="$_here/bin/prox-spark"
_key="$(cd "$_here" && { cat conf/starter.yaml scripts/make_sample_corpus.py setup.cfg \
          env/overrides.txt env/cpu-engine.txt
        find src/prox_spark -name '*.py' -print0 | LC_ALL=C sort -z | xargs -0 cat; } \
        | sha256sum | cut -c1-16)"
_dir="$PROX_SPARK_CACHE/starter-$_key"
if [ ! -f "$_dir/.complete" ]; then
  printf '[starter] building the starter refiner in %s (first time only)\n' "$_dir" >&2
  rm -rf "$_dir"
  mkdir -p "$_dir"
  (
    cd "$_dir"
    python "$_here/scripts/make_sample_corpus.py" --docs 1000 --seed 7 --out corpus.jsonl >&2
    "$_cli" annotate "$_here/conf/starter.yaml" >&2
    "$_cli" train "$_here/conf/starter.yaml" >&2
    "$_cli" evaluate "$_here/conf/starter.yaml" > evaluation.txt
  )
  touch "$_dir/.complete"
  printf '[starter] built; its evaluation: %s\n' "$_dir/evaluation.txt" >&2
fi
echo "$_dir/refiner"
