"""Rule and dedup stages on Spark: programs recorded per row, rows never lost."""

from __future__ import annotations

import random

import pytest

from prox_spark.stages import ExactDedup, NearDedup, RuleStage
from prox_spark.stages.rule_stages import RuleChain, fuse_rule_stages

pytestmark = pytest.mark.spark

PROSE = ("The river runs through the old town and past the market square, where people "
         "have met to trade bread and cheese with their neighbours for as long as anyone "
         "can remember.")
C4_DOC = "\n".join(
    ["Home | About"] + [f"The sentence number {i} of a page and more." for i in range(6)]
)


def frame(spark, rows):
    return spark.createDataFrame(rows, "id string, text string")


def test_rule_stages_record_programs_and_keep_every_row(spark):
    df = frame(spark, [("short", "Too short to keep."), ("prose", "\n".join([PROSE] * 6)),
                       ("c4", C4_DOC), ("null", None)])
    out = (df.transform(RuleStage("c4_quality"))
             .transform(RuleStage("gopher_quality", min_doc_words=20)))
    rows = {r.id: r for r in out.collect()}
    assert sorted(rows) == ["c4", "null", "prose", "short"]
    assert rows["short"].status == "dropped" and rows["short"].text is None
    assert [(e.stage, e.reason) for e in rows["short"].rule_edits] == [
        ("c4_quality", "too_few_sentences")]
    assert rows["short"].rule_edits[0].program == "drop_doc()  # too_few_sentences"
    c4 = rows["c4"]
    assert c4.status == "edited"
    assert c4.text == "\n".join(f"The sentence number {i} of a page and more." for i in range(6))
    assert [(e.stage, e.program, e.reason, e.words_removed) for e in c4.rule_edits] == [
        ("c4_quality", "remove_lines(line_start=0, line_end=0)", None, 3)]
    assert rows["null"].status == "dropped" and rows["null"].rule_edits == []
    assert rows["prose"].status == "kept" and rows["prose"].rule_edits == []


def test_a_rule_chain_writes_the_rows_of_its_stages_run_one_at_a_time(spark):
    """The pipeline runs consecutive rule stages as one Python UDF; every
    column of every row must be what the stages write one `transform` at a
    time: edits in order, a later rule reading the text an earlier one
    left, a failing rule's error kept beside the others' edits."""
    df = frame(spark, [("short", "Too short to keep."), ("prose", "\n".join([PROSE] * 6)),
                       ("c4", C4_DOC), ("null", None), ("empty", ""),
                       ("digits", "\n".join([PROSE + " 42"] * 6)),
                       ("boom", "\n".join([PROSE.replace("runs", "explodes")] * 6))])
    def no_digits(text):  # local: Spark's workers take it by value
        if "explodes" in text:
            raise RuntimeError("a broken user rule")
        return not any(ch.isdigit() for ch in text)

    stages = [RuleStage("c4_quality"), RuleStage(no_digits, name="no_digits"),
              RuleStage("gopher_quality", min_doc_words=20)]
    fused = fuse_rule_stages(list(stages))
    assert len(fused) == 1 and isinstance(fused[0], RuleChain)
    one_at_a_time = df
    for stage in stages:
        one_at_a_time = one_at_a_time.transform(stage)
    expected = sorted(one_at_a_time.collect())
    got = sorted(df.transform(fused[0]).collect())
    assert got == expected
    assert {r.id: r.status for r in got}["digits"] == "dropped"
    boom = {r.id: r for r in got}["boom"]
    assert "no_digits failed: RuntimeError" in boom.rule_error and boom.status == "kept"


def test_unknown_rule_or_parameter_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown rule 'gopher'"):
        RuleStage("gopher")
    with pytest.raises(ValueError, match="unknown parameter"):
        RuleStage("gopher_quality", min_words=3)


def test_exact_dedup_keeps_one_per_normalized_text(spark):
    df = frame(spark, [("b", "Hello, World!  Same text."), ("a", "hello world same text"),
                       ("c", "Something else entirely."), ("d", None)])
    rows = {r.id: r for r in df.transform(ExactDedup()).collect()}
    assert rows["a"].status == "kept" and rows["a"].duplicate_of is None
    assert rows["b"].status == "dropped" and rows["b"].duplicate_of == "a"
    assert rows["b"].rule_edits[0].program == "drop_doc()  # duplicate of a"
    assert rows["c"].duplicate_of is None and rows["d"].duplicate_of is None


def _article(rng: random.Random, n: int = 200) -> list[str]:
    vocab = [f"{w}{i}" for i, w in enumerate("abcdefghijklmnopqrstuvwxyz" * 40)]
    return rng.choices(vocab, k=n)


def test_near_dedup_finds_planted_near_duplicates_only(spark):
    rng = random.Random(5)
    rows, planted = [], {}
    for i in range(30):
        words = _article(rng)
        rows.append((f"doc{i:02d}", " ".join(words)))
        if i % 3 == 0:
            changed = list(words)
            for pos in rng.sample(range(len(changed)), 3):
                changed[pos] = "changed"
            rows.append((f"doc{i:02d}-copy", " ".join(changed)))
            planted[f"doc{i:02d}-copy"] = f"doc{i:02d}"
    out = {r.id: r for r in frame(spark, rows).transform(NearDedup(threshold=0.8)).collect()}
    found = {k: r.duplicate_of for k, r in out.items() if r.duplicate_of}
    assert found == planted
    assert all(out[k].status == "dropped" and out[k].text is None for k in planted)
    assert all(r.status == "kept" for k, r in out.items() if k not in planted)
