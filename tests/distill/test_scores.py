"""Evaluation metrics on hand-made cases worked out by hand (pure)."""

from __future__ import annotations

import pytest

from prox_spark.distill.scores import ChunkScores, DocScores, chunk_scores, doc_scores
from prox_spark.generation.prompts import number_line


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
    scores = doc_scores(pairs)
    assert scores == DocScores(n=10, precision=0.75, recall=0.6, f1=pytest.approx(2 / 3),
                               parse_rate=0.6, accuracy=0.7)


def test_doc_conventions_with_no_positives():
    # Nothing to drop and nothing dropped: precision = recall = F1 = 1 by convention.
    none = doc_scores([("keep_doc()", "keep_doc()"), ("keep_doc()", None)])
    assert (none.precision, none.recall, none.f1, none.accuracy, none.parse_rate) == \
        (1.0, 1.0, 1.0, 1.0, 0.5)
    # Drops to find, none found: precision 0 (nothing right), recall 0, F1 0.
    missed = doc_scores([("drop_doc()", "keep_doc()")])
    assert (missed.precision, missed.recall, missed.f1) == (0.0, 0.0, 0.0)
    # Nothing to find, something found: precision 0, recall 0, F1 0.
    spurious = doc_scores([("keep_doc()", "drop_doc()")])
    assert (spurious.precision, spurious.recall, spurious.f1) == (0.0, 0.0, 0.0)
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
    assert scores == ChunkScores(n=5, line_precision=pytest.approx(3 / 7),
                                 line_recall=pytest.approx(3 / 7), line_f1=pytest.approx(3 / 7),
                                 normalize_f1=pytest.approx(2 / 5), exact_match=0.2,
                                 parse_rate=0.6)


def test_chunk_conventions_and_clipping():
    chunk = numbered(37, 3)
    # Keep vs keep: nothing on either side, F1 1; exact match.
    keep = chunk_scores([(chunk, "keep_chunk()", "keep_chunk()")])
    assert (keep.line_f1, keep.normalize_f1, keep.exact_match, keep.parse_rate) == \
        (1.0, 1.0, 1.0, 1.0)
    # A student range outside the chunk removes none of the chunk's lines.
    outside = chunk_scores([(chunk, "keep_chunk()", "remove_lines(line_start=0, line_end=5)")])
    assert (outside.line_precision, outside.line_recall, outside.line_f1) == (1.0, 1.0, 1.0)
    assert (outside.exact_match, outside.parse_rate) == (0.0, 1.0)
    with pytest.raises(ValueError, match="no examples"):
        chunk_scores([])
    with pytest.raises(ValueError, match="no \\[NNN\\] number"):
        chunk_scores([("not numbered", "keep_chunk()", None)])
