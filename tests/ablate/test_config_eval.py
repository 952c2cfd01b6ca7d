"""The `ablate:` section's checks (no Spark), and lm-eval's accuracy on a
local task file against log-likelihoods computed here from the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prox_spark.ablate.config import ProxyEval, TaskFile, parse_ablate
from prox_spark.errors import ConfigError


def section(tmp: Path, **changes: Any) -> dict[str, Any]:
    (tmp / "a.jsonl").write_text('{"id": "1", "text": "hello"}\n')
    base: dict[str, Any] = {
        "output": {"path": str(tmp / "out")},
        "variants": [{"name": "raw", "input": {"path": str(tmp / "a.jsonl"), "format": "jsonl"}},
                     {"name": "prox", "input": {"path": str(tmp / "a.jsonl"),
                                                "format": "jsonl"}}],
        "tokens": 4096, "model": {"hidden_size": 64, "layers": 1, "heads": 2, "seq_len": 64},
    }
    base.update(changes)
    return {"ablate": base}


def test_a_good_section_parses_with_its_defaults(tmp_path: Path) -> None:
    config = parse_ablate(section(tmp_path))
    assert config.baseline == "raw" and config.seeds == (0,)
    assert config.work_dir == str(tmp_path / "out") + "_work"
    assert config.report_path == tmp_path / "out_report.html"
    assert config.train.batch_size == 16 and config.eval.limit == 1000
    assert config.eval.tasks_defaulted and "hellaswag" in config.eval.tasks


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"variants": [{"name": "raw", "input": {"path": "x", "format": "jsonl"}}]},
     "ablate.variants", "two or more variants"),
    ({"variants": [{"name": "a", "table": {"path": "/nowhere/t"}},
                   {"name": "a", "table": {"path": "/nowhere/t"}}]},
     "ablate.variants[0].table.path", "does not exist"),
    ({"tokens": 10}, "ablate.tokens", "less than one sequence"),
    ({"tokens": -5}, "ablate.tokens", "between"),
    ({"model": {"seq_len": 8}}, "ablate.model.seq_len", "between"),
    ({"model": {"hidden_size": 64, "heads": 3}}, "ablate.model.heads", "must divide"),
    ({"seeds": [1, 1]}, "ablate.seeds", "repeats a seed"),
    ({"train": {"batch_size": "16"}}, "ablate.train.batch_size", "expected int"),
    ({"eval": {"task_files": ["/no/such.jsonl"]}}, "ablate.eval.task_files[0]",
     "does not exist"),
    ({"colour": 1}, "ablate.colour", "unknown key"),
])
def test_bad_settings_name_the_setting(tmp_path: Path, changes: dict[str, Any], field: str,
                                       words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_ablate(section(tmp_path, **changes))
    assert caught.value.field == field, str(caught.value)
    assert words in str(caught.value)


def test_duplicate_variant_names_are_refused(tmp_path: Path) -> None:
    raw = section(tmp_path)
    raw["ablate"]["variants"][1]["name"] = "raw"
    with pytest.raises(ConfigError, match=r"variants\[1\].name: 'raw' is the name of an earlier"):
        parse_ablate(raw)


@pytest.mark.parametrize(("line", "words"), [
    ("not json", "line 2: not JSON"),
    ('{"query": "q", "choices": ["a", "b"], "gold": 2}', "line 2: gold must be an index"),
    ('{"query": "q", "choices": ["a"], "gold": 0}', "two or more"),
    ('{"choices": ["a", "b"], "gold": 0}', "missing query"),
])
def test_a_malformed_task_file_line_is_named(tmp_path: Path, line: str, words: str) -> None:
    tasks = tmp_path / "my_mc.jsonl"
    tasks.write_text('{"query": "q", "choices": ["a", "b"], "gold": 1}\n' + line + "\n")
    with pytest.raises(ConfigError, match=words):
        parse_ablate(section(tmp_path, eval={"task_files": [str(tasks)]}))


def test_lm_eval_accuracy_equals_our_own_log_likelihoods(tmp_path: Path) -> None:
    """A random tiny Llama: lm-eval's acc over a local task file is the share
    of items whose gold choice has the highest summed log-probability of its
    tokens after the query, computed here with the model directly."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from prox_spark.ablate.evaluate import Suite
    from prox_spark.distill.tokenizer import build_tokenizer

    items = [{"query": f"The {w} sat on the", "choices": ["mat.", "roof of the barn.", "dog"],
              "gold": i % 3} for i, w in enumerate(["cat", "old dog", "bird", "child", "fox"])]
    path = tmp_path / "sat.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in items))
    build_tokenizer(tmp_path / "tok", [x["query"] + " " + c for x in items for c in x["choices"]],
                    400)
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    torch.manual_seed(3)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
        bos_token_id=1, eos_token_id=2, pad_token_id=0)).eval()

    suite = Suite(ProxyEval(tasks=(), task_files=(TaskFile("sat", str(path), 5),), limit=10),
                  None)
    scores = {s.metric: s for s in suite.score(model, tok, 128)}

    def loglik(context: str, continuation: str) -> float:
        whole = tok(context + " " + continuation)["input_ids"]  # one BOS first
        head = tok(context)["input_ids"]
        assert whole[0] == head[0] == tok.bos_token_id
        with torch.no_grad():
            logits = model(torch.tensor([whole])).logits[0].log_softmax(-1)
        return sum(float(logits[i - 1, whole[i]]) for i in range(len(head), len(whole)))

    right = [max(range(3), key=lambda c, x=x: loglik(x["query"], x["choices"][c])) == x["gold"]
             for x in items]
    assert scores["acc"].value == pytest.approx(sum(right) / len(items))
    assert scores["acc"].examples == 5 and scores["acc"].chance == pytest.approx(1 / 3)
    assert 0 < scores["acc"].value < 1 or scores["acc"].stderr == 0
