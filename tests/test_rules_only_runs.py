"""Rule and dedup stages from the pipeline config, alone and around the model stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prox_spark.config import load_config
from prox_spark.io.delta import read_table
from prox_spark.run.job import run_pipeline
from refiner_cases import GOOD, NOISY, NOISY_REFINED, SPAM, training_pairs

PROSE = "\n".join(
    f"The river number {i} runs past the market and the old mill, with boats that carry "
    "bread to the town." for i in range(6)
)


def write_corpus(tmp: Path, rows: list[dict]) -> Path:
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return corpus


@pytest.mark.spark
def test_rules_only_pipeline_records_every_decision(config_file, spark, tmp_path):
    rows = [
        {"id": "a", "text": PROSE},
        {"id": "b", "text": PROSE.upper()},                        # exact duplicate of a
        {"id": "c", "text": "Home | About\n" + PROSE.replace("river", "road")},
        {"id": "d", "text": "Too short."},
    ]
    stages = ["exact_dedup", {"gopher_quality": {"min_doc_words": 20}}, "c4_quality"]
    config = load_config(config_file(tmp_path, source=write_corpus(tmp_path, rows), stages=stages))
    summary = run_pipeline(config, spark)
    table = {r.id: r for r in read_table(spark, config.output).collect()}
    assert sorted(table) == ["a", "b", "c", "d"]
    assert (table["a"].status, table["a"].text) == ("kept", PROSE)
    assert (table["b"].status, table["b"].duplicate_of) == ("dropped", "a")
    assert table["c"].status == "edited"
    assert table["c"].text == PROSE.replace("river", "road")
    assert [e.stage for e in table["c"].rule_edits] == ["c4_quality"]
    assert table["d"].status == "dropped"
    assert table["d"].rule_edits[0].reason == "gopher_short_doc"
    assert table["d"].rule_edits[0].tokens_removed is None  # no tokenizer configured
    assert table["a"].doc_program is None and table["a"].chunk_programs is None
    by_stage = {s: (d, e) for s, d, e, *_ in summary.by_stage}
    assert by_stage == {"exact_duplicate": (1, 0), "gopher_quality": (1, 0),
                        "c4_quality": (0, 1)}
    assert "gopher_quality" in summary.render()
    stats = read_table(spark, config.metrics).where("kind = 'run'").collect()[0].rule_stats
    assert json.loads(stats)["gopher_quality"]["dropped"] == 1


@pytest.mark.spark
@pytest.mark.vllm
def test_rules_run_before_and_after_the_model_stages(config_file, spark, trained_model, tmp_path):
    model = str(trained_model(training_pairs()))
    engine = {"model": model, "dtype": "float32", "kv_cache_gib": 0.25, "enforce_eager": True}
    rows = [{"id": "spam", "text": SPAM}, {"id": "good", "text": GOOD},
            {"id": "noisy", "text": NOISY}]
    config = load_config(config_file(
        tmp_path, source=write_corpus(tmp_path, rows),
        doc_model={**engine, "max_new_tokens": 16},
        chunk_model={**engine, "max_new_tokens": 64},
        stages=["fineweb_quality", "prox_doc", "prox_chunk", "gopher_repetition"],
    ))
    run_pipeline(config, spark)
    table = {r.id: r for r in read_table(spark, config.output).collect()}
    spam = table["spam"]
    assert spam.status == "dropped" and spam.doc_program is None
    assert [(e.stage, e.reason) for e in spam.rule_edits] == [
        ("fineweb_quality", "line_punct_ratio")]
    # With a model configured, rule stages count tokens with its tokenizer.
    assert spam.rule_edits[0].tokens_removed > spam.rule_edits[0].words_removed > 0
    assert (table["good"].status, table["good"].text) == ("kept", GOOD)
    assert table["good"].doc_program == "keep_doc()"
    assert (table["noisy"].status, table["noisy"].text) == ("edited", NOISY_REFINED)
    assert table["noisy"].rule_edits == []
