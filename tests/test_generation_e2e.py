"""Prompt builders, engine and UDFs agree: a tiny model trained on fixed
(prompt -> program) pairs gives back exactly those programs through Spark."""

from __future__ import annotations

import json

import pytest

from prox_spark.engine import EngineConfig, get_engine
from prox_spark.udfs import chunk_programs_udf, doc_program_udf
from refiner_cases import CHUNK_PROGRAMS, DOC_PROGRAMS, GOOD, NOISY, SPAM, training_pairs

pytestmark = [pytest.mark.spark, pytest.mark.vllm]


@pytest.fixture(scope="module")
def refiner_config(trained_model) -> EngineConfig:
    path = trained_model(training_pairs())
    return EngineConfig(model=str(path), dtype="float32", kv_cache_gib=0.25,
                        enforce_eager=True, max_num_seqs=32)


def test_trained_model_answers_its_prompts_directly(refiner_config):
    engine = get_engine(refiner_config)
    prompts = [p for p, _ in training_pairs()]
    answers = [g.text.strip() for g in engine.generate(prompts, max_new_tokens=64)]
    assert answers == [c for _, c in training_pairs()]


def test_engine_receives_exactly_one_bos(refiner_config):
    engine = get_engine(refiner_config)
    bos = engine.tokenizer.bos_token_id
    prompt = "[INST] a literal <s> and </s> in the text [/INST]"
    ids = engine.encode([prompt])[0]
    assert ids[0] == bos and ids.count(bos) == 1
    gen = engine.generate([prompt], max_new_tokens=2)[0]
    assert gen.prompt_tokens == len(ids)  # vLLM added nothing of its own


def test_udfs_return_the_trained_programs(spark, refiner_config):
    docs = spark.createDataFrame(
        [(1, SPAM), (2, GOOD), (3, NOISY)], "id long, text string"
    ).repartition(2)
    doc = doc_program_udf(refiner_config)
    chunk = chunk_programs_udf(refiner_config, max_new_tokens=64)
    rows = (
        docs.select("id", "text", doc("text").alias("d"), chunk("text").alias("c"))
        .orderBy("id")
        .collect()
    )
    assert [r.d.program for r in rows] == [DOC_PROGRAMS[r.text] for r in rows]
    assert [r.d.error for r in rows] == [None, None, None]
    assert rows[1].c.programs == [CHUNK_PROGRAMS[GOOD]]
    assert rows[2].c.programs == [CHUNK_PROGRAMS[NOISY]]
    assert [r.c.error for r in rows] == [None, None, None]


def test_bad_inputs_get_rows_not_failed_tasks(spark, refiner_config, tmp_path):
    big = ("All work and no play makes a dull corpus. " * 24) + "\n"
    huge = big * (50 * 1024 * 1024 // len(big))  # ~50 MB
    many_lines = "\n".join(f"line {i} of a very long list of links" for i in range(5000))
    source = tmp_path / "bad.jsonl"
    rows = [
        {"id": 1, "text": None},
        {"id": 2, "text": ""},
        {"id": 3, "text": "  \n\t "},
        {"id": 5, "text": many_lines},
        {"id": 6, "text": GOOD},
    ]
    with source.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
        # Broken UTF-16 the way upstream systems write it: a lone surrogate escape.
        fh.write('{"id": 4, "text": "broken \\ud800 surrogate in an otherwise fine text"}\n')
    df = spark.read.schema("id long, text string").json(str(source))
    df = df.unionByName(spark.createDataFrame([(7, huge)], "id long, text string"))
    doc = doc_program_udf(refiner_config)
    chunk = chunk_programs_udf(refiner_config, max_new_tokens=16)
    out = {
        r.id: r
        for r in df.repartition(2).select("id", doc("text").alias("d"), chunk("text").alias("c"))
        .collect()
    }
    assert sorted(out) == [1, 2, 3, 4, 5, 6, 7]
    assert "null" in out[1].d.error and out[1].d.program is None
    assert "empty" in out[2].d.error and "empty" in out[3].c.error
    assert out[4].d.error is None and isinstance(out[4].d.program, str)
    assert out[4].c.error is None and len(out[4].c.programs) == 1
    assert out[5].c.error is None and len(out[5].c.programs) > 1
    assert out[6].d.program == DOC_PROGRAMS[GOOD]
    assert out[7].d.error is None and isinstance(out[7].d.program, str)
    assert "exceeds max_doc_chars" in out[7].c.error and out[7].c.programs is None
