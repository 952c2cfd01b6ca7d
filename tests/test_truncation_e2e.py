"""A tiny model trained to write a long chunk program, run with a small
`max_new_tokens`: the cut is known (`truncated`), counts as one program error
(so `max_errors` sees it), and model drops say why in `drop_reason`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import engine_events
from prox_spark.config import load_config
from prox_spark.io.delta import read_table
from prox_spark.run.dry_run import dry_run
from prox_spark.run.job import run_pipeline
from refiner_cases import (
    GOOD,
    NOISY,
    SPAM,
    chunk_prompt_plain,
    doc_prompt_plain,
    training_pairs,
)

pytestmark = [pytest.mark.spark, pytest.mark.vllm]

ADS = "\n".join(f"Ad {i}: buy cheap watches now" for i in range(10))
ADS_PROGRAM = "\n".join(f"remove_lines(line_start={i}, line_end={i})" for i in range(10))


def pairs() -> list[tuple[str, str]]:
    return [*training_pairs(), (doc_prompt_plain(ADS), "keep_doc()"),
            (chunk_prompt_plain(ADS), ADS_PROGRAM)]


@pytest.fixture(scope="module")
def model_dir(trained_model) -> str:
    return str(trained_model(pairs(), steps=400))


def _run(config_file, spark, model_dir, tmp: Path, records: list[dict], chunk_new_tokens: int,
         policy: dict | None = None, plan: list | None = None) -> dict:
    """Refine `records` in `tmp` (the doc model, the chunk model with
    `chunk_new_tokens`, then exact dedup) and return the refined rows by id."""
    tmp.mkdir(parents=True, exist_ok=True)
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records))
    config = load_config(config_file(
        tmp, source=corpus, models=model_dir, new_tokens=(16, chunk_new_tokens), report=False,
        policy=policy or {"max_errors": 0, "min_words": 30},
        stages=["prox_doc", "prox_chunk", "exact_dedup"], spark={"partitions": 1}))
    if plan is not None:
        plan.append(dry_run(config, spark))
    summary = run_pipeline(config, spark)
    if plan is not None:
        plan.append(summary)
    return {r.id: r for r in read_table(spark, config.output).collect()}


def test_a_cut_program_is_known_and_counted(config_file, spark, model_dir, tmp_path: Path):
    # 12 new tokens cut any program the model writes for the ads page (its
    # first call alone is longer), however well the tiny model learned it.
    ads = _run(config_file, spark, model_dir, tmp_path / "cut",
               [{"id": "ads", "text": ADS}], 12)["ads"]
    assert ads.truncated is True
    assert ads.chunk_programs[0].startswith("remove_lines(")
    assert len(ads.chunk_programs[0]) < len(ADS_PROGRAM)
    assert ads.errors >= 1
    assert any("cut at the token limit" in m or "cut off" in m for m in ads.program_errors)
    # max_errors: 0 sees the cut program and ignores it.
    assert (ads.status, ads.text) == ("reverted", ADS)

    table = _run(config_file, spark, model_dir, tmp_path / "whole", [
        {"id": "spam", "text": SPAM}, {"id": "good", "text": GOOD},
        {"id": "good2", "text": GOOD}, {"id": "noisy", "text": NOISY}], 64)

    assert (table["spam"].status, table["spam"].drop_reason) == ("dropped", "doc_model")
    assert (table["noisy"].status, table["noisy"].drop_reason) == (
        "dropped", "chunk_policy:min_words")
    assert table["noisy"].truncated is False and table["noisy"].words_after == 0
    goods = sorted((table[i].status, table[i].drop_reason) for i in ("good", "good2"))
    assert goods == [("dropped", "exact_duplicate"), ("kept", None)]
    dup = table["good"] if table["good"].status == "dropped" else table["good2"]
    # Dropped by a stage after the models: nothing of it counts after.
    assert (dup.words_after, dup.tokens_after) == (0, 0) and dup.tokens_before > 0


def test_a_cut_answer_is_reused_and_stays_cut(config_file, spark, model_dir, tmp_path: Path):
    """Issue 35, item 5: greedy decoding would cut the same answer again, so a
    policy change asks the models nothing for a row whose answer was cut; the
    row stays marked truncated, its cut still counts, the plan says so."""
    records = [{"id": "ads", "text": ADS}, {"id": "good", "text": GOOD}]
    first = _run(config_file, spark, model_dir, tmp_path, records, 12)
    assert first["ads"].truncated is True and first["ads"].chunk_truncated[0] is True
    assert first["good"].truncated is False and first["good"].doc_truncated is False

    since = time.time()
    steps: list = []
    again = _run(config_file, spark, model_dir, tmp_path, records, 12,
                 policy={"max_errors": 5, "min_words": 1}, plan=steps)
    plan, summary = steps
    assert not engine_events("generate", since)  # no model was asked anything
    planned = {s.stage: s for s in plan.stages}
    assert (planned["prox_doc"].recompute, planned["prox_doc"].reuse) == (0, 2)
    assert (planned["prox_chunk"].recompute_at_most, planned["prox_chunk"].reuse) == (0, 2)
    assert (summary.doc_reused, summary.chunk_reused) == (2, 2)
    ads = again["ads"]
    assert ads.chunk_programs == first["ads"].chunk_programs
    assert ads.truncated is True and ads.chunk_truncated == first["ads"].chunk_truncated
    assert ads.errors == first["ads"].errors >= 1
    assert "prox_chunk" in ads.reused
    # Under the looser policy the cut program now applies, and says it was cut.
    assert ads.status == "edited"
    assert any("cut" in m for m in ads.program_errors)
