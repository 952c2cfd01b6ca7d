"""The fingerprint changes exactly when a row's result could change."""

from __future__ import annotations

import copy

import pytest

from prox_spark.config import parse_config
from prox_spark.fingerprint import fingerprint

MODEL = {"model": "org/model", "dtype": "float32"}
BASE = {
    "input": {"path": "in.jsonl", "format": "jsonl"},
    "output": {"path": "out"},
    "doc_model": dict(MODEL),
    "chunk_model": dict(MODEL),
}


def fp(raw: dict) -> str:
    return fingerprint(parse_config(raw, check_models=False, check_paths=False))


@pytest.mark.parametrize("section, key, value", [
    ("doc_model", "dtype", "bfloat16"), ("doc_model", "max_model_len", 4096),
    ("doc_model", "seed", 7), ("chunk_model", "max_doc_chars", 1000),
    ("chunk_model", "max_new_tokens", 100), ("doc_model", "tokenizer", "org/other"),
])
def test_each_setting_that_decides_output_changes_it(section, key, value):
    raw = copy.deepcopy(BASE)
    raw[section][key] = value
    assert fp(raw) != fp(BASE)


def test_settings_that_decide_nothing_leave_it():
    raw = copy.deepcopy(BASE)
    raw["doc_model"]["max_num_seqs"] = 8        # throughput only
    raw["doc_model"]["kv_cache_gib"] = 0.5
    assert fp(raw) == fp(BASE)


def test_defaults_written_out_and_unused_policies_do_not_count():
    rules = {"input": BASE["input"], "output": BASE["output"],
             "stages": ["gopher_quality", "exact_dedup"]}
    explicit = {**rules, "stages": [{"gopher_quality": {"min_doc_words": 50}},
                                    {"exact_dedup": {"priority": None}}]}
    assert fp(explicit) == fp(rules)
    assert fp({**rules, "policy": {"max_errors": 3}}) == fp(rules)
    assert fp({**rules, "stages": [{"gopher_quality": {"min_doc_words": 60}}]}) != fp(rules)
    assert fp({**BASE, "policy": {"max_errors": 3}}) != fp(BASE)
