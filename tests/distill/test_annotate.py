"""`annotate` on real Spark and Delta: the rules, table and llm teachers.

The llm teacher is a tiny model trained here to answer scoring, calls and
rewrite prompts, some answers wrong on purpose; exactly the valid ones must
survive, each discard with its reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prox_spark.config import ConfigError, parse_config
from prox_spark.distill.annotate import annotate
from prox_spark.distill.section import distill_config
from prox_spark.distill.teachers import rules_teacher
from prox_spark.generation.engine import get_tokenizer
from prox_spark.generation.prompts import chunk_document, chunk_prompt, doc_prompt
from prox_spark.rules import QUALITY_RULES

pytestmark = pytest.mark.spark

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "web_docs.jsonl"
RULES = ["gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality"]


def _config(tmp: Path, source: Path, teacher: dict[str, Any], base_model: str | None,
            inp: dict[str, Any] | None = None, **distill: Any) -> Any:
    raw = {
        "input": {"path": str(source), "format": "jsonl", **(inp or {})},
        "output": {"path": str(tmp / "refined")},
        "stages": RULES,
        "doc_model": {"model": str(tmp / "student"), "max_prompt_tokens": 400},
        "chunk_model": {"model": str(tmp / "student"), "max_prompt_tokens": 300},
        "distill": {"sample": {"size": 40, "seed": 3}, "eval_fraction": 0.25,
                    "teacher": teacher, "sft_table": {"path": str(tmp / "sft")},
                    "student": {"output_dir": str(tmp / "student"), "base_model": base_model,
                                "hidden_size": 128, "heads": 2},
                    **distill},
    }
    config = parse_config(raw, check_models=False)
    distill_config(config)
    return config


def _rows(spark: Any, tmp: Path) -> list[Any]:
    return spark.read.format("delta").load(str(tmp / "sft")).collect()


def _docs() -> dict[str, str]:
    return {d["id"]: d["text"] for d in map(json.loads, SAMPLE.read_text().splitlines())}


def test_rules_teacher_labels_the_sample(spark: Any, tmp_path: Path, tiny_model: Path) -> None:
    config = _config(tmp_path, SAMPLE, {"kind": "rules"}, str(tiny_model))
    summary = annotate(config, spark)
    rows = _rows(spark, tmp_path)
    docs = _docs()
    tok = get_tokenizer(str(tiny_model))
    rules = [(n, QUALITY_RULES[n], {}) for n in RULES]
    doc_rows = [r for r in rows if r.task == "doc"]
    assert summary.documents == len(doc_rows) == 40
    split_of: dict[str, set[str]] = {}
    for r in rows:
        split_of.setdefault(r.id, set()).add(r.split)
        assert r.valid == (r.reason is None)
    assert all(len(s) == 1 for s in split_of.values()), "one document in two splits"
    assert {"train", "eval"} <= {s for v in split_of.values() for s in v}
    for r in doc_rows:
        expected = rules_teacher(docs[r.id], rules)
        assert r.prompt == doc_prompt(docs[r.id], tok, 400)
        if r.valid:
            assert r.completion == expected.doc
        else:
            assert r.reason.startswith("duplicate example")
    chunks = [r for r in rows if r.task == "chunk"]
    assert chunks, "kept documents give chunk examples"
    kept = {r.id for r in doc_rows if r.completion == "keep_doc()"}
    assert {r.id for r in chunks} <= kept
    edited = 0
    for r in chunks:
        assert r.prompt == chunk_prompt(chunk_document(docs[r.id], tok, 300)[r.chunk_index])
        if r.valid:
            edited += r.completion != "keep_chunk()"
    assert edited > 0
    assert summary.report is not None and Path(summary.report).is_file()
    assert "Discarded examples by reason" in Path(summary.report).read_text()


def test_annotate_resolves_duplicate_ids_by_the_input_rule(spark: Any, tmp_path: Path,
                                                           tiny_model: Path) -> None:
    docs = list(_docs().items())[:6]
    (a, text_a), (b, text_b) = docs[0], docs[1]
    source = tmp_path / "dup.jsonl"
    lines = [{"id": i, "text": t} for i, t in docs] + [{"id": a, "text": text_b}]
    source.write_text("".join(json.dumps(r) + "\n" for r in lines))
    tok = get_tokenizer(str(tiny_model))
    labelled = {}
    for rule in ("error", "first"):
        config = _config(tmp_path / rule, source, {"kind": "rules"}, str(tiny_model),
                         inp={"on_duplicate_id": rule}, sample={"size": 100, "seed": 3})
        annotate(config, spark)
        labelled[rule] = {r.id: r.prompt for r in _rows(spark, tmp_path / rule)
                          if r.task == "doc"}
    assert a not in labelled["error"] and b in labelled["error"]
    assert len(labelled["error"]) == 5
    assert labelled["first"][a] == doc_prompt(text_a, tok, 400)
    assert len(labelled["first"]) == 6


def test_table_teacher_reads_stored_programs(spark: Any, tmp_path: Path,
                                            tiny_model: Path) -> None:
    docs = _docs()
    ids = sorted(docs)[:30]
    refined = []
    for i, doc_id in enumerate(ids):
        if i % 3 == 0:
            refined.append((doc_id, "drop_doc()", None, "dropped", "doc_model", False))
        else:
            # A released-model-like chunk program: the first line, and one
            # range past the end (clipped into the chunk, as the reference does).
            refined.append((doc_id, "keep_doc()", ["remove_lines(line_start=0, line_end=0)"],
                            "edited", None, False))
    # Rows whose programs did not apply cleanly teach nothing.
    bad = {ids[1]: ("reverted", None, False), ids[2]: ("edited", None, True),
           ids[4]: ("failed", "failed:engine", False),
           ids[3]: ("dropped", "gopher_quality", False)}
    refined = [(d, p, c, *bad[d]) if d in bad else (d, p, c, s, r, t)
               for d, p, c, s, r, t in refined]
    # The per-stage cut flags a refined table stores (one per chunk program).
    refined = [(*row, False, [row[-1]] if row[2] else None) for row in refined]
    table = str(tmp_path / "released")
    (spark.createDataFrame(refined, "id string, doc_program string, chunk_programs "
                                    "array<string>, status string, drop_reason string, "
                                    "truncated boolean, doc_truncated boolean, "
                                    "chunk_truncated array<boolean>")
     .write.format("delta").save(table))
    config = _config(tmp_path, SAMPLE, {"kind": "table", "table": {"path": table}},
                     str(tiny_model), sample={"size": None})
    summary = annotate(config, spark)
    rows = _rows(spark, tmp_path)
    doc_rows = {r.id: r for r in rows if r.task == "doc"}
    assert not {r.id for r in rows} & set(bad)
    assert set(doc_rows) == set(ids) - set(bad)
    assert ("table teacher skipped 4 rows whose programs did not apply cleanly: "
            "dropped by gopher_quality 1, status failed 1, status reverted 1, "
            "truncated program 1") in summary.notes
    for i, doc_id in enumerate(ids):
        if doc_id in bad:
            continue
        want = "drop_doc()" if i % 3 == 0 else "keep_doc()"
        r = doc_rows[doc_id]
        assert r.completion == want or r.reason.startswith("duplicate example")
    firsts = [r for r in rows if r.task == "chunk" and r.chunk_index == 0 and r.valid]
    assert firsts and all(r.completion == "remove_lines(line_start=0, line_end=0)"
                          for r in firsts)
    later = [r for r in rows if r.task == "chunk" and (r.chunk_index or 0) > 0 and r.valid]
    assert all(r.completion == "keep_chunk()" for r in later)


def test_config_errors_name_the_field(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match=r"distill\.teacher\.kind"):
        _config(tmp_path, SAMPLE, {"kind": "oracle"}, str(tiny_model))
    with pytest.raises(ConfigError, match=r"distill\.teacher\.table"):
        _config(tmp_path, SAMPLE, {"kind": "table"}, str(tiny_model))
    with pytest.raises(ConfigError, match=r"distill\.eval_fraction"):
        _config(tmp_path, SAMPLE, {"kind": "rules"}, str(tiny_model), eval_fraction=1.5)
    with pytest.raises(ConfigError, match=r"distill\.student\.base_model"):
        _config(tmp_path, SAMPLE, {"kind": "rules"}, str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match=r"distill\.sample\.size"):
        _config(tmp_path, SAMPLE, {"kind": "rules"}, None, sample={"size": "10"})


# --- the llm teacher -------------------------------------------------------

KEEP_TEXT = "\n".join([
    "Home | News | Contact",
    "Click here to subscribe",
    "Bread needs flour, water, salt and time to rise well.",
    "Long fermentation develops flavour that a quick rise cannot match.",
    "Bake on a hot stone so the crust sets early. Click here",
])
ODD_TEXT = "\n".join([
    "Menu",
    "Rivers rise in the hills and reach the sea after many kilometres.",
    "Old mills along the banks used the current to grind grain.",
])
DROP_TEXT = "BEST CHEAP pills ONLINE!!! Buy pills now, free pills, pills pills."
RANGE_TEXT = "Jupiter is bright enough to see from a city, even with a full moon."
NONSENSE_TEXT = "Loading..."


def _teacher_pairs(tok: Any) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    from prox_spark.distill.labels import calls_prompt, rewrite_prompt, scoring_prompt
    from prox_spark.distill.llm_teacher import teacher_prompt

    scores = {
        "keep": (KEEP_TEXT, "Educational score: 4\nFormat score: 3"),
        "odd": (ODD_TEXT, "Educational score: 2\nFormat score: 5"),
        "drop": (DROP_TEXT, "Educational score: 0\nFormat score: 1"),
        "range": (RANGE_TEXT, "Educational score: 9\nFormat score: 2"),
        "nonsense": (NONSENSE_TEXT, "It is a loading page."),
    }
    pairs = [(teacher_prompt(scoring_prompt(t), tok), a) for t, a in scores.values()]
    keep_chunk = chunk_document(KEEP_TEXT, tok, 300)[0]
    odd_chunk = chunk_document(ODD_TEXT, tok, 300)[0]
    answers = {
        # valid range, range past the chunk, normalize of a string in the chunk,
        # normalize of a string not in it, and a call our parser cannot read.
        ("calls", "keep"): ('remove_lines(line_start=0, line_end=1)\n'
                            'remove_lines(line_start=40, line_end=41)\n'
                            'normalize(source_str=" Click here", target_str="")\n'
                            'normalize(source_str="Buy now", target_str="")\n'
                            'remove_lines(line_start=3, line_end='),
        ("calls", "odd"): "I would remove the menu line.",
        ("rewrite", "keep"): "\n".join([*KEEP_TEXT.split("\n")[2:4],
                                        "Bake on a hot stone so the crust sets early."]),
        ("rewrite", "odd"): "\n".join(["Rivers rise in the green hills and reach the sea after "
                                       "many kilometres.", ODD_TEXT.split("\n")[2]]),
    }
    for (mode, which), answer in answers.items():
        chunk = keep_chunk if which == "keep" else odd_chunk
        ask = calls_prompt if mode == "calls" else rewrite_prompt
        pairs.append((teacher_prompt(ask(chunk), tok), answer))
    return pairs, {"keep_chunk": keep_chunk, "odd_chunk": odd_chunk}


@pytest.mark.vllm
@pytest.mark.parametrize("mode", ["calls", "rewrite"])
def test_llm_teacher_keeps_exactly_the_valid_labels(
        spark: Any, tmp_path: Path, tiny_model: Path, trained_model: Any, mode: str) -> None:
    tok = get_tokenizer(str(tiny_model))
    pairs, chunks = _teacher_pairs(tok)
    teacher = trained_model(pairs, steps=400)
    source = tmp_path / "docs.jsonl"
    texts = {"keep": KEEP_TEXT, "odd": ODD_TEXT, "drop": DROP_TEXT, "range": RANGE_TEXT,
             "nonsense": NONSENSE_TEXT}
    source.write_text("".join(json.dumps({"id": k, "text": t}) + "\n" for k, t in texts.items()))
    config = _config(tmp_path, source,
                     {"kind": "llm", "model": str(teacher), "chunk_mode": mode,
                      "kv_cache_gib": 0.25, "enforce_eager": True, "max_model_len": 2048},
                     str(teacher), sample={"size": None})
    annotate(config, spark)
    rows = {(r.id, r.task, r.chunk_index): r for r in _rows(spark, tmp_path)}
    assert rows[("keep", "doc", None)].completion == "keep_doc()"
    assert rows[("odd", "doc", None)].completion == "keep_doc()"  # edu 2, format 5
    assert rows[("drop", "doc", None)].completion == "drop_doc()"
    assert not rows[("range", "doc", None)].valid
    assert "out of range" in rows[("range", "doc", None)].reason
    assert not rows[("nonsense", "doc", None)].valid
    assert "score" in rows[("nonsense", "doc", None)].reason
    assert not any(k[0] in ("drop", "range", "nonsense") and k[1] == "chunk" for k in rows)
    keep, odd = rows[("keep", "chunk", 0)], rows[("odd", "chunk", 0)]
    if mode == "calls":
        assert keep.valid
        assert keep.completion == ('remove_lines(line_start=0, line_end=1)\n'
                                   'normalize(source_str=" Click here", target_str="")')
        dropped = " | ".join(keep.discarded_calls)
        assert "outside the chunk" in dropped
        assert "not in the chunk" in dropped
        assert "unparsable" in dropped
        assert not odd.valid and odd.reason
    else:
        from prox_spark.distill.checks import chunk_lines, execute_on_chunk

        assert keep.valid, keep.reason
        lines, _ = execute_on_chunk(chunk_lines(chunks["keep_chunk"]), keep.completion)
        assert "\n".join(lines) == keep.teacher_output.strip()
        assert not odd.valid and odd.reason.startswith("rewrite adds text")


def test_a_skewed_teacher_is_balanced_by_default_and_says_so(spark: Any) -> None:
    """Issue 34: 90% drops among the train doc examples are balanced to half
    by default (the eval split keeps the teacher's share); an explicit
    drop_share is kept; under 80% nothing changes."""
    from prox_spark.distill.annotate import balance_examples

    def examples(drops: int, keeps: int) -> Any:
        rows = [(f"d{i}", "doc", "drop_doc()", True, None, "train") for i in range(drops)]
        rows += [(f"k{i}", "doc", "keep_doc()", True, None, "train") for i in range(keeps)]
        rows += [(f"e{i}", "doc", "drop_doc()", True, None, "eval") for i in range(9)]
        return spark.createDataFrame(rows, "id string, task string, completion string, "
                                           "valid boolean, reason string, split string")

    def valid(df: Any, split: str = "train") -> dict[str, int]:
        got = df.where(f"valid and split = '{split}'").groupBy("completion").count().collect()
        return {r["completion"]: r["count"] for r in got}

    out, note = balance_examples(examples(90, 10), None)
    assert valid(out) == {"drop_doc()": 10, "keep_doc()": 10}
    assert valid(out, "eval") == {"drop_doc()": 9}
    assert note is not None and "drop_doc() for 90%" in note and "balanced to 50%" in note
    assert out.where("not valid").first().reason.startswith("class balance")
    out, note = balance_examples(examples(90, 10), 0.8)
    assert valid(out) == {"drop_doc()": 40, "keep_doc()": 10} and note is None
    out, note = balance_examples(examples(75, 25), None)
    assert valid(out) == {"drop_doc()": 75, "keep_doc()": 25} and note is None


# --- refusals: nothing written ---------------------------------------------


def _cjk_texts(count: int = 40) -> list[str]:
    """Documents of 1,090 distinct CJK and Hangul characters, most of them in
    150 recurring words (so merges pay off), the rest rare."""
    import random

    rng = random.Random(0)
    chars = [chr(0x4E00 + i) for i in range(1200)] + [chr(0xAC00 + i) for i in range(500)]
    words = ["".join(rng.choice(chars[:300]) for _ in range(rng.randint(2, 3)))
             for _ in range(150)]

    def line() -> str:
        return "".join(rng.choice(words) if rng.random() < 0.8 else rng.choice(chars)
                       for _ in range(30)) + "。"

    return ["\n".join(line() for _ in range(6)) for _ in range(count)]


def _jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"d{i:03d}", "text": t}) + "\n"
                            for i, t in enumerate(texts)))
    return path


def _scratch(tmp: Path, vocab_size: int) -> dict[str, Any]:
    return {"output_dir": str(tmp / "student"), "base_model": None, "hidden_size": 128,
            "heads": 2, "vocab_size": vocab_size}


def test_tokenizer_learns_merges_on_a_cjk_sample(tmp_path: Path) -> None:
    from prox_spark.distill.tokenizer import build_tokenizer, chars_per_token

    texts = _cjk_texts()
    path = build_tokenizer(tmp_path / "tok", texts, vocab_size=1000)
    # 1,090 distinct characters in 1,000 tokens: characters alone would be
    # one token each; the commonest keep tokens, merges join them.
    assert chars_per_token(path, texts) > 1.5
    tok = get_tokenizer(str(path))
    text = texts[0] + "\n" + chr(0x4E00 + 1199) + " ok"  # a rare character: bytes
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.decode(ids, skip_special_tokens=True) == text


def test_a_tokenizer_too_small_for_the_sample_is_refused(spark: Any, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "cjk.jsonl", _cjk_texts())
    config = _config(tmp_path, source, {"kind": "rules"}, None, tasks=["doc"],
                     student=_scratch(tmp_path, 320))
    with pytest.raises(ConfigError, match=r"^distill\.student\.vocab_size: .* 0\.\d\d "
                                          r"characters per token .* raise vocab_size"):
        annotate(config, spark)
    assert not (tmp_path / "student").exists() and not (tmp_path / "sft").exists()
    config = _config(tmp_path, source, {"kind": "rules"}, None, tasks=["doc"],
                     student=_scratch(tmp_path, 4000))
    summary = annotate(config, spark)
    assert summary.documents == 40 and (tmp_path / "student" / "tokenizer").is_dir()


def test_a_sample_without_text_is_refused(spark: Any, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "empty.jsonl", ["", " ", "\n\n", ""])
    config = _config(tmp_path, source, {"kind": "rules"}, None, student=_scratch(tmp_path, 400))
    with pytest.raises(ConfigError, match=r"^input: every one of the \d sampled documents"):
        annotate(config, spark)
    assert not (tmp_path / "student").exists() and not (tmp_path / "sft").exists()


def test_a_teacher_model_that_cannot_load_exits_2(config_file: Any, tmp_path: Path,
                                                  capsys: Any) -> None:
    from prox_spark.cli import main

    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text("{}")
    for model, why in [(tmp_path / "missing", "does not exist"),
                       (tmp_path / "no-weights", "holds no weights")]:
        path = config_file(tmp_path, name="annotate.yaml", source=SAMPLE, stages=RULES,
                           distill={"teacher": {"kind": "llm", "model": str(model)},
                                    "sft_table": {"path": str(tmp_path / "sft")},
                                    "student": {"output_dir": str(tmp_path / "student")}})
        assert main(["annotate", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "distill.teacher.model" in err[0] and why in err[0], err
        assert not (tmp_path / "sft").exists() and not (tmp_path / "student").exists()


@pytest.mark.vllm
def test_a_run_whose_every_answer_is_discarded_writes_nothing(
        spark: Any, tmp_path: Path, tiny_model: Path) -> None:
    from prox_spark.io.delta import table_version
    from prox_spark.refs import TableRef

    source = _jsonl(tmp_path / "docs.jsonl", [KEEP_TEXT, ODD_TEXT, DROP_TEXT])
    rules = _config(tmp_path, source, {"kind": "rules"}, str(tiny_model), tasks=["doc"])
    annotate(rules, spark)
    before = table_version(spark, TableRef(path=str(tmp_path / "sft")))
    # A random model answers no scoring prompt with scores.
    config = _config(tmp_path, source,
                     {"kind": "llm", "model": str(tiny_model), "kv_cache_gib": 0.25,
                      "enforce_eager": True, "max_model_len": 2048, "doc_max_new_tokens": 8},
                     str(tiny_model), tasks=["doc"])
    with pytest.raises(ConfigError, match=r"^distill\.teacher: all 3 examples were discarded, "
                                          r"nothing written; commonest reasons: doc: "):
        annotate(config, spark)
    assert table_version(spark, TableRef(path=str(tmp_path / "sft"))) == before
