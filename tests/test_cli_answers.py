"""Clear answers from the command line (issue 17): Ctrl-C is one line and exit
130 with committed batches kept; spark-submit on a session without Delta says
Delta is missing and how to add it. Each test runs its own Spark in a
subprocess (this test process starts none)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from refresh_helpers import RULES_JOB, doc, write_jsonl

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}


def _commits(table: Path) -> int:
    log = table / "_delta_log"
    return len(list(log.glob("*.json"))) if log.is_dir() else 0


@pytest.mark.parametrize("signum, code, what", [
    (signal.SIGINT, 130, "interrupted"),
    # A scheduler cancelling the job (Databricks, Airflow) sends SIGTERM.
    (signal.SIGTERM, 143, "stopped by SIGTERM"),
])
def test_ctrl_c_is_one_line_exit_130_and_keeps_committed_batches(config_file, tmp_path, signum,
                                                                 code, what):
    corpus = write_jsonl(tmp_path / "c.jsonl",
                         [{"id": f"k{i:02d}", "text": doc(i)} for i in range(40)])
    config = config_file(tmp_path, RULES_JOB, source=corpus, commit_every=1)
    refined = tmp_path / "refined"
    proc = subprocess.Popen([sys.executable, "-m", "prox_spark.cli", "run", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=tmp_path)
    deadline = time.monotonic() + 600
    # Version 0 creates the table, version 1 is the first batch.
    while _commits(refined) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err
    # The run's own answer is one line, the last; the JVM's start-up lines
    # and py4j's note on the cut call come before it.
    message = f"prox-spark: {what}; batches committed before are kept (run again to resume)"
    assert err.strip().splitlines()[-1] == message, err
    assert err.count("prox-spark: ") == 1, err
    committed = _commits(refined) - 1
    assert 1 <= committed < 40
    # Every commit after the table's creation is one batch's MERGE, carrying
    # the run's idempotent transaction id.
    batches = set()
    for entry in sorted((refined / "_delta_log").glob("*.json")):
        actions = [json.loads(line) for line in entry.read_text().splitlines()]
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        if info.get("operation") == "MERGE" and any("txn" in a for a in actions):
            batches.add(entry.name)
    assert len(batches) == committed


def test_spark_submit_without_delta_says_how_to_add_it(config_file, tmp_path):
    import pyspark

    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": doc(1)}])
    config = config_file(tmp_path, RULES_JOB, source=corpus)
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    done = subprocess.run(
        [str(submit), "--master", "local[1]", "--conf", "spark.ui.enabled=false",
         str(ROOT / "jobs" / "refine.py"), str(config)],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=600)
    # spark-submit passes the Python driver's stderr on to its own stdout.
    said = done.stdout + done.stderr
    assert done.returncode == 2, said[-3000:]
    assert "configuration error: spark: Delta Lake is missing from this Spark session" in said
    assert "--packages io.delta:delta-spark_2.13" in said
    assert not (tmp_path / "refined").exists()
    assert not (tmp_path / "refined_metrics").exists()
