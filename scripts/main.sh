#!/usr/bin/env bash
# The main job. Sets up (or reuses) the cached environment, then runs it.
# Extra arguments go to the job.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
set -euo pipefail
python jobs/smoke.py "$@"
