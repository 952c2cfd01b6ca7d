#!/usr/bin/env bash
# The whole test suite, real Spark + Delta + vLLM on CPU included.
# Sets up (or reuses) the cached environment first; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
set -euo pipefail
scripts/install_chromium.sh  # for the browser test of the run report
ruff check src tests benchmarks jobs scripts
python -m pytest -m "" --durations=40 "$@"
