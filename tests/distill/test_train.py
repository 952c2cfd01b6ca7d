"""SFT of a refiner with transformers' Trainer: from scratch, under
TorchDistributor, killed and resumed; the result loads in vLLM through the
project's engine and answers its training prompts with their programs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prox_spark.distill.card import CARD_JSON, update_model_card
from prox_spark.distill.config import TrainConfig
from prox_spark.distill.tokenizer import build_tokenizer
from prox_spark.distill.train import CHECKPOINTS_DIR, FINGERPRINT_FILE, example_ids, train_sft
from prox_spark.generation.prompts import chunk_document, chunk_prompt, doc_prompt, prompt_length
from refiner_cases import CHUNK_PROGRAMS, DOC_PROGRAMS, GOOD, NOISY, NOISY_REFINED, SPAM

# A head size of 64 (vLLM's CPU attention), two layers, a small vocabulary.
# The default context (2048 positions) is what the engine asks of a model.
TINY = {"hidden_size": 128, "layers": 2, "heads": 2, "kv_heads": 1, "vocab_size": 512,
        "max_seq_tokens": 512, "warmup_ratio": 0.0}


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Two intra-op threads on two shared cores spin against each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """(prompt, program) examples built by the refining stages' own prompt builders."""
    from transformers import AutoTokenizer

    path = build_tokenizer(tmp_path_factory.mktemp("prompt-tokenizer"), [GOOD, NOISY, SPAM])
    tok = AutoTokenizer.from_pretrained(str(path))
    examples = [(doc_prompt(text, tok), program) for text, program in DOC_PROGRAMS.items()]
    for text, program in CHUNK_PROGRAMS.items():
        (chunk,) = chunk_document(text, tok)
        examples.append((chunk_prompt(chunk), program))
    return examples


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, pairs):
    import torch

    torch.set_num_threads(1)
    config = TrainConfig(output_dir=str(tmp_path_factory.mktemp("refiner")), **TINY,
                         max_steps=160, batch_size=len(pairs), learning_rate=3e-3,
                         save_steps=80, seed=3)
    card = {"teacher": "hand-written programs", "sft_table": "memory", "sft_version": 0}
    return config, train_sft(pairs, config, tokenizer_corpus=[GOOD, NOISY, SPAM], card=card)


def test_from_scratch_learns_and_writes_a_loadable_model_dir(trained, pairs):
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig

    config, result = trained
    assert result.model_dir == config.output_dir and result.resumed_from is None
    assert result.steps == 160 and result.skipped_examples == 0
    first, last = result.losses[0], result.losses[-1]
    assert first[0] < last[0] == 160
    assert last[1] < first[1] / 10
    tokens_per_pass = sum(len(example_ids(p, c, AutoTokenizer.from_pretrained(
        config.output_dir))[0]) for p, c in pairs)
    assert result.train_tokens == 160 * tokens_per_pass  # one pass per step, no padding counted
    model_dir = Path(result.model_dir)
    arch = LlamaConfig.from_pretrained(model_dir)
    assert (arch.hidden_size // arch.num_attention_heads, arch.num_hidden_layers) == (64, 2)
    tok = AutoTokenizer.from_pretrained(model_dir)
    settings = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert settings["add_bos_token"] is True and settings["add_eos_token"] is False
    gen = GenerationConfig.from_pretrained(model_dir)
    assert (gen.bos_token_id, gen.eos_token_id) == (tok.bos_token_id, tok.eos_token_id)
    checkpoints = sorted(p.name for p in (model_dir / CHECKPOINTS_DIR).iterdir())
    assert checkpoints == ["checkpoint-160", "checkpoint-80", FINGERPRINT_FILE]


def test_examples_are_tokenized_as_the_engine_sends_them(trained, pairs):
    from transformers import AutoTokenizer

    config, _ = trained
    tok = AutoTokenizer.from_pretrained(config.output_dir)
    for prompt, completion in pairs:
        ids, n_prompt = example_ids(prompt, completion, tok)
        assert n_prompt == prompt_length(prompt, tok)  # one BOS + the prompt
        assert ids[:n_prompt] == tok(prompt).input_ids
        assert ids.count(tok.bos_token_id) == 1 and ids[-1] == tok.eos_token_id
        assert tok.decode(ids[n_prompt:-1]) == completion
    ids, _ = example_ids("[INST] a literal <s> in a document [/INST]", "keep_doc()", tok)
    assert ids.count(tok.bos_token_id) == 1  # special-token text stays text, as in the engine


def test_model_card_has_training_facts_and_takes_an_evaluation(trained):
    _, result = trained
    model_dir = Path(result.model_dir)
    card = json.loads((model_dir / CARD_JSON).read_text())
    assert card["teacher"] == "hand-written programs" and card["steps"] == 160
    assert card["losses"][-1] == [160, result.losses[-1][1]]
    readme = (model_dir / "README.md").read_text()
    assert "| teacher | hand-written programs |" in readme
    assert "| 160 | " in readme and "Not evaluated yet" in readme
    update_model_card(model_dir, {"doc": {"f1": 0.8125, "precision": 0.75}, "examples": 12})
    readme = (model_dir / "README.md").read_text()
    assert "| f1 | 0.8125 |" in readme and "Not evaluated yet" not in readme
    assert json.loads((model_dir / CARD_JSON).read_text())["steps"] == 160


@pytest.mark.spark
@pytest.mark.vllm
def test_trained_refiner_refines_in_a_spark_job(spark, trained):
    from prox_spark.generation.engine import EngineConfig
    from prox_spark.stages import ChunkRefiner, DocRefiner

    _, result = trained
    engine = EngineConfig(model=result.model_dir, dtype="float32", kv_cache_gib=0.25,
                          enforce_eager=True, max_num_seqs=8)
    docs = spark.createDataFrame([(1, SPAM), (2, GOOD), (3, NOISY)], "id long, text string")
    rows = {r.id: r for r in docs.repartition(1).transform(DocRefiner(engine))
            .transform(ChunkRefiner(engine, max_new_tokens=64)).collect()}
    assert {i: rows[i].doc_program.strip() for i in rows} == {
        1: DOC_PROGRAMS[SPAM], 2: DOC_PROGRAMS[GOOD], 3: DOC_PROGRAMS[NOISY]}
    assert rows[1].doc_status == "dropped" and rows[1].chunk_programs is None
    assert [p.strip() for p in rows[3].chunk_programs] == [CHUNK_PROGRAMS[NOISY]]
    assert rows[3].refined_text == NOISY_REFINED
    assert rows[2].refined_text == GOOD


@pytest.mark.spark
def test_two_processes_under_torch_distributor(spark, tmp_path, pairs):
    from transformers import AutoModelForCausalLM

    config = TrainConfig(output_dir=str(tmp_path / "ddp"), **TINY, max_steps=4, batch_size=2,
                         save_steps=2, num_processes=2, local_mode=True)
    result = train_sft(pairs, config)
    assert result.steps == 4 and len(result.losses) == 4
    card = json.loads((tmp_path / "ddp" / CARD_JSON).read_text())
    assert card["processes"] == 2  # rank 0 saw a world of two gloo processes
    assert result.train_tokens > 0
    assert sorted(p.name for p in (tmp_path / "ddp" / CHECKPOINTS_DIR).iterdir()) == [
        "checkpoint-2", "checkpoint-4", FINGERPRINT_FILE]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "ddp")
    assert model.config.num_hidden_layers == 2


_TRAIN_SCRIPT = """
import json, sys
from prox_spark.distill.config import TrainConfig
from prox_spark.distill.train import train_sft
pairs = [tuple(p) for p in json.load(open(sys.argv[1]))]
train_sft(pairs, TrainConfig(**json.load(open(sys.argv[2]))))
"""


def test_a_killed_training_resumes_from_its_last_checkpoint(tmp_path, pairs):
    settings = {"output_dir": str(tmp_path / "run"), **TINY, "max_steps": 40, "batch_size": 2,
                "save_steps": 4, "seed": 1}
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    (tmp_path / "config.json").write_text(json.dumps(settings))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _TRAIN_SCRIPT, str(tmp_path / "pairs.json"),
         str(tmp_path / "config.json")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "run" / CHECKPOINTS_DIR
    try:
        deadline = time.monotonic() + 600
        while not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
            assert proc.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.2)
        assert proc.poll() is None, "training finished before it could be killed"
    finally:
        proc.kill()
        proc.wait()
    complete = sorted((int(p.parent.name.split("-")[1]), str(p.parent))
                      for p in checkpoints.glob("checkpoint-*/trainer_state.json"))
    step, last = complete[-1]
    assert step < 40
    result = train_sft(pairs, TrainConfig(**settings))
    assert result.resumed_from == last
    assert result.steps == 40
    logged = [s for s, _ in result.losses]
    assert logged[0] == 1 and logged[-1] == 40  # the killed run's losses carried over
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_a_seed_gives_the_same_model(tmp_path, pairs):
    from safetensors.torch import load_file

    runs = [train_sft(pairs, TrainConfig(output_dir=str(tmp_path / name), **TINY, max_steps=3,
                                         batch_size=2, seed=5))
            for name in ("a", "b")]
    assert runs[0].losses == runs[1].losses
    weights = [load_file(str(tmp_path / name / "model.safetensors")) for name in ("a", "b")]
    assert weights[0].keys() == weights[1].keys()
    assert all(weights[0][k].equal(weights[1][k]) for k in weights[0])


def test_a_base_tokenizer_without_eos_is_refused(tmp_path, pairs):
    from transformers import AutoTokenizer

    base = tmp_path / "base"
    build_tokenizer(base)
    settings = json.loads((base / "tokenizer_config.json").read_text())
    settings.pop("eos_token")
    (base / "tokenizer_config.json").write_text(json.dumps(settings))
    assert AutoTokenizer.from_pretrained(str(base)).eos_token_id is None
    out = tmp_path / "student"
    with pytest.raises(ValueError, match=r"base_model .*no EOS"):
        train_sft(pairs, TrainConfig(output_dir=str(out), base_model=str(base)))
    assert not out.exists()


def test_bad_input_is_refused_up_front(tmp_path, pairs):
    out = tmp_path / "student"
    with pytest.raises(ValueError, match="no examples"):
        train_sft([], TrainConfig(output_dir=str(out)))
    with pytest.raises(ValueError, match=r"examples\[1\]"):
        train_sft([pairs[0], ("prompt only",)], TrainConfig(output_dir=str(out)))
    assert not out.exists()
    with pytest.raises(ValueError, match=r"TrainConfig\.heads"):
        TrainConfig(output_dir=str(out), hidden_size=128, heads=4)  # head size 32
    with pytest.raises(ValueError, match=r"TrainConfig\.warmup_ratio"):
        TrainConfig(output_dir=str(out), warmup_ratio=1.0)
    with pytest.raises(ValueError, match="max_seq_tokens"):
        train_sft(pairs, TrainConfig(output_dir=str(out), **{**TINY, "max_seq_tokens": 8}))


def test_checkpoints_of_other_examples_or_settings_are_refused(tmp_path, pairs):
    """Issue 35, item 1: the same output_dir with new examples (a fresh
    annotate) or new settings never resumes the old checkpoints silently."""
    from safetensors.torch import load_file

    from prox_spark.errors import CheckpointMismatch

    prompts = [p for p, _ in pairs][:8]
    settings = {"output_dir": str(tmp_path / "run"), **TINY, "max_steps": 4, "save_steps": 2,
                "batch_size": 4, "seed": 2}
    first = train_sft([(p, "drop_doc()") for p in prompts], TrainConfig(**settings))
    assert first.steps == 4 and first.resumed_from is None
    weights = load_file(str(tmp_path / "run" / "model.safetensors"))
    keep = [(p, "keep_doc()") for p in prompts]
    n = len(prompts)
    with pytest.raises(CheckpointMismatch, match=rf"/run holds checkpoints trained on other "
                       rf"examples \({n} then, {n} now") as err:
        train_sft(keep, TrainConfig(**settings))
    assert err.value.field == "distill.student.output_dir"
    with pytest.raises(CheckpointMismatch, match=r"settings \(learning_rate: 0.001 -> 0.002\)"):
        train_sft([(p, "drop_doc()") for p in prompts],
                  TrainConfig(**{**settings, "learning_rate": 2e-3}))
    assert load_file(str(tmp_path / "run" / "model.safetensors"))["lm_head.weight"].equal(
        weights["lm_head.weight"])  # nothing was written by the refused calls

    again = train_sft(keep, TrainConfig(**settings, overwrite=True))
    assert again.resumed_from is None and again.steps == 4
    card = json.loads((tmp_path / "run" / CARD_JSON).read_text())
    assert card["resumed_from"] is None
    assert not load_file(str(tmp_path / "run" / "model.safetensors"))["lm_head.weight"].equal(
        weights["lm_head.weight"])
    # Its own checkpoints now resume as before, overwrite or not; a finished
    # training run again trains nothing more.
    trained = load_file(str(tmp_path / "run" / "model.safetensors"))["lm_head.weight"]
    rerun = train_sft(keep, TrainConfig(**settings))
    assert rerun.resumed_from is not None and rerun.steps == 4
    assert load_file(str(tmp_path / "run" / "model.safetensors"))["lm_head.weight"].equal(trained)
    assert not (tmp_path / "run" / CHECKPOINTS_DIR / "checkpoint-5").exists()


def test_a_pretrained_base_is_fine_tuned_into_a_refiner(tmp_path, pairs):
    """Issue 34: the documented path for real corpora. A base made here (a
    tiny Llama pre-trained for seconds on plain web text: BOS + text + EOS,
    loss on every token) is fine-tuned on the SFT pairs with its own
    tokenizer and architecture, and learns to answer with the programs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sample = Path(__file__).resolve().parents[2] / "data" / "sample" / "web_docs.jsonl"
    texts = [json.loads(line)["text"][:1200] for line in sample.read_text().splitlines()[:60]]
    base = tmp_path / "base"
    train_sft([("", t) for t in texts if t.strip()],
              TrainConfig(output_dir=str(base), **TINY, max_steps=20, batch_size=8, seed=4))
    config = TrainConfig(output_dir=str(tmp_path / "student"), base_model=str(base),
                         max_steps=120, batch_size=len(pairs), learning_rate=3e-3,
                         warmup_ratio=0.0, max_seq_tokens=512, seed=4)
    result = train_sft(pairs, config)
    losses = [v for _, v in result.losses]
    assert losses[-1] < losses[0] / 4
    card = json.loads((tmp_path / "student" / CARD_JSON).read_text())
    assert card["base_model"] == str(base)
    base_tok = AutoTokenizer.from_pretrained(str(base))
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "student"))
    assert tok.get_vocab() == base_tok.get_vocab()
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "student"))
    assert model.config.hidden_size == 128 and model.config.num_hidden_layers == 2
    prompt, program = pairs[0]
    ids, n = example_ids(prompt, program, tok)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids[:n]]), max_new_tokens=len(ids) - n + 2,
                             do_sample=False)
    assert tok.decode(out[0][n:], skip_special_tokens=True).strip() == program
