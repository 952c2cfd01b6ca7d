"""Every outcome says what happened: failed is not kept, a cut program is one
error, an output with no call is recorded, every drop has a reason."""

from __future__ import annotations

import pandas as pd

from prox_spark.program import ChunkPolicy, refine_document, run_chunk_program, run_doc_program
from prox_spark.stages.apply import apply_batch
from prox_spark.stages.rule_stages import apply_rule_batch

DOC = "\n".join(f"Line {i} has enough words in it to be kept by the policy." for i in range(6))
SPAM_LINES = "\n".join(f"spam line {i} buy now click here" for i in range(20))


def test_a_failure_keeps_the_text_as_it_was_and_says_why():
    result = refine_document(DOC, None, None, failure="engine_start")
    assert (result.status, result.text, result.reason) == ("failed", DOC, "failed:engine_start")


def test_doc_program_errors_survive_without_chunk_programs():
    result = refine_document(DOC, "keep_doc()\nremove_lines", None)
    assert result.status == "kept"
    assert result.errors == 1 and "remove_lines" in result.error_messages[0]


def test_an_output_with_no_call_is_an_error_not_a_silent_keep():
    doc = run_doc_program(DOC, "I think this page is fine.")
    assert doc.status == "kept" and doc.errors == 1
    assert "no recognizable call" in doc.error_messages[0]
    chunk = refine_document(DOC, "keep_doc()", ["Sure! Here is the cleaned text."])
    assert chunk.errors == 1 and "no recognizable call" in chunk.error_messages[0]
    assert refine_document(DOC, "keep_doc()", ["keep_chunk()"]).errors == 0


def test_a_truncated_program_counts_one_error_and_the_policy_sees_it():
    program = "\n".join(f"remove_lines(line_start={i}, line_end={i})" for i in range(0, 6))
    whole = refine_document(SPAM_LINES, None, [program], ChunkPolicy(max_errors=0))
    assert whole.status == "edited" and whole.errors == 0
    cut = refine_document(SPAM_LINES, None, [program], ChunkPolicy(max_errors=0),
                          chunk_truncated=[True])
    assert (cut.status, cut.errors) == ("reverted", 1)
    assert "cut at the token limit" in cut.error_messages[0]
    # Cut in the middle of a call: the incomplete call is that same error.
    mid = refine_document(SPAM_LINES, None, [program + "\nremove_lines(line_start=7, line_e"],
                          chunk_truncated=[True])
    assert mid.errors == 1
    doc = refine_document(DOC, "keep_d", None, doc_truncated=True)
    assert doc.errors >= 1 and "cut at the token limit" in doc.error_messages[0]


def test_policy_drops_name_the_rule():
    assert run_doc_program(DOC, "drop_doc()").reason == "doc_model"
    few = run_chunk_program("only five words are here", "keep_chunk()")
    assert (few.status, few.reason) == ("dropped", "chunk_policy:min_words")
    most = run_chunk_program(DOC, "remove_lines(line_start=0, line_end=4)",
                             min_words=0, min_kept_ratio=0.5)
    assert (most.status, most.reason) == ("dropped", "chunk_policy:min_kept_ratio")
    assert refine_document("   ", None, None).reason == "empty_text"
    assert run_chunk_program(DOC, "keep_chunk()").reason is None


def test_apply_batch_marks_failed_rows_and_truncation():
    out = apply_batch(
        pd.Series([DOC, DOC, SPAM_LINES]),
        pd.Series(["keep_doc()", None, None]),
        pd.Series([None, None, ["remove_lines(line_start=0, line_end=1)"]]),
        ChunkPolicy(max_errors=0), None,
        failures=(pd.Series(["generation", None, None]), pd.Series([None, "prompt_too_long",
                                                                     None])),
        truncated=(pd.Series([None, None, None]), pd.Series([None, None, [True]])),
    )
    assert list(out["status"]) == ["failed", "failed", "reverted"]
    assert list(out["drop_reason"]) == ["failed:generation", "failed:prompt_too_long", None]
    assert list(out["text"])[:2] == [DOC, DOC]  # not refined: the text as it was
    assert list(out["words_after"])[:2] == [0, 0]  # not in the corpus after
    assert list(out["truncated"]) == [False, False, True]
    assert out["errors"][2] == 1


def test_a_rule_edit_that_removes_every_word_drops_the_document():
    from prox_spark.rules.result import RuleResult, line_ranges

    def strip_all(text: str) -> RuleResult:
        return RuleResult(removed=line_ranges(list(range(len(text.split("\n"))))))

    out = apply_rule_batch(pd.Series(["first line\nsecond line", "keep me\n"]), strip_all, {},
                           name="strip_all")
    assert out["text"][0] is None
    assert out["reason"][0] == "strip_all:empty_after_edit"
    assert out["reason"][1] == "strip_all:empty_after_edit"
    assert out["words_removed"][0] == 4
