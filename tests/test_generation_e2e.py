"""Prompt builders, engine and model stages agree: a tiny model trained on
fixed (prompt -> program) pairs gives back exactly those programs through
Spark (the production path: `mapInArrow` model passes)."""

from __future__ import annotations

import json

import pytest

from prox_spark.generation.batch import generate_safely
from prox_spark.generation.engine import Engine, EngineConfig, get_engine
from prox_spark.generation.prompts import doc_prompt, doc_prompt_ids
from prox_spark.stages import ChunkRefiner, DocRefiner
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


def programs(df, config, max_new_tokens):
    """Each row through the doc stage and, separately, the chunk stage (so
    the chunk model sees every row): {id: (doc program, doc error, chunk
    programs, chunk error)}."""
    doc = df.transform(DocRefiner(config)).select("id", "doc_program", "doc_error")
    chunk = df.transform(ChunkRefiner(config, max_new_tokens=max_new_tokens)).select(
        "id", "chunk_programs", "chunk_error")
    return {r.id: (r.doc_program, r.doc_error, r.chunk_programs, r.chunk_error)
            for r in doc.join(chunk, "id").collect()}


def test_model_stages_return_the_trained_programs(spark, refiner_config):
    docs = spark.createDataFrame(
        [(1, SPAM), (2, GOOD), (3, NOISY)], "id long, text string"
    ).repartition(2)
    out = programs(docs, refiner_config, 64)
    assert [out[i][0] for i in (1, 2, 3)] == [DOC_PROGRAMS[t] for t in (SPAM, GOOD, NOISY)]
    assert [out[i][1] for i in (1, 2, 3)] == [None, None, None]
    assert out[2][2] == [CHUNK_PROGRAMS[GOOD]]
    assert out[3][2] == [CHUNK_PROGRAMS[NOISY]]
    assert [out[i][3] for i in (1, 2, 3)] == [None, None, None]


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
    out = programs(df.repartition(2), refiner_config, 16)
    assert sorted(out) == [1, 2, 3, 4, 5, 6, 7]
    assert "null" in out[1][1] and out[1][0] is None
    assert "empty" in out[2][1] and "empty" in out[3][3]
    assert out[4][1] is None and isinstance(out[4][0], str)
    assert out[4][3] is None and len(out[4][2]) == 1
    assert out[5][3] is None and len(out[5][2]) > 1
    assert out[6][0] == DOC_PROGRAMS[GOOD]
    assert out[7][1] is None and isinstance(out[7][0], str)
    assert "exceeds max_doc_chars" in out[7][3] and out[7][2] is None


class FlakyEngine(Engine):
    """The real engine, failing any batch that holds a poisoned prompt (the
    way one bad request fails a whole vLLM call)."""

    poison: tuple[int, ...] = ()

    def generate(self, prompts, max_new_tokens):
        if any(tuple(p) == self.poison for p in prompts):
            raise RuntimeError("bad request in batch")
        return super().generate(prompts, max_new_tokens)


def test_a_failing_batch_is_retried_prompt_by_prompt(refiner_config):
    real = get_engine(refiner_config)
    flaky = FlakyEngine(real.config, real.llm, real.tokenizer)
    good = [flaky.encode_one(p) for p, _ in training_pairs()[:2]]
    flaky.poison = tuple(flaky.encode_one("[INST] poisoned [/INST]"))
    gens = generate_safely(flaky, [good[0], list(flaky.poison), good[1]], 64)
    assert [g.text.strip() if g.text else None for g in gens] == [
        training_pairs()[0][1], None, training_pairs()[1][1]]
    assert gens[1].error == "generation failed: bad request in batch"


def test_a_document_prompt_is_tokenized_once_into_what_the_engine_gets(refiner_config):
    engine = get_engine(refiner_config)
    for text in (GOOD, SPAM, "x " * 5000, "a literal <s> inside"):
        ids = doc_prompt_ids(text, engine.tokenizer, 300, engine.encode_one)
        prompt = doc_prompt(text, engine.tokenizer, 300)
        assert len(ids) <= 300
        # Special-token text is counted as the engine sees it, so the ids
        # measured are the ids sent, "<s>" in the text or not.
        assert ids == engine.encode([prompt])[0]


def test_an_engine_that_cannot_start_gives_every_row_an_error(spark, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama", "hidden_size": "oops"}')
    df = spark.createDataFrame([(1, GOOD), (2, SPAM), (3, None)], "id long, text string")
    stage = DocRefiner(EngineConfig(model=str(broken), dtype="float32", kv_cache_gib=0.25))
    rows = {r.id: r for r in df.repartition(2).transform(stage).collect()}
    assert sorted(rows) == [1, 2, 3]
    for i in (1, 2):
        assert rows[i].doc_error.startswith("engine failed to start: ")
        assert rows[i].doc_program is None and rows[i].doc_status == "failed"
        assert rows[i].doc_failure == "engine_start"
    assert rows[3].doc_error == "text is null"


class RecordingEngine(Engine):
    """The real engine, keeping every prompt it is given."""

    received: list[list[int]]

    def generate(self, prompts, max_new_tokens):
        self.received.extend(list(p) for p in prompts)
        return super().generate(prompts, max_new_tokens)


def test_the_chunk_lines_budget_plus_frame_and_answer_fit_the_context(config_file,
                                                                      refiner_config,
                                                                      tmp_path):
    """Issue 35, item 3: chunking keeps the reference's budget for the lines;
    the config refuses lines + frame + max_new_tokens beyond max_model_len,
    and at the limit it accepts, every prompt of a document whose every chunk
    is full reaches the engine with room for the whole answer."""
    import random

    from prox_spark.config import ConfigError, load_config
    from prox_spark.generation.batch import chunk_programs
    from prox_spark.generation.prompts import frame_tokens

    real = get_engine(refiner_config)
    context, new = refiner_config.max_model_len, 16
    frame = frame_tokens("chunk", real.tokenizer)
    doc_frame = frame_tokens("doc", real.tokenizer)
    assert 0 < doc_frame < frame
    budget = context - frame - 1 - new  # 1: the seam after "[doc]\n"

    corpus = tmp_path / "in.jsonl"
    corpus.write_text('{"id": 1, "text": "hello"}\n')

    def config(lines_budget: int, doc_prompt_tokens: int = 2000):
        return load_config(config_file(
            tmp_path, source=corpus, output=tmp_path / "out", name="conf.yaml",
            doc_model={"model": refiner_config.model, "max_new_tokens": 16,
                       "max_prompt_tokens": doc_prompt_tokens},
            chunk_model={"model": refiner_config.model, "max_new_tokens": new,
                         "max_prompt_tokens": lines_budget}))

    with pytest.raises(ConfigError, match=rf"lines' budget max_prompt_tokens \({budget + 1}\) "
                       rf"\+ the prompt frame \({frame} tokens.*exceeds max_model_len"):
        config(budget + 1)
    with pytest.raises(ConfigError, match=r"doc_model.max_prompt_tokens: .* cannot hold the "
                       r"prompt frame"):
        config(budget, doc_prompt_tokens=doc_frame)
    assert config(budget).chunk_model.max_prompt_tokens == budget

    engine = RecordingEngine(real.config, real.llm, real.tokenizer)
    engine.received = []
    # The worst case: every line alone beyond the budget, so every chunk is
    # one line shortened to the whole budget (mixed scripts and
    # special-token text, counted as the engine encodes them).
    rng = random.Random(4)
    words = ["river", "market", "é", "東京", "<s>", "[INST]", "a,b", "1234", "  ", "🙂"]
    lines = [" ".join(rng.choice(words) for _ in range(3 * context)) for _ in range(6)]
    programs, errors = chunk_programs(["\n".join(lines)], lambda: engine,
                                      max_prompt_tokens=budget, max_new_tokens=new)
    assert errors == [None] and programs[0] is not None and len(programs[0]) == 6
    sizes = [len(p) for p in engine.received]
    assert len(sizes) == 6
    assert max(sizes) + new <= context, (sizes, context, new)
    assert min(sizes) >= context - new - 8, sizes  # the chunks are full
