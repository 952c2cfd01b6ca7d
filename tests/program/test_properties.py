"""Property-based checks: any input returns, valid removals remove exactly
their lines, and results agree with a small obviously-correct oracle."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from prox_spark.program import (
    KNOWN_FUNCTIONS,
    ChunkPolicy,
    Normalize,
    RemoveLines,
    parse_program,
    run_chunk_program,
    run_doc_program,
)

LENIENT = {"max_errors": 10**6, "min_kept_ratio": 0.0, "min_words": 0}

# Programs built from fragments of the language hit the parser's edge cases
# far more often than uniformly random text.
fragments = st.sampled_from(
    [*KNOWN_FUNCTIONS, "(", ")", ",", "=", '"', "'", "\\", "#", "\n", " ", "line_start",
     "end", "all=True", "1", "-3", "99999999999999999999999", "True", "```", "r'", '"""']
)
programs = st.one_of(st.text(), st.lists(fragments, max_size=40).map("".join))
documents = st.lists(st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=30),
                     min_size=1, max_size=15).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(text=st.text(), program=programs)
def test_any_program_on_any_text_returns(text, program):
    parse_program(program)
    doc = run_doc_program(text, program)
    chunk = run_chunk_program(text, program)
    for result in (doc, chunk):
        assert result.status in {"kept", "edited", "dropped", "reverted"}
        assert isinstance(result.text, str)
        assert result.errors >= 0
        assert (result.text == "") or result.status != "dropped"


def test_program_text_is_never_executed(tmp_path: Path):
    sentinel = tmp_path / "pwned"
    payloads = [
        f"__import__('pathlib').Path({str(sentinel)!r}).touch()",
        f"remove_lines(line_start=__import__('os').system('touch {sentinel}'), line_end=1)",
        f"normalize(source_str=open({str(sentinel)!r}, 'w'), target_str='')",
        f"exec(\"open({str(sentinel)!r}, 'w')\")",
    ]
    for payload in payloads:
        run_chunk_program("a b c\nd e f", payload)
        run_doc_program("a b c", payload)
    assert not sentinel.exists()
    assert os.path.exists(tmp_path)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), text=documents)
def test_valid_removals_remove_exactly_those_lines(data, text):
    lines = text.split("\n")
    n = len(lines)
    ranges = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).map(sorted),
                 max_size=5)
    )
    program = "\n".join(f"remove_lines(line_start={a}, line_end={b})" for a, b in ranges)
    result = run_chunk_program(text, program, **LENIENT)
    removed = {i for a, b in ranges for i in range(a, b + 1)}
    assert result.errors == 0
    assert result.lines_removed == len(removed)
    expected = "\n".join(line for i, line in enumerate(lines) if i not in removed)
    if result.status != "dropped":
        assert result.text == expected


@settings(max_examples=200, deadline=None)
@given(text=documents, start=st.integers(0, 40), extra=st.integers(0, 10**30))
def test_line_numbers_past_the_end_are_errors(text, start, extra):
    n = len(text.split("\n"))
    end = start + extra
    result = run_chunk_program(text, f"remove_lines({start}, {end})", **LENIENT)
    assert result.errors == (1 if end >= n else 0)


@given(text=st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2003", max_size=50), program=programs)
def test_whitespace_documents_are_dropped(text, program):
    assert run_chunk_program(text, program).status == "dropped"


# --- cross-check against an obviously-correct formulation --------------------

def oracle(text: str, calls: list, invalid: int, policy: ChunkPolicy) -> tuple[str, str, int]:
    """Docs section 3, written the plain way: sets of line numbers, then replaces."""
    lines = text.split("\n")
    n = len(lines)
    errors = invalid
    removed: set[int] = set()
    norms = []
    for call in calls:
        if isinstance(call, Normalize):
            norms.append(call)
        elif call.end is None:
            removed |= set(range(n))
        elif call.start >= n:
            errors += 1
        else:
            if call.end >= n:
                errors += 1
            removed |= set(range(call.start, min(call.end, n - 1) + 1))
    reverted = errors > policy.max_errors
    refined = text
    if not reverted:
        refined = "\n".join(line for i, line in enumerate(lines) if i not in removed)
        for norm in norms:
            refined = refined.replace(norm.source, norm.target)
    before, after = len(text.split()), len(refined.split())
    if (not reverted and before and after / before <= policy.min_kept_ratio) or (
        after <= policy.min_words
    ):
        return "", "dropped", errors
    status = "reverted" if reverted else ("edited" if refined != text else "kept")
    return refined, status, errors


words = st.sampled_from(["the", "Home", "|", "About", "cookies", "Click", "here", "a,b", "x=1",
                         "(c)", "it's", '"q"', "2024", "\u00e9t\u00e9", "\\", "#tag"])
doc_lines = st.lists(words, max_size=12).map(" ".join)
rich_documents = st.lists(doc_lines, min_size=1, max_size=25).map("\n".join)


@st.composite
def call_lists(draw, n_lines: int):
    calls = []
    invalid = 0
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["range", "range", "all", "norm", "bad"]))
        if kind == "range":
            a = draw(st.integers(0, n_lines + 3))
            calls.append(RemoveLines(a, a + draw(st.integers(0, 6))))
        elif kind == "all":
            calls.append(RemoveLines(0, None))
        elif kind == "norm":
            source = draw(st.one_of(words, doc_lines).filter(lambda s: s.strip()))
            calls.append(Normalize(source, draw(st.sampled_from(["", "X", " ", "new, text"]))))
        else:
            calls.append("remove_lines(start=1, end")
            invalid += 1
    return calls, invalid


@settings(max_examples=500, deadline=None)
@given(data=st.data(), text=rich_documents,
       policy=st.builds(ChunkPolicy, st.integers(0, 3), st.sampled_from([0.0, 0.05, 0.5]),
                        st.integers(0, 12)))
def test_interpreter_agrees_with_the_oracle(data, text, policy):
    calls, invalid = data.draw(call_lists(len(text.split("\n"))))
    noise = data.draw(st.sampled_from(["", "# comment\n", "Sure, here you go:\n", "```\n"]))
    # A cut-off call can only be the program's last line.
    whole = [c for c in calls if not isinstance(c, str)]
    program = noise + "\n".join(str(c) for c in whole)
    if invalid:
        program += "\nremove_lines(start=1, end"
    result = run_chunk_program(text, program, policy=policy)
    expected = oracle(text, whole, 1 if invalid else 0, policy)
    assert (result.text, result.status, result.errors) == expected
