"""Pay only for what changed (issue 19): per-stage fingerprints and stored
model output, checked by counting the model calls of the engine log.

One base run refines five documents with a rule stage, the doc model and
the chunk model; each test copies its table and runs again with one change.
`prox-spark plan` (`dry_run`) is asked first and must predict the run.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

import prox_spark
from conftest import engine_events
from prox_spark.config import load_config
from prox_spark.io.delta import read_table
from prox_spark.run.dry_run import dry_run
from prox_spark.run.job import run_pipeline
from refiner_cases import GOOD, NOISY, SPAM, training_pairs

pytestmark = [pytest.mark.spark, pytest.mark.vllm]

C4 = {"filter_no_terminal_punct": False, "min_num_sentences": 1}


@pytest.fixture(scope="module")
def models(trained_model, tmp_path_factory) -> tuple[str, str]:
    """The trained tiny refiner twice, so the engine log tells the doc
    model's calls from the chunk model's."""
    source = trained_model(training_pairs())
    root = tmp_path_factory.mktemp("reuse-models")
    return (str(shutil.copytree(source, root / "doc-model")),
            str(shutil.copytree(source, root / "chunk-model")))


# The job of every run here, for the `config_file` fixture with `models=`:
# one Python worker, so each engine is built once.
REUSE = {"stages": [{"c4_quality": C4}, "prox_doc", "prox_chunk"],
         "spark": {"partitions": 1}, "report": False}


def write_corpus(tmp: Path) -> Path:
    """The five documents of every run, unless `tmp` holds them (a copied base)."""
    corpus = tmp / "corpus.jsonl"
    if not corpus.exists():
        rows = [{"id": "spam", "text": SPAM}, {"id": "good", "text": GOOD},
                {"id": "noisy", "text": NOISY}, {"id": "null", "text": None},
                {"id": "empty", "text": "   "}]
        corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return corpus


def prompts_sent(model: str, since: float) -> int:
    return sum(e["prompts"] for e in engine_events("generate", since, model=model))


# Prompts the base run sent to each model: (doc model, chunk model).
BASE_PROMPTS: list[int] = []


@pytest.fixture(scope="module")
def base(config_file, spark, models, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("reuse-base")
    since = time.time()
    config = load_config(config_file(tmp, REUSE, source=write_corpus(tmp), models=models))
    summary = run_pipeline(config, spark)
    BASE_PROMPTS[:] = [prompts_sent(models[0], since), prompts_sent(models[1], since)]
    assert (summary.doc_recomputed, summary.chunk_recomputed) == (3, 2)
    assert summary.doc_prompt_tokens > 0 and summary.doc_generate_seconds > 0
    assert summary.chunk_prompt_tokens > 0 and summary.chunk_generate_seconds > 0
    assert "tokens/s per engine" in summary.render()
    return tmp


def copy_of(base: Path, tmp: Path) -> Path:
    shutil.copy(base / "corpus.jsonl", tmp / "corpus.jsonl")
    for name in ("refined", "refined_metrics"):
        shutil.copytree(base / name, tmp / name)
    return tmp


def statuses(spark, config) -> dict[str, tuple]:
    return {r.id: (r.status, r.text, r.drop_reason)
            for r in read_table(spark, config.output).collect()}


def test_the_base_run_stores_what_each_model_stage_received(config_file, spark, models, base):
    config = load_config(config_file(base, REUSE, source=write_corpus(base), models=models))
    rows = {r.id: r for r in read_table(spark, config.output).collect()}
    assert set(rows["good"].stage_inputs) == {"prox_doc", "prox_chunk"}
    assert set(rows["spam"].stage_inputs) == {"prox_doc"}  # the doc model dropped it
    assert not rows["null"].stage_inputs and not rows["empty"].stage_inputs
    assert {"c4_quality", "prox_doc", "prox_chunk", "apply"} == set(rows["good"].stage_fingerprints)
    assert all(r.reused == [] for r in rows.values())


def test_a_policy_change_calls_no_model(config_file, spark, models, base, tmp_path):
    config = load_config(config_file(copy_of(base, tmp_path), REUSE, source=write_corpus(tmp_path),
                                     models=models, policy={"min_words": 30}))
    plan = dry_run(config, spark)
    planned = {s.stage: s for s in plan.stages}
    assert (planned["prox_doc"].recompute, planned["prox_doc"].reuse) == (0, 3)
    assert (planned["prox_chunk"].recompute_at_most, planned["prox_chunk"].reuse) == (0, 2)
    since = time.time()
    summary = run_pipeline(config, spark)
    assert plan.batches == summary.batches > 0
    assert plan.refreshed == summary.refreshed_documents == 5
    assert plan.new == summary.new_documents == plan.changed == summary.changed_documents == 0
    assert prompts_sent(models[0], since) == prompts_sent(models[1], since) == 0
    assert (summary.doc_recomputed, summary.doc_reused) == (0, 3)
    assert (summary.chunk_recomputed, summary.chunk_reused) == (0, 2)
    after = statuses(spark, config)
    assert after["noisy"][0] == "dropped" and after["noisy"][2] == "chunk_policy:min_words"
    fresh = load_config(config_file(tmp_path, REUSE, source=write_corpus(tmp_path), models=models,
                                    policy={"min_words": 30}, output=tmp_path / "fresh",
                                    name="fresh.yaml"))
    run_pipeline(fresh, spark)
    assert statuses(spark, fresh) == after


def test_a_chunk_model_change_runs_only_the_chunk_model_on_kept_documents(
        config_file, spark, models, base, tmp_path):
    config = load_config(config_file(copy_of(base, tmp_path), REUSE, source=write_corpus(tmp_path),
                                     models=models, new_tokens=(16, 80)))
    planned = {s.stage: s for s in dry_run(config, spark).stages}
    assert (planned["prox_doc"].recompute, planned["prox_doc"].reuse) == (0, 3)
    assert planned["prox_chunk"].recompute == planned["prox_chunk"].recompute_at_most == 2
    assert planned["prox_chunk"].prompt_tokens > 0
    since = time.time()
    summary = run_pipeline(config, spark)
    assert prompts_sent(models[0], since) == 0
    assert prompts_sent(models[1], since) == 2  # good and noisy: one chunk each
    assert (summary.doc_recomputed, summary.chunk_recomputed) == (0, 2)
    # The plan's prompt tokens are the ones sent; its GPU-hours use the
    # throughput the base run measured.
    assert summary.chunk_prompt_tokens == planned["prox_chunk"].prompt_tokens
    assert summary.doc_prompt_tokens == 0
    assert planned["prox_chunk"].rate_source == "measured by 1 earlier batch(es)"
    assert statuses(spark, config)["noisy"][0] == "edited"


def test_a_rule_change_reruns_the_models_only_where_their_input_changed(
        config_file, spark, models, base, tmp_path):
    c4 = {**C4, "filter_no_terminal_punct": True}  # cuts noisy's menu lines and all of spam
    config = load_config(config_file(copy_of(base, tmp_path), REUSE, source=write_corpus(tmp_path),
                                     models=models,
                                     stages=[{"c4_quality": c4}, "prox_doc", "prox_chunk"]))
    planned = {s.stage: s for s in dry_run(config, spark).stages}
    since = time.time()
    summary = run_pipeline(config, spark)
    assert prompts_sent(models[0], since) == 1  # noisy's new text; good is unchanged
    assert (summary.doc_recomputed, summary.doc_reused) == (1, 1)
    assert (planned["prox_doc"].recompute, planned["prox_doc"].reuse) == (1, 1)
    assert summary.doc_prompt_tokens == planned["prox_doc"].prompt_tokens
    chunk = planned["prox_chunk"]
    assert chunk.reuse == summary.chunk_reused == 1
    assert chunk.recompute <= summary.chunk_recomputed <= chunk.recompute_at_most
    assert prompts_sent(models[1], since) == summary.chunk_recomputed
    rows = {r.id: r for r in read_table(spark, config.output).collect()}
    assert rows["good"].reused == ["prox_doc", "prox_chunk"]
    assert rows["spam"].status == "dropped" and rows["spam"].stage_inputs == {}


def test_an_upgrade_that_changed_no_output_version_reruns_nothing(
        config_file, spark, models, base, tmp_path, monkeypatch):
    config = load_config(config_file(copy_of(base, tmp_path), REUSE, source=write_corpus(tmp_path),
                                     models=models))
    monkeypatch.setattr(prox_spark, "__version__", "99.0.0")
    plan = dry_run(config, spark)
    assert (plan.pending, plan.unchanged) == (0, 5)
    since = time.time()
    summary = run_pipeline(config, spark)
    assert summary.refined == 0
    assert not engine_events("generate", since)


def test_two_runs_started_together_send_each_prompt_once(config_file, spark, models, base,
                                                         tmp_path):
    """Two runs on one output at once, a batch per document (two threads of
    one driver; the claims are Delta rows, as between processes): together
    they refine each document once, each model gets each prompt once, and
    the table is one run's."""
    from concurrent.futures import ThreadPoolExecutor

    # A claim is renewed by a Spark job, which waits while both task slots of
    # this 2-core session run model tasks: a long lease keeps that wait from
    # lapsing it (what a lapse costs is tested in test_refresh_processes).
    config = load_config(config_file(tmp_path, REUSE, source=write_corpus(tmp_path), models=models,
                                     commit_every=1, claim_lease_seconds=1800))
    since = time.time()
    with ThreadPoolExecutor(2) as pool:
        # A session each: a run sets its commits' Delta options (txnAppId, ...)
        # in its session's SQL conf, as two processes would each in their own.
        summaries = list(pool.map(lambda _: run_pipeline(config, spark.newSession()),
                                  range(2)))
    assert sum(s.refined for s in summaries) == 5
    assert BASE_PROMPTS[0] == 3  # spam, good, noisy (null and empty are never sent)
    assert [prompts_sent(models[0], since), prompts_sent(models[1], since)] == BASE_PROMPTS
    assert statuses(spark, config) == statuses(spark, load_config(config_file(
        base, REUSE, source=write_corpus(base), models=models)))
