"""Teacher prompts, answer parsing, the doc label rule and the split (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prox_spark.distill.labels import (
    SPLITS,
    LabelError,
    calls_prompt,
    doc_label,
    parse_scores,
    rewrite_prompt,
    scoring_prompt,
    split_for,
)

CHUNK = "[037]Home | Blog\n[038]Bread needs time. Read more\n[039]Knead it well."


@pytest.mark.parametrize("answer, scores", [
    ("Educational score: 3\nFormat score: 4", (3, 4)),
    ("educational score:5\nFORMAT SCORE: 0", (5, 0)),
    ("**Educational score:** 2/5\n**Format score:** 4 / 5", (2, 4)),
    ("Educational score = 1\nFormat score = 2\n", (1, 2)),
    # Reasoning first, the final answer last: the last statement counts.
    ("The educational score is hard to tell.\nEducational score: 0\nEducational score: 4\n"
     "Format score: 3", (4, 3)),
])
def test_parse_scores_reads_the_format_tolerantly(answer, scores):
    assert parse_scores(answer) == scores


@pytest.mark.parametrize("answer, reason", [
    (None, "empty answer"),
    ("", "empty answer"),
    ("  \n ", "empty answer"),
    ("This page is about bread.", "no educational score"),
    ("Educational score: 3\nFormat sc", "no format score"),  # cut off
    ("Educational score: 3\nFormat score:", "no format score"),  # cut off before the number
    ("Educational score: 7\nFormat score: 2", "educational score out of range: 7"),
    ("Educational score: 3\nFormat score: -1", "format score out of range: -1"),
    ("Educational score: 3.5\nFormat score: 2", "educational score is not an integer: 3.5"),
])
def test_unusable_answers_give_a_reason(answer, reason):
    with pytest.raises(LabelError) as caught:
        parse_scores(answer)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("edu, fmt, label", [
    (3, 0, "keep_doc()"), (5, 5, "keep_doc()"), (2, 4, "keep_doc()"), (2, 5, "keep_doc()"),
    (2, 3, "drop_doc()"), (1, 5, "drop_doc()"), (0, 0, "drop_doc()"),
])
def test_doc_label_is_the_paper_rule(edu, fmt, label):
    assert doc_label(edu, fmt) == label


def test_scoring_prompt_holds_the_text_and_ends_with_the_answer_format():
    prompt = scoring_prompt("A text about rivers.")
    assert "A text about rivers." in prompt
    assert prompt.endswith("Educational score: <points>\nFormat score: <points>")
    # The format it asks for is what parse_scores reads.
    assert parse_scores("Educational score: 4\nFormat score: 1") == (4, 1)


def test_calls_prompt_shows_the_chunk_numbered_as_the_refiner_sees_it():
    prompt = calls_prompt(CHUNK)
    assert prompt.endswith(f"[doc]\n{CHUNK}\n[/doc]\nAnswer:")
    for call in ("remove_lines(line_start=", "normalize(source_str=", "keep_chunk()"):
        assert call in prompt


def test_rewrite_prompt_shows_the_lines_without_numbers():
    prompt = rewrite_prompt(CHUNK)
    assert "Home | Blog\nBread needs time. Read more\nKnead it well.\n</text>" in prompt
    assert "[037]" not in prompt
    with pytest.raises(ValueError, match="no \\[NNN\\] number"):
        rewrite_prompt("not numbered")


def test_split_is_stable_and_known_values_do_not_move():
    assert split_for("doc-1", 0.5) == split_for("doc-1", 0.5)
    assert split_for("anything", 0.0) == "train"
    assert split_for("anything", 1.0) == "eval"
    # Pinned (sha256 of the id: doc-0 -> 0.739, doc-2 -> 0.400, doc-7 -> 0.040): a
    # change of hash would move documents between the splits of existing tables.
    assert [split_for(f"doc-{i}", 0.5) for i in range(8)] == [
        "train", "train", "eval", "train", "train", "train", "eval", "eval"]
    assert split_for("doc-7", 0.05) == "eval" and split_for("doc-2", 0.39) == "train"
    assert {split_for(str(i), 0.3) for i in range(50)} <= set(SPLITS)


def test_split_roughly_matches_the_fraction():
    ids = [f"id-{i}" for i in range(4000)]
    for fraction in (0.05, 0.2, 0.5):
        share = sum(split_for(i, fraction) == "eval" for i in ids) / len(ids)
        assert abs(share - fraction) < 0.03, (fraction, share)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=30), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_split_is_monotonic_in_the_fraction(doc_id, a, b):
    low, high = sorted((a, b))
    # A document in eval at a small fraction stays in eval at a larger one.
    if split_for(doc_id, low) == "eval":
        assert split_for(doc_id, high) == "eval"


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), "0.2", True])
def test_split_refuses_a_bad_fraction(fraction):
    with pytest.raises(ValueError, match="eval_fraction"):
        split_for("x", fraction)
