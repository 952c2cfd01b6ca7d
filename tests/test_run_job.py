"""The refinement job end to end: JSONL in, refined Delta table out, idempotent;
the program applier; the `prox-spark` command and jobs/refine.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLI
from prox_spark.config import load_config
from prox_spark.io.delta import read_table, table_version
from prox_spark.program import STATUSES
from prox_spark.refs import TableRef
from prox_spark.run.job import run_pipeline
from refiner_cases import GOOD, NOISY, NOISY_REFINED, SPAM, training_pairs
from report_browser import overlapping_labels

pytestmark = [pytest.mark.spark, pytest.mark.vllm]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(trained_model) -> str:
    return str(trained_model(training_pairs()))


def write_corpus(path: Path) -> Path:
    rows = [
        {"id": "spam", "text": SPAM},
        {"id": "good", "text": GOOD},
        {"id": "noisy", "text": NOISY},
        {"id": "null", "text": None},
        {"id": "empty", "text": "   "},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def snapshot(spark, ref: TableRef) -> dict[str, tuple]:
    rows = read_table(spark, ref).collect()
    return {
        r.id: (r.text, r.status, r.doc_program, tuple(r.chunk_programs or ()), r.errors,
               r.fingerprint, r.refined_at)
        for r in rows
    }


def test_jsonl_to_refined_delta_table_and_rerun_changes_nothing(config_file, spark, model_dir,
                                                                tmp_path):
    config = load_config(config_file(tmp_path, source=write_corpus(tmp_path / "corpus.jsonl"),
                                     models=model_dir, spark={"partitions": 2}))
    summary = run_pipeline(config, spark)

    table = {r.id: r for r in read_table(spark, config.output).collect()}
    assert sorted(table) == ["empty", "good", "noisy", "null", "spam"]
    assert (table["spam"].status, table["spam"].text) == ("dropped", None)
    assert table["spam"].doc_program == "drop_doc()"
    assert table["spam"].chunk_programs is None
    assert (table["good"].status, table["good"].text) == ("kept", GOOD)
    assert table["good"].chunk_programs == ["keep_chunk()"]
    assert (table["noisy"].status, table["noisy"].text) == ("edited", NOISY_REFINED)
    assert table["noisy"].lines_removed == 2 and table["noisy"].normalizations == 1
    assert table["noisy"].tokens_after < table["noisy"].tokens_before
    assert (table["null"].status, table["null"].text) == ("dropped", None)
    assert "null" in table["null"].error
    assert table["empty"].status == "dropped"
    assert len({r.fingerprint for r in table.values()}) == 1

    assert (summary.documents_in, summary.refined, summary.already_refined) == (5, 5, 0)
    assert (summary.kept, summary.edited, summary.dropped, summary.reverted) == (1, 1, 3, 0)
    assert summary.tokens_after < summary.tokens_before

    before, version = snapshot(spark, config.output), table_version(spark, config.output)
    again = run_pipeline(config, spark)
    assert (again.documents_in, again.refined, again.already_refined) == (5, 0, 5)
    assert snapshot(spark, config.output) == before
    assert table_version(spark, config.output) - version <= 1
    metrics = read_table(spark, config.metrics).orderBy("run_at").collect()
    assert [m.refined for m in metrics if m.kind == "run"] == [5, 0]
    assert [(m.batch, m.refined) for m in metrics if m.kind == "batch"] == [(1, 5)]
    check_reports(spark, config, tmp_path)


def check_reports(spark, config, tmp_path):
    """Each run wrote its report; the first one, written again from the tables
    alone, is the same page, and it renders in a real browser."""
    from prox_spark.cli import main
    from prox_spark.report.page import write_report

    reports = sorted((tmp_path / "refined_reports").glob("*.html"))
    assert len(reports) == 2
    again = write_report(spark, config.output, config.metrics, run=1, path=tmp_path / "r1.html")
    assert again.read_text() == reports[0].read_text()
    assert main(["report", str(tmp_path / "refined"), "--run", "9"]) == 2
    dom, console = render_in_chromium(reports[0], tmp_path)
    assert not [line for line in console if "CONSOLE" in line or "Uncaught" in line], console
    bars = {cid: len(re.findall(r'class="bar"', svg)) for cid, svg in
            re.findall(r'<svg[^>]*id="([\w-]+)"(.*?)</svg>', dom, re.S)}
    # Only the stages that ran (prox_doc, prox_chunk: in and out each); the
    # kept share has a bin for dropped documents before its ten tenths; the
    # drop reasons are the doc model's (spam) and empty text (null, empty).
    assert bars == {"statuses": len(STATUSES), "stages": 4, "kept-share": 11, "reasons": 2}
    assert re.search(r'data-label="dropped" data-series="documents" data-value="3"', dom)
    spam = re.search(r'<div class="sample" data-status="dropped"><h3>spam.*?</div>', dom, re.S)
    assert spam and '<del class="dropped"' in spam.group(0)
    noisy = re.search(r'<div class="sample" data-status="edited"><h3>noisy.*?</div>', dom, re.S)
    assert noisy and noisy.group(0).count('<del class="removed"') == 2
    assert '<del class="normalized">' in noisy.group(0)
    assert overlapping_labels(reports[0], tmp_path) == []


def render_in_chromium(page: Path, tmp: Path) -> tuple[str, list[str]]:
    """Open `page` in headless Chromium: the rendered DOM and the browser's
    console lines; a screenshot is taken too (and must not be empty)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no Chromium: scripts/install_chromium.sh could not install Debian's "
                    "package here (needs root and apt-get)")
    flags = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1200,3000"]
    shot = tmp / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], check=True,
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    done = subprocess.run([*flags, "--enable-logging=stderr", "--v=0", "--dump-dom",
                           page.as_uri()], check=True, capture_output=True, text=True,
                          timeout=120)
    return done.stdout, done.stderr.splitlines()


def test_program_applier_reruns_stored_programs_without_a_model(config_file, spark, model_dir,
                                                                tmp_path):
    from prox_spark.generation.engine import engines_created
    from prox_spark.program import ChunkPolicy, refine_document
    from prox_spark.stages import ProgramApplier

    config = load_config(config_file(tmp_path, source=write_corpus(tmp_path / "corpus.jsonl"),
                                     models=model_dir, spark={"partitions": 2}))
    run_pipeline(config, spark)
    source = spark.read.json(str(tmp_path / "corpus.jsonl")).selectExpr("id", "text")
    stored = read_table(spark, config.output).select("id", "doc_program", "chunk_programs")
    joined = source.join(stored, "id")
    strict = ChunkPolicy(max_errors=0, min_kept_ratio=0.5, min_words=30)
    created = engines_created()
    rows = joined.transform(ProgramApplier(strict)).collect()
    assert engines_created() == created
    assert len(rows) == 5
    for r in rows:
        direct = refine_document(r.text, r.doc_program, r.chunk_programs, strict)
        assert r.status == direct.status
        assert r.refined_text == (None if direct.status == "dropped" else direct.text)
        assert r.errors == direct.errors
    # min_words=30 drops the refined NOISY document (26 words) under the new policy.
    assert {r.id: r.status for r in rows}["noisy"] == "dropped"


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


# The `prox-spark` command runs the main job on a cluster in
# tests/test_gpu_cluster.py; here the spark-submit job file.
@pytest.mark.parametrize("entry", ["spark-job"])
def test_entry_points_run_the_pipeline(config_file, entry, model_dir, tmp_path):
    # One partition: a single Python worker builds a single engine.
    config = config_file(tmp_path, source=write_corpus(tmp_path / "corpus.jsonl"),
                         models="unused/unused", limit=3, spark={"partitions": 1})
    out = tmp_path / "cli-out"
    overrides = ["--doc-model", model_dir, "--chunk-model", model_dir, "--output", str(out)]
    if entry == "console":
        cmd = [CLI, "run", str(config), *overrides]
    else:
        cmd = [sys.executable, str(ROOT / "jobs" / "refine.py"), str(config), *overrides]
    done = run_cli(cmd, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "prox-spark run summary" in done.stdout
    # --limit takes 3 of the 5 pending documents.
    assert "documents in               5   (already refined, skipped: 0)" in done.stdout
    assert "refined now                3" in done.stdout
    assert "2 more documents wait beyond --limit 3" in done.stdout
    assert (out / "_delta_log").is_dir()
    assert (tmp_path / "cli-out_metrics" / "_delta_log").is_dir()
