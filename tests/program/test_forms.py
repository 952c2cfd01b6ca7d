"""Every form of program output listed in docs section 2 is read correctly."""

from __future__ import annotations

import pytest

from prox_spark.program import parse_program, run_chunk_program
from prox_spark.program.calls import DropDoc, KeepChunk, KeepDoc, Normalize, RemoveLines

BODY = "\n".join(f"line {i} has a handful of ordinary words in it" for i in range(12))


def calls(program: str):
    parsed = parse_program(program)
    return list(parsed.calls), len(parsed.errors)


def test_keyword_line_numbers():
    assert calls("remove_lines(line_start=3, line_end=9)") == ([RemoveLines(3, 9)], 0)


def test_start_end_synonyms():
    assert calls("remove_lines(start=3, end=9)") == ([RemoveLines(3, 9)], 0)
    assert calls("remove_lines(start=1, line_end=2)") == ([RemoveLines(1, 2)], 0)


def test_positional_arguments():
    assert calls("remove_lines(0, 5)") == ([RemoveLines(0, 5)], 0)
    assert calls('normalize("Click here", "")') == ([Normalize("Click here", "")], 0)
    assert calls('normalize("Click here")') == ([Normalize("Click here", "")], 0)
    assert calls("remove_lines(2, line_end=4)") == ([RemoveLines(2, 4)], 0)


def test_keep_synonyms():
    assert calls("skip_chunk()") == ([KeepChunk()], 0)
    assert calls("keep_chunk()") == ([KeepChunk()], 0)
    assert calls("untouch_doc()") == ([KeepDoc()], 0)
    assert calls("keep_doc()") == ([KeepDoc()], 0)
    assert calls("drop_doc()") == ([DropDoc()], 0)


def test_remove_all_lines():
    assert calls("remove_lines(all=True)") == ([RemoveLines(0, None)], 0)
    assert run_chunk_program(BODY, "remove_lines(all=True)").status == "dropped"


def test_several_calls_on_one_line():
    got, errors = calls('remove_lines(0, 1) normalize("a", "b"); remove_lines(start=4, end=4)')
    assert got == [RemoveLines(0, 1), Normalize("a", "b"), RemoveLines(4, 4)]
    assert errors == 0


def test_code_fences_comments_and_indentation():
    program = (
        "```python\n"
        "# remove_lines(0, 11) is only a comment\n"
        "    remove_lines(line_start=0, line_end=1)  # the nav bar\n"
        '\tnormalize(source_str="#hashtag", target_str="")\n'
        "```"
    )
    got, errors = calls(program)
    assert got == [RemoveLines(0, 1), Normalize("#hashtag", "")]
    assert errors == 0


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"a, b"', "a, b"),
        ('"x=1"', "x=1"),
        ('"f(x)"', "f(x)"),
        ('"it\'s"', "it's"),
        ("'single'", "single"),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ('"back\\\\slash"', "back\\slash"),
        ('"tab\\there"', "tab\there"),
        ('"\\u00e9t\\xe9"', "été"),
        ('r"raw\\n"', "raw\\n"),
        ('"a), normalize(b"', "a), normalize(b"),
        ('"""tri"ple"""', 'tri"ple'),
    ],
)
def test_strings_with_awkward_characters(source, expected):
    got, errors = calls(f"normalize(source_str={source}, target_str='')")
    assert (got, errors) == ([Normalize(expected, "")], 0)


def test_cut_off_call_is_one_error():
    got, errors = calls("remove_lines(line_start=0, line_end=1)\nremove_lines(start=7, end")
    assert got == [RemoveLines(0, 1)]
    assert errors == 1
    got, errors = calls('normalize(source_str="Pages: 1 3')
    assert (got, errors) == ([], 1)


def test_call_missing_its_parenthesis_does_not_hide_the_next():
    got, errors = calls('normalize("a", "b"\nremove_lines(1, 2)')
    assert got == [RemoveLines(1, 2)]
    assert errors == 1


def test_degenerate_repetition():
    program = "remove_lines(line_start=0, line_end=0)\n" * 200
    got, errors = calls(program)
    assert got == [RemoveLines(0, 0)] * 200 and errors == 0
    result = run_chunk_program(BODY, program)
    assert result.lines_removed == 1 and result.status == "edited"


@pytest.mark.parametrize(
    "program",
    [
        "remove_lines(line_start='a', line_end=2)",
        "remove_lines(line_start=1)",
        "remove_lines(1, 2, 3)",
        "remove_lines(line_start=-1, line_end=2)",
        "remove_lines(line_start=5, line_end=2)",
        "remove_lines(line_start=True, line_end=2)",
        "remove_lines(first=1, last=2)",
        "remove_lines(start=1, line_start=1, end=2)",
        "normalize(source_str=3, target_str='')",
        "normalize(target_str='x')",
        "normalize(source_str='', target_str='x')",
        "normalize(source_str=' ', target_str='')",
        "normalize(source_str='\\n\\t', target_str='')",
        "drop_doc(1)",
        "keep_chunk(x=1)",
        "remove_lines(line_start=x, line_end=2)",
        "remove_lines(all=True, line_start=1)",
    ],
)
def test_malformed_call_of_a_known_function_is_one_error(program):
    got, errors = calls(program)
    assert (got, errors) == ([], 1)


def test_unknown_text_is_ignored():
    program = "Sure! Here is the program:\nprint('hello')\nfoo(1, 2)\nremove_line(1, 2)\n"
    assert calls(program) == ([], 0)
    assert calls("my_drop_doc() x.drop_doc() raindrops drop_docs()") == ([], 0)


def test_calls_written_back_parse_to_themselves():
    originals = [
        DropDoc(), KeepDoc(), KeepChunk(), RemoveLines(3, 9), RemoveLines(0, None),
        Normalize('a "quoted", odd=string) \\ with\nnewline\ttab', "t'"),
    ]
    program = "\n".join(str(c) for c in originals)
    assert calls(program) == (originals, 0)


def test_a_line_naming_a_function_without_a_call_is_one_error():
    from prox_spark.program import parse_program, run_chunk_program

    assert len(parse_program("remove_lines").errors) == 1
    assert len(parse_program("drop_doc garbage here").errors) == 1
    # A cut-off call is counted once, not again as a bare name.
    assert len(parse_program("remove_lines(start=7, end").errors) == 1
    # Names in comments, in string arguments, or beside a call are not errors.
    assert parse_program("keep_chunk()  # no remove_lines needed").errors == ()
    assert parse_program('normalize(source_str="drop_doc", target_str="")').errors == ()
    # Degenerate output of several such lines is reverted, not applied.
    doc = "\n".join(f"Line {i} has enough words to count here." for i in range(6))
    program = "remove_lines(line_start=0, line_end=1)\nremove_lines\nremove_lines"
    assert run_chunk_program(doc, program).status == "reverted"
