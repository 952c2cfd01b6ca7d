"""Execute-to-check of teacher chunk answers (pure): calls mode, rewrite mode,
the whole-document check and the dedup key."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from prox_spark.distill.checks import (
    ChunkLabel,
    check_calls,
    check_document,
    chunk_lines,
    chunk_of_prompt,
    derive_rewrite,
    example_key,
    execute_on_chunk,
)
from prox_spark.generation.prompts import chunk_prompt, number_line
from prox_spark.program import ChunkPolicy, parse_program, run_chunk_program

# A document of 43 lines whose second chunk starts at [037], as chunk_document
# numbers the chunks after the first.
BODY = [f"Line {i} of a long article about rivers and the towns along them." for i in range(37)]
CHUNK_LINES = [
    "Home | About | Contact",
    "Skip to content",
    "Bread needs only flour, water, salt and time to rise properly. Read more",
    "Knead the dough for ten minutes, then let it rest overnight.",
    "Share on Facebook Share on Twitter",
    "Copyright 2024 Example Bakery",
]
DOCUMENT = "\n".join(BODY + CHUNK_LINES)
CHUNK = "\n".join(number_line(37 + k, line) for k, line in enumerate(CHUNK_LINES))


def document_after(program: str) -> list[str]:
    """The document's chunk lines after the production interpreter ran `program`."""
    result = run_chunk_program(DOCUMENT, program)
    assert result.errors == 0, result.error_messages
    lines = result.text.split("\n")
    assert lines[:37] == BODY
    return lines[37:]


# --- chunk_lines ---------------------------------------------------------------------------

def test_chunk_lines_reads_the_document_numbers():
    assert chunk_lines(CHUNK) == {37 + k: line for k, line in enumerate(CHUNK_LINES)}
    assert chunk_lines("[999]a\n[1000]b\n[1001]") == {999: "a", 1000: "b", 1001: ""}
    assert chunk_lines("[000][001]not a number") == {0: "[001]not a number"}


@pytest.mark.parametrize("chunk, message", [
    ("", "empty chunk"),
    ("plain text", "no \\[NNN\\] number"),
    ("[001]a\n[003]b", "jump from \\[001\\] to \\[003\\]"),
    ("[001]a\nb", "line 1 of the chunk"),
])
def test_chunk_lines_refuses_what_chunk_document_never_makes(chunk, message):
    with pytest.raises(ValueError, match=message):
        chunk_lines(chunk)


def test_chunk_of_prompt_inverts_chunk_prompt():
    assert chunk_of_prompt(chunk_prompt(CHUNK)) == CHUNK
    with pytest.raises(ValueError, match="not a chunk-level prompt"):
        chunk_of_prompt("[INST] hello [/INST]")


# --- calls mode ----------------------------------------------------------------------------

def test_valid_calls_on_a_chunk_starting_at_037_are_kept_and_run():
    label = check_calls(CHUNK, 'remove_lines(line_start=37, line_end=38)\n'
                               'normalize(source_str=" Read more", target_str="")\n'
                               "remove_lines(line_start=41, line_end=42)")
    assert label == ChunkLabel(
        'remove_lines(line_start=37, line_end=38)\nremove_lines(line_start=41, line_end=42)\n'
        'normalize(source_str=" Read more", target_str="")')
    assert label.valid
    assert document_after(label.program) == [
        "Bread needs only flour, water, salt and time to rise properly.",
        "Knead the dough for ten minutes, then let it rest overnight."]


def test_each_wrong_call_is_dropped_with_its_reason_and_the_rest_survive():
    answer = "\n".join([
        "remove_lines(line_start=37, line_end=37)",                 # valid
        "remove_lines(line_start=1, line_end=2)",                   # before the chunk
        "remove_lines(line_start=41, line_end=43)",                 # ends past the chunk
        'normalize(source_str="Click here", target_str="")',        # not in the chunk
        'normalize(source_str="[039]Bread", target_str="")',        # the number is no text
        'remove_lines(line_start="a", line_end=3)',                 # unparsable
        'normalize(source_str=" Read more", target_str="")',        # valid
        "remove_lines(line_start=38, line_e",                       # cut off
    ])
    label = check_calls(CHUNK, answer)
    assert label.program == ('remove_lines(line_start=37, line_end=37)\n'
                             'normalize(source_str=" Read more", target_str="")')
    assert label.reason is None
    assert sorted(label.discarded_calls) == sorted([
        "remove_lines(line_start=1, line_end=2)  # line range outside the chunk [037]-[042]",
        "remove_lines(line_start=41, line_end=43)  # line range outside the chunk [037]-[042]",
        'normalize(source_str="Click here", target_str="")  # source_str not in the chunk',
        'normalize(source_str="[039]Bread", target_str="")  # source_str not in the chunk',
        "remove_lines(line_start=\"a\", line_end=3)  # unparsable call: "
        "line_start must be a non-negative integer, got 'a'",
        "remove_lines(line_start=38, line_e  # unparsable call: the call is cut off",
    ])


@pytest.mark.parametrize("answer, reason", [
    (None, "empty answer"),
    ("", "empty answer"),
    (" \n", "empty answer"),
    ("The chunk looks fine to me.", "unparsable answer"),
    ("remove_lines(line_start=0, line_end=3)",
     "no valid call: line range outside the chunk [037]-[042]"),
    ('normalize(source_str="not in this chunk")', "no valid call: source_str not in the chunk"),
    ("remove_lines(line_start=37, line_end=",
     "no valid call: unparsable call: the call is cut off"),
    ("remove_lines(line_start=40 line_end=41)",
     "no valid call: unparsable call: expected ',' or ')'"),
    ('normalize(source_str="  ")',
     "no valid call: unparsable call: refusing a normalize whose source is empty or whitespace"),
    ("drop_doc()", "no valid call: not a chunk-level call"),
    ('remove_lines(line_start=41, line_end=41)\nnormalize(source_str="Share on")',
     None),  # valid: the removal survives, the normalize is dropped
    ('remove_lines(line_start=41, line_end=41)\nnormalize(source_str="Share on Twitter")\n'
     "remove_lines(line_start=50, line_end=51)", None),
])
def test_discarded_answers_say_why(answer, reason):
    label = check_calls(CHUNK, answer)
    assert label.reason == reason
    assert label.valid == (reason is None)


def test_a_normalize_only_in_removed_lines_is_dropped():
    label = check_calls(CHUNK, 'remove_lines(line_start=41, line_end=41)\n'
                               'normalize(source_str="Share on")')
    assert label.program == "remove_lines(line_start=41, line_end=41)"
    assert label.discarded_calls == (
        'normalize(source_str="Share on", target_str="")  '
        "# source_str only in removed lines or already normalized",)


def test_keep_chunk_and_merging():
    assert check_calls(CHUNK, "keep_chunk()") == ChunkLabel("keep_chunk()")
    assert check_calls(CHUNK, "```python\nskip_chunk()\n```").program == "keep_chunk()"
    # Overlapping and adjacent ranges in any order, repeated calls: one canonical program.
    label = check_calls(CHUNK, 'normalize("Skip to")\nremove_lines(41, 42)\n'
                               "remove_lines(start=37, end=37)\nremove_lines(38, 38)\n"
                               'remove_lines(41, 41)\nnormalize("Skip to")')
    assert label.program == ('remove_lines(line_start=37, line_end=38)\n'
                             'remove_lines(line_start=41, line_end=42)')
    assert label.discarded_calls == (
        'normalize(source_str="Skip to", target_str="")  '
        "# source_str only in removed lines or already normalized",)
    # all=True means the chunk's own lines, not the whole document.
    assert check_calls(CHUNK, "remove_lines(all=True)").program == \
        "remove_lines(line_start=37, line_end=42)"


def test_a_bad_chunk_is_a_reason_not_an_exception():
    assert check_calls("no numbers here", "keep_chunk()").reason.startswith("bad chunk: ")
    assert derive_rewrite("", "x").reason == "bad chunk: empty chunk"
    assert derive_rewrite(CHUNK, None).reason == "empty answer"
    assert derive_rewrite("no numbers", "x").reason.startswith("bad chunk: ")


# --- rewrite mode --------------------------------------------------------------------------

def test_rewrite_deleting_lines_and_a_span_gives_a_program_that_reproduces_it():
    rewrite = ("Bread needs only flour, water, salt and time to rise properly.\n"
               "Knead the dough for ten minutes, then let it rest overnight.")
    label = derive_rewrite(CHUNK, rewrite)
    assert label.program == ('remove_lines(line_start=37, line_end=38)\n'
                             'remove_lines(line_start=41, line_end=42)\n'
                             'normalize(source_str=" Read more", target_str="")')
    assert document_after(label.program) == rewrite.split("\n")


def test_rewrite_with_two_spans_in_one_line_and_a_span_inside_a_longer_one():
    chunk = "\n".join(number_line(37 + k, line) for k, line in enumerate([
        "Posted by admin: Bread rises. [ad] It needs time. Read more",
        "Knead it well. Read more about kneading",
    ]))
    rewrite = "Bread rises. It needs time.\nKnead it well."
    label = derive_rewrite(chunk, rewrite)
    assert label.valid, label.reason
    assert all(c.target == "" for c in parse_program(label.program).calls)
    assert execute_on_chunk(chunk_lines(chunk), label.program) == (rewrite.split("\n"), None)


def test_identical_rewrite_is_keep_chunk_and_wrappers_are_not_content():
    plain = "\n".join(CHUNK_LINES)
    assert derive_rewrite(CHUNK, plain).program == "keep_chunk()"
    assert derive_rewrite(CHUNK, f"```\n{plain}\n```\n").program == "keep_chunk()"
    assert derive_rewrite(CHUNK, f"<text>\n{plain}\n</text>").program == "keep_chunk()"
    # Trailing spaces dropped by a teacher are no edit.
    assert derive_rewrite(CHUNK, plain.replace("\n", "  \n")).program == "keep_chunk()"


@pytest.mark.parametrize("rewrite", [
    "\n".join([*CHUNK_LINES[:2], "Bread needs only flour, water, salt and plenty of time."]),
    "\n".join(CHUNK_LINES).replace("ten minutes", "ten long minutes"),   # adds a word
    "\n".join(CHUNK_LINES).replace("Bread", "Brot"),                      # changes one
    "\n".join([*CHUNK_LINES, "An invented closing line."]),               # adds a line
    "\n".join([CHUNK_LINES[3], CHUNK_LINES[2]]),                           # reorders lines
])
def test_a_rewrite_that_adds_or_changes_text_is_discarded(rewrite):
    label = derive_rewrite(CHUNK, rewrite)
    assert label.program is None
    assert label.reason.startswith("rewrite adds text: ")


def test_a_span_that_also_occurs_in_kept_text_is_left_to_the_execution_check():
    chunk = "[000]Bread rises. Click here\n[001]To read on, Click here now."
    label = derive_rewrite(chunk, "Bread rises.\nTo read on, Click here now.")
    assert label.program is None
    assert label.reason.startswith("derived program does not reproduce the rewrite: ")


def test_a_span_is_placed_where_a_normalize_can_express_it():
    # "Go ab ab ba" -> "Go ab ba" deletes "ab " (twice in the line), which can
    # equally be read as " ab" (twice) or "b a" (once): only "b a" works.
    label = derive_rewrite("[005]Go ab ab ba\n[006]y", "Go ab ba\ny")
    assert label.program == 'normalize(source_str="b a", target_str="")'
    assert execute_on_chunk({5: "Go ab ab ba", 6: "y"}, label.program)[0] == ["Go ab ba", "y"]
    # "x: a a b" -> "x: a b": every reading ("a ", " a") occurs twice: discarded.
    assert derive_rewrite("[005]x: a a b", "x: a b").reason.startswith(
        "derived program does not reproduce the rewrite")


def test_repeated_lines_are_aligned_with_the_right_copy():
    # difflib pairs the kept "Home Home" with the second line and sees an insertion.
    label = derive_rewrite("[000]Home Home Home\n[001]Home Home", "Home Home\nHome Home")
    assert label.reason.startswith("derived program does not reproduce"), label
    label = derive_rewrite("[000]Menu: Home Home\n[001]Home Home", "Home Home\nHome Home")
    assert label.program == 'normalize(source_str="Menu: ", target_str="")'


def test_a_whitespace_only_deletion_is_discarded_with_its_reason():
    label = derive_rewrite("[000]two  spaces\n[001]next", "two spaces\nnext")
    assert label.reason == ("rewrite deletes only whitespace in line [000] "
                            "(a normalize source cannot be whitespace)")


WORDS = st.sampled_from(["Home", "menu", "bread", "time", "salt", "|", "Read", "more", "ok."])


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.lists(WORDS, min_size=1, max_size=6).map(" ".join),
                      min_size=1, max_size=6),
       first=st.integers(0, 1200), data=st.data())
def test_any_deletion_is_reproduced_or_discarded_never_misderived(lines, first, data):
    """A rewrite made by deleting lines and words is never "adds text"; when a
    program is derived, the interpreter reproduces the rewrite with it."""
    chunk = "\n".join(number_line(first + k, line) for k, line in enumerate(lines))
    rewrite = []
    for line in lines:
        if data.draw(st.booleans()):
            continue
        words = line.split(" ")
        keep = data.draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words)))
        kept = [w for w, k in zip(words, keep, strict=True) if k]
        rewrite.append(" ".join(kept) if kept else line)
    assume(rewrite and any(r.strip() for r in rewrite))
    label = derive_rewrite(chunk, "\n".join(rewrite))
    if label.program is None:
        assert not label.reason.startswith("rewrite adds text"), label.reason
        return
    after, error = execute_on_chunk(chunk_lines(chunk), label.program)
    assert error is None
    assert after == rewrite
    assert all(getattr(c, "target", "") == "" for c in parse_program(label.program).calls)


# --- whole document and dedup --------------------------------------------------------------

def test_check_document_names_a_kept_document_the_chunks_would_delete():
    doc = "\n".join(CHUNK_LINES)
    assert check_document(doc, ["remove_lines(line_start=0, line_end=1)"]) is None
    reason = check_document(doc, ["remove_lines(line_start=0, line_end=4)",
                                  "remove_lines(line_start=5, line_end=5)"])
    assert len(doc.split()) == 42
    assert reason == "chunk programs delete the kept document (0 of 42 words left)"
    # 6 words of 42 left (ratio 0.14 > 0.05), but 6 <= min_words 10: dropped.
    reason = check_document(doc, ["remove_lines(line_start=0, line_end=3)",
                                  "remove_lines(line_start=5, line_end=5)"])
    assert reason == "chunk programs delete the kept document (6 of 42 words left)"
    short = "Only five words are here."
    assert check_document(short, ["keep_chunk()"]) == (
        "the chunk policy drops this document even unedited (5 words, min_words 10)")
    assert check_document(short, ["keep_chunk()"], ChunkPolicy(min_words=2)) is None
    assert check_document("  ", []) == "empty document"


def test_example_key_is_stable_and_separates_tasks():
    key = example_key("chunk", "p", "keep_chunk()")
    assert key == example_key("chunk", "p", "keep_chunk()")
    assert len(key) == 64
    assert key != example_key("doc", "p", "keep_chunk()")
    assert key != example_key("chunk", "p ", "keep_chunk()")
