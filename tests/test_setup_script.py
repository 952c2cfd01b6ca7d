"""`scripts/setup.sh` when sourced: the caller's shell keeps its options and
survives a failed set-up, and the hub stays reachable unless the user says
otherwise (issue 17). Each case runs a real bash."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[1] / "scripts" / "setup.sh"
OPTION_SETS = ["", "set -u", "set -o pipefail", "set -eu", "set -euo pipefail"]

# Prints the option state before and after sourcing, then proves the shell is
# still alive. `|| status=$?` lets a caller running with -e observe a failure.
SCRIPT = """
before="$-|$(set -o)"
status=0
. "$SETUP" || status=$?
after="$-|$(set -o)"
[ "$before" = "$after" ] && echo "options kept" || echo "options changed"
echo "status $status"
echo "offline ${HF_HUB_OFFLINE-unset}"
echo "alive"
"""


def _bash(options: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f"{options}\n{SCRIPT}"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(SETUP=str(SETUP), **extra)
    return env


@pytest.mark.parametrize("options", OPTION_SETS)
def test_a_failed_setup_neither_exits_nor_changes_options(tmp_path, options):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = _bash(options, _env(PROX_SPARK_CACHE=str(blocker / "cache")))
    assert "options kept" in result.stdout, result.stderr
    assert "status 0" not in result.stdout
    assert "alive" in result.stdout
    assert "[setup] failed" in result.stderr


SET_UP = bool(os.environ.get("PROX_SPARK_CACHE") and os.environ.get("PROX_SPARK_PYTHON"))


@pytest.mark.skipif(not SET_UP,
                    reason="needs the set-up cache of this session (source scripts/setup.sh first)")
@pytest.mark.parametrize("options", ["", "set -euo pipefail"])
def test_a_working_setup_keeps_options_and_goes_online_by_default(options):
    result = _bash(options, _env())
    assert "options kept" in result.stdout, result.stderr
    assert "status 0" in result.stdout, result.stderr
    assert "offline unset" in result.stdout


def test_offline_only_when_the_user_says_so(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _bash("", _env(PROX_SPARK_CACHE=str(blocker / "cache"), HF_HUB_OFFLINE="1"))
    assert "offline 1" in result.stdout
