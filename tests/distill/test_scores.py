"""Evaluation metrics, trivial students, verdict and model card on hand-made
cases worked out by hand (pure: no Spark, no model)."""

from __future__ import annotations

import json

import pytest

from prox_spark.distill.card import CARD_JSON, update_model_card, write_model_card
from prox_spark.distill.evaluate import score
from prox_spark.distill.jobs import EvaluateResult
from prox_spark.distill.scores import (
    NO_OUTPUT,
    ChunkScores,
    DocScores,
    applied_calls,
    chunk_scores,
    doc_scores,
)
from prox_spark.generation.prompts import number_line
from prox_spark.program import ChunkPolicy


def numbered(first: int, count: int) -> str:
    return "\n".join(number_line(first + k, f"line {first + k} text") for k in range(count))


def test_doc_scores_by_hand():
    pairs = [
        ("drop_doc()", "drop_doc()"),          # TP
        ("drop_doc()", "drop_doc()"),          # TP
        ("drop_doc()", "keep_doc()"),          # FN
        ("drop_doc()", None),                  # FN: no output is keep, and does not parse
        ("keep_doc()", "drop_doc()"),          # FP
        ("keep_doc()", "keep_doc()"),          # TN
        ("keep_doc()", "I would drop it"),     # TN: no call is keep, and does not parse
        ("keep_doc()", "drop_doc(x)"),         # TN: a refused call decides nothing; no parse
        ("drop_doc()", "```\ndrop_doc()\n```"),  # TP: fences are fine, it parses
        ("keep_doc()", "keep_doc()\ndrop_doc("),  # TN, but a refused call: does not parse
    ]
    # TP = 3, FP = 1, FN = 2, TN = 4, n = 10
    # precision = TP / (TP + FP) = 3 / 4 = 0.75
    # recall    = TP / (TP + FN) = 3 / 5 = 0.6
    # F1        = 2 * 0.75 * 0.6 / (0.75 + 0.6) = 0.9 / 1.35 = 2 / 3
    # accuracy  = (TP + TN) / n = 7 / 10
    # parse rate: outputs 1, 2, 3, 5, 6, 9 parse cleanly = 6 / 10
    # keep class: teacher keeps 5, 6, 7, 8, 10 (5); student keeps 3, 4, 6, 7, 8, 10 (6);
    # both 6, 7, 8, 10 = 4 -> precision 4/6, recall 4/5, F1 = 2 * 4 / (6 + 5) = 8/11
    scores = doc_scores(pairs)
    assert scores == DocScores(
        n=10, precision=0.75, recall=0.6, f1=pytest.approx(2 / 3),
        keep_precision=pytest.approx(4 / 6), keep_recall=0.8, keep_f1=pytest.approx(8 / 11),
        drops=5, keeps=5, parse_rate=0.6, accuracy=0.7, failures=scores.failures)
    # Four failures of four kinds: the three commonest (ties in order met) and two outputs.
    assert [kind for kind, _ in scores.failures.kinds] == [
        NO_OUTPUT, "no recognizable call in the output: '…'", "drop_doc: unknown name '…'"]
    assert scores.failures.examples == ("(no output)", "I would drop it")


def test_doc_measures_with_nothing_to_measure_are_none():
    # Nothing to drop and nothing dropped: drop precision, recall, F1 are n/a (None).
    none = doc_scores([("keep_doc()", "keep_doc()"), ("keep_doc()", None)])
    assert (none.precision, none.recall, none.f1, none.accuracy, none.parse_rate) == \
        (None, None, None, 1.0, 0.5)
    assert (none.keep_precision, none.keep_recall, none.keep_f1) == (1.0, 1.0, 1.0)
    # Drops to find, none found: precision n/a (nothing found), recall 0, F1 0.
    missed = doc_scores([("drop_doc()", "keep_doc()")])
    assert (missed.precision, missed.recall, missed.f1) == (None, 0.0, 0.0)
    # Nothing to find, something found: precision 0, recall n/a, F1 0.
    spurious = doc_scores([("keep_doc()", "drop_doc()")])
    assert (spurious.precision, spurious.recall, spurious.f1) == (0.0, None, 0.0)
    with pytest.raises(ValueError, match="no examples"):
        doc_scores([])


def test_chunk_scores_by_hand():
    a = numbered(37, 6)   # lines 37..42
    b = numbered(0, 4)    # lines 0..3
    c = numbered(100, 3)  # lines 100..102
    d = numbered(5, 2)    # lines 5..6
    triples = [
        # teacher removes {37, 38}, normalizes {"Click"};
        # student removes {37, 38, 39} and {41, 42} clipped from 41..50, normalizes {"Click"}.
        (a, 'remove_lines(line_start=37, line_end=38)\nnormalize(source_str="Click")',
         'remove_lines(line_start=37, line_end=39)\nremove_lines(line_start=41, line_end=50)\n'
         'normalize(source_str="Click", target_str="")'),
        # teacher keeps; student removes {0} and normalizes {"Home"}.
        (b, "keep_chunk()", 'remove_lines(line_start=0, line_end=0)\nnormalize("Home")'),
        # teacher removes {100, 101, 102} (all=True is the chunk), normalizes {"Share", "Ad"};
        # the student was cut off: nothing removed, does not parse.
        (c, 'remove_lines(all=True)\nnormalize(source_str="Share")\nnormalize(source_str="Ad")',
         "remove_lines(line_start=100, line_e"),
        # exact match in a different spelling (positional, start=/end=).
        (d, "remove_lines(line_start=5, line_end=5)", "remove_lines(start=5, end=5)"),
        # no generation at all.
        (d, "remove_lines(line_start=6, line_end=6)", None),
    ]
    # lines: teacher T = {37,38} + {} + {100,101,102} + {5} + {6}          -> 7
    #        student S = {37,38,39,41,42} + {0} + {} + {5} + {}             -> 7
    #        hits = {37,38} + {5}                                           -> 3
    # precision = 3/7, recall = 3/7, F1 = 3/7
    # normalize: T = {"Click"} + {} + {"Share","Ad"} + {} + {} -> 3
    #            S = {"Click"} + {"Home"}                      -> 2, hits = 1
    # precision = 1/2, recall = 1/3, F1 = 2 * (1/2)(1/3) / (1/2 + 1/3) = (1/3)/(5/6) = 2/5
    # exact: only the 4th (calls equal, nothing refused) -> 1/5
    #        (the 1st differs; the 2nd differs; the 3rd is cut off; the 5th is empty)
    # parse: outputs 1, 2, 4 have calls and no refused call -> 3/5
    scores = chunk_scores(triples)
    assert scores == ChunkScores(
        n=5, line_precision=pytest.approx(3 / 7), line_recall=pytest.approx(3 / 7),
        line_f1=pytest.approx(3 / 7), normalize_precision=0.5,
        normalize_recall=pytest.approx(1 / 3), normalize_f1=pytest.approx(2 / 5),
        lines_removed=7, normalizations=3, exact_match=0.2, parse_rate=0.6,
        failures=scores.failures)


def test_chunk_conventions_and_clipping():
    chunk = numbered(37, 3)
    # Keep vs keep: nothing on either side, every F1 n/a (None), never 1; exact match.
    keep = chunk_scores([(chunk, "keep_chunk()", "keep_chunk()")])
    assert (keep.line_f1, keep.normalize_f1, keep.exact_match, keep.parse_rate) == \
        (None, None, 1.0, 1.0)
    # A student range outside the chunk removes none of the chunk's lines.
    outside = chunk_scores([(chunk, "keep_chunk()", "remove_lines(line_start=0, line_end=5)")])
    assert (outside.line_precision, outside.line_recall, outside.line_f1) == (None, None, None)
    assert (outside.exact_match, outside.parse_rate) == (0.0, 1.0)
    with pytest.raises(ValueError, match="no examples"):
        chunk_scores([])
    with pytest.raises(ValueError, match="no \\[NNN\\] number"):
        chunk_scores([("not numbered", "keep_chunk()", None)])


TEACHER = "remove_lines(line_start=10, line_end=11)"
# A degenerate answer: one usable call, three refused ones, cut at the token limit.
DEGENERATE = ("remove_lines(line_start=10, line_end=19)\n"
              + "remove_lines(line_start=10, line_end=1O)\n" * 3 + "remove_lines(line_st")


def test_degenerate_chunk_outputs_count_as_a_run_applies_them():
    chunk = numbered(10, 10)  # lines 10..19
    # 4 errors (3 refused calls + the cut-off call) > max_errors 1: the run ignores it.
    assert applied_calls(DEGENERATE, 19, cut=True)[0] == ()
    # Cut cleanly after a whole call: one error (the cut), within max_errors 1: applied.
    assert len(applied_calls(TEACHER, 19, cut=True)[0]) == 1
    triples = [(chunk, TEACHER, DEGENERATE), (chunk, TEACHER, TEACHER)]
    scores = chunk_scores(triples, cut=[True, True])
    # teacher {10, 11} twice = 4 lines; student: nothing (ignored) + {10, 11} = 2; hits 2
    # precision 2/2, recall 2/4, F1 = 2 * 2 / (2 + 4) = 2/3 (not the degenerate {10..19})
    assert (scores.line_precision, scores.line_recall) == (1.0, 0.5)
    assert scores.line_f1 == pytest.approx(2 / 3)
    assert (scores.ignored, scores.truncated, scores.parse_rate, scores.exact_match) == \
        (1, 2, 0.0, 0.0)
    assert scores.failures.kinds[0] == ("remove_lines: unexpected '…'", 3)
    # With policy max_errors 0 the cut alone is too many: nothing is applied.
    strict = chunk_scores(triples, cut=[True, True], policy=ChunkPolicy(max_errors=0))
    assert (strict.line_precision, strict.line_recall, strict.line_f1, strict.ignored) == \
        (None, 0.0, 0.0, 2)


def test_a_truncated_doc_answer_decides_but_does_not_parse():
    scores = doc_scores([("drop_doc()", "drop_doc()")], cut=[True])
    assert (scores.f1, scores.parse_rate, scores.truncated) == (1.0, 0.0, 1)


def test_skewed_split_reports_the_majority_student_and_the_verdict():
    chunk = numbered(10, 10)
    # 9 teacher drops, 1 keep; the student always answers drop_doc().
    doc = [("drop_doc()", "drop_doc()", False)] * 9 + [("keep_doc()", "drop_doc()", False)]
    teacher_chunk = "remove_lines(line_start=10, line_end=18)"
    evaluation = score(doc, [(chunk, teacher_chunk, DEGENERATE, True)], "tiny")
    assert evaluation.majority == "drop_doc()" and evaluation.doc == evaluation.doc_trivial
    # drop F1 = 2 * 9 / (10 + 9) = 18/19 for both; remove everything: precision 9/10,
    # recall 1, F1 18/19; the ignored degenerate answer removes nothing: F1 0.
    assert evaluation.doc.f1 == pytest.approx(18 / 19)
    assert evaluation.remove_everything.line_f1 == pytest.approx(18 / 19)
    assert evaluation.verdict() == (
        "Verdict: does not beat the trivial students on doc (drop F1 0.947 vs 0.947, keep F1 "
        "0.000 vs 0.000 for always drop_doc()) nor on chunk (removed-lines F1 0.000 vs 0.947 "
        "for remove everything)")
    # Getting the one keep right beats the majority student; the chunk still does not.
    doc[-1] = ("keep_doc()", "keep_doc()", False)
    better = score(doc, [(chunk, teacher_chunk, DEGENERATE, True)], "tiny").verdict()
    assert better.startswith("Verdict: beats the trivial students on doc (drop F1 1.000 vs "
                             "0.947, keep F1 1.000 vs 0.000 for always drop_doc()) but not on "
                             "chunk (removed-lines F1 0.000")
    summary = evaluation.summary()
    assert "always drop_doc()" in summary and "teacher keeps (support)" in summary


def test_nothing_to_measure_is_na_in_the_summary_and_the_card(tmp_path):
    chunk = numbered(10, 4)
    evaluation = score([], [(chunk, TEACHER, TEACHER, False)], "tiny")
    rows = {row[0]: row for row in evaluation.tables()[0]["rows"]}
    assert rows["normalize F1"][1:4] == [None, None, None]
    line = next(x for x in evaluation.summary().splitlines() if x.startswith("normalize F1"))
    assert line.split()[2:] == ["n/a", "n/a", "n/a"]
    # The paper's figure stands beside the same measure only.
    assert rows["removed lines F1"][4] == 0.752 and rows["normalize F1"][4] == ""
    write_model_card(tmp_path, {"teacher": "hand-written programs"})
    update_model_card(tmp_path, EvaluateResult(evaluation, 3).figures())
    readme = (tmp_path / "README.md").read_text()
    assert "| normalize F1 | n/a | n/a | n/a |  |" in readme
    assert "| removed lines F1 | 1.0000 | 0.0000 | 0.6667 | 0.7520 |" in readme
    assert ("**Verdict: beats the trivial students on chunk (removed-lines F1 1.000 vs 0.667 "
            "for remove everything)**") in readme
    card = json.loads((tmp_path / CARD_JSON).read_text())
    assert card["evaluation"]["scores"]["chunk"]["normalize_f1"] is None
    assert card["teacher"] == "hand-written programs"


def test_a_low_parse_rate_is_a_warning_with_the_commonest_errors():
    chunk = numbered(10, 10)
    cases = [(chunk, TEACHER, DEGENERATE, True), (chunk, TEACHER, "I cannot tell", False),
             (chunk, TEACHER, TEACHER, False)]
    (warning,) = score([], cases, "tiny").warnings()
    assert warning.startswith("warning: chunk parse rate 0.333 is below 0.9; commonest "
                              "errors: 3x remove_lines: unexpected '…'; ")
    assert "remove_lines(line_start=10, line_end=19)\\nremove_lines(" in warning
    assert "(184 characters) | I cannot tell" in warning
    assert score([], cases[2:], "tiny").warnings() == []
