"""Known answers: each reason code of each rule, on a document made to trigger it."""

from __future__ import annotations

import pytest

from prox_spark.program import RemoveLines, run_chunk_program
from prox_spark.rules import c4_quality, fineweb_quality, gopher_quality, gopher_repetition

PROSE = ("The river runs through the old town and past the market square, where people "
         "have met to trade bread and cheese with their neighbours for as long as anyone "
         "can remember. ")


def words(n: int) -> str:
    return " ".join(f"word{i % 50}x" for i in range(n))


GOPHER_CASES = [
    ("The cat and the dog.", "gopher_short_doc"),
    (PROSE * 6000, "gopher_long_doc"),
    ("the of an to a is " * 20, "gopher_below_avg_threshold"),
    ("the of " + "extraordinarily " * 60, "gopher_above_avg_threshold"),
    (PROSE * 2 + " #tag" * 30, "gopher_too_many_hashes"),
    (PROSE * 2 + " ..." * 30, "gopher_too_many_ellipsis"),
    ("\n".join("- " + PROSE for _ in range(12)), "gopher_too_many_bullets"),
    ("\n".join(PROSE + "..." for _ in range(4)) + "\n" + PROSE, "gopher_too_many_end_ellipsis"),
    (PROSE + " 1999" * 40, "gopher_below_alpha_threshold"),
    (words(80) + ".", "gopher_enough_stop_words"),
]


@pytest.mark.parametrize(("text", "code"), GOPHER_CASES)
def test_gopher_quality_codes(text, code):
    result = gopher_quality(text)
    assert result.reason == code
    assert result.program == f"drop_doc()  # {code}"


def test_gopher_quality_keeps_prose_and_thresholds_can_be_disabled():
    assert gopher_quality(PROSE * 3).reason is None
    assert gopher_quality("The cat and the dog.", min_doc_words=None,
                          min_stop_words=None).reason is None


REPETITION_CASES = [
    ("", "empty"),
    ("\n\n".join(["Same paragraph here."] * 3 + ["Other one."]), "dup_para_frac"),
    ("\n\n".join(["A long repeated paragraph " * 5] * 2 + [PROSE]
                   + [f"p{i}" for i in range(5)]),
     "dup_para_char_frac"),
    ("\n".join(["Same line."] * 3 + ["Other line."]), "dup_line_frac"),
    ("\n".join(["A long repeated line " * 8] * 2 + [f"unique line {i}" for i in range(8)]),
     "dup_line_char_frac"),
    ("buy now " * 40 + PROSE, "top_2_gram"),
]


@pytest.mark.parametrize(("text", "code"), REPETITION_CASES)
def test_gopher_repetition_codes(text, code):
    assert gopher_repetition(text).reason == code


def test_gopher_repetition_ngram_codes():
    assert gopher_repetition(PROSE).reason is None
    segment = " ".join(f"s{i}" for i in range(15))
    text = " ".join(f"w{i}" for i in range(20)) + " " + segment + " " + segment
    assert gopher_repetition(text, top_n_grams=()).reason == "duplicated_5_n_grams"
    assert gopher_repetition(text, top_n_grams=(), dup_n_grams=()).reason is None


C4_GOOD = "\n".join(f"This is sentence number {i} of a fine page." for i in range(6))


@pytest.mark.parametrize(
    ("extra", "code"),
    [("Lorem ipsum dolor sit amet, consectetur.", "lorem_ipsum"),
     ("Some code like function() { return 1; } here.", "curly_bracket")],
)
def test_c4_document_codes(extra, code):
    assert c4_quality(C4_GOOD + "\n" + extra).reason == code


def test_c4_too_few_sentences():
    assert c4_quality("One good sentence here.\nAnother good one here.").reason == \
        "too_few_sentences"


def test_c4_line_removals_are_programs_the_interpreter_applies():
    text = "\n".join([
        "Home | About",                                 # 0: no terminal punctuation
        "This is sentence number 1 of a fine page.",
        "Please enable JavaScript to view this site.",   # 2: javascript
        "This is sentence number 2 of a fine page.",
        "We use cookies. Read our privacy policy.",      # 4: policy
        "Ok.",                                           # 5: too few words
        "This is sentence number 3 of a fine page [1].",
        "This is sentence number 4 of a fine page.",
        "This is sentence number 5 of a fine page.",
    ])
    result = c4_quality(text)
    assert result.reason is None
    assert result.removed == (RemoveLines(0, 0), RemoveLines(2, 2), RemoveLines(4, 5))
    applied = run_chunk_program(text, result.program, max_errors=0)
    assert applied.status == "edited" and applied.errors == 0
    assert applied.text.splitlines() == [
        "This is sentence number 1 of a fine page.",
        "This is sentence number 2 of a fine page.",
        "This is sentence number 3 of a fine page .",
        "This is sentence number 4 of a fine page.",
        "This is sentence number 5 of a fine page.",
    ]


FINEWEB_CASES = [
    ("  \n \n", "empty"),
    ("\n".join(f"line {i} without an end mark but long enough to count" for i in range(10)),
     "line_punct_ratio"),
    ("\n".join(f"Short {i}." for i in range(10)), "short_line_ratio"),
    ("\n".join([PROSE.strip()] * 3), "char_dup_ratio"),
    ("\n".join(f"{i}." for i in range(30)) + "\n" + PROSE, "list_ratio"),
]


@pytest.mark.parametrize(("text", "code"), FINEWEB_CASES)
def test_fineweb_codes(text, code):
    result = fineweb_quality(text, **({"short_line_thr": None} if code == "list_ratio" else {}))
    assert result.reason == code


def test_fineweb_keeps_prose():
    assert fineweb_quality(PROSE.strip() + "\n" + PROSE.replace("river", "road")).reason is None
