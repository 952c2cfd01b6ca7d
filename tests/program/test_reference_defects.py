"""Each known defect of the reference executor (docs section 3) is absent here."""

from __future__ import annotations

import pytest

from prox_spark.program import run_chunk_program, run_doc_program

WORDS = " ".join(f"word{i}" for i in range(40))


def doc(*lines: str) -> str:
    return "\n".join([*lines, WORDS])


@pytest.mark.parametrize("needle", ["a, b", "key=value", "call(x)", "it's", "a),(b"])
def test_normalize_strings_with_separators_are_applied_whole(needle):
    text = doc(f"before {needle} after")
    program = f"normalize(source_str={needle!r}, target_str='X')"
    result = run_chunk_program(text, program)
    assert result.errors == 0
    assert result.text == doc("before X after")
    assert result.normalizations == 1


def test_single_quoted_and_escaped_strings_match():
    text = doc('He said "stop" and it\'s done')
    r1 = run_chunk_program(text, "normalize('He said', 'She said')")
    assert r1.text.startswith("She said")
    r2 = run_chunk_program(text, 'normalize(source_str="\\"stop\\"", target_str="")')
    assert r2.text.startswith("He said  and")
    r3 = run_chunk_program(text, "normalize(source_str='it\\'s', target_str='it is')")
    assert "it is done" in r3.text


def test_positional_calls_are_not_errors():
    result = run_chunk_program(doc("nav", "menu"), 'remove_lines(0, 1)\nnormalize("word0 ", "")')
    assert result.errors == 0
    assert result.text == WORDS.replace("word0 ", "")


def test_call_indented_by_a_space_is_applied():
    result = run_chunk_program(doc("nav"), " remove_lines(line_start=0, line_end=0)")
    assert result.text == WORDS
    assert result.status == "edited"


def _refused(text: str, program: str):
    """The result of a program the interpreter refuses: one error, text kept."""
    result = run_chunk_program(text, program)
    assert result.errors == 1
    assert result.text == text
    assert result.status == "kept"
    return result


def test_normalize_of_a_space_is_refused_not_applied():
    _refused(doc("keep my spaces"), 'normalize(source_str=" ", target_str="")')


@pytest.mark.parametrize("text", ["", " ", "\n\n", " \t\n  \n"])
def test_whitespace_only_documents_are_dropped_without_division_by_zero(text):
    result = run_chunk_program(text, "remove_lines(0, 0)")
    assert result.status == "dropped"
    assert result.text == ""
    assert run_chunk_program(text, "").status == "dropped"


def test_doc_decision_is_a_call_not_a_substring():
    text = "A long article about raindrops and the weather " * 3
    assert run_doc_program(text, "The raindrops fell").status == "kept"
    assert run_doc_program(text, "dropped").status == "kept"
    assert run_doc_program(text, "I think drop_doc() is right").status == "dropped"
    assert run_doc_program(text, "keep_doc()\ndrop_doc()").status == "kept"
    assert run_doc_program(text, "drop_doc(").errors == 1
    assert run_doc_program(text, "drop_doc(").status == "kept"


def test_cut_off_call_counts_once():
    program = "remove_lines(line_start=0, line_end=0)\nremove_lines(start=7, end"
    result = run_chunk_program(doc("nav"), program)
    assert result.errors == 1
    assert result.status == "edited"


def test_errors_are_counted_per_call_without_merging_ranges():
    text = "\n".join([WORDS, *[f"l{i}" for i in range(5)]])  # lines 0..5
    one = run_chunk_program(text, "remove_lines(1, 3)\nremove_lines(2, 99)")
    assert one.errors == 1
    assert (one.status, one.text, one.lines_removed) == ("edited", WORDS, 5)
    # The reference merges overlapping ranges first and would count one error.
    two = run_chunk_program(text, "remove_lines(4, 99)\nremove_lines(5, 99)")
    assert two.errors == 2
    assert two.status == "reverted"
    assert two.text == text


def test_range_starting_past_the_end_is_ignored_with_an_error():
    result = _refused(doc("nav"), "remove_lines(50, 60)")
    assert "starts past the last line" in result.error_messages[0]


def test_range_ending_past_the_end_is_clipped_and_applied():
    text = "\n".join([WORDS, "footer one", "footer two"])
    result = run_chunk_program(text, "remove_lines(1, 10)")
    assert result.errors == 1
    assert result.text == WORDS
    assert result.lines_removed == 2
