"""The reference policy and its three settable thresholds."""

from __future__ import annotations

import pytest

from prox_spark.program import ChunkPolicy, run_chunk_program

TWENTY = " ".join(f"w{i}" for i in range(20))


def test_two_errors_revert_to_the_original_text():
    text = f"nav\n{TWENTY}"
    result = run_chunk_program(text, "remove_lines(0, 0)\nremove_lines(9, 9)\nremove_lines(8, 8)")
    assert (result.status, result.errors, result.text) == ("reverted", 2, text)
    assert result.lines_removed == 0


def test_max_errors_is_settable():
    text = f"nav\n{TWENTY}"
    program = "remove_lines(0, 0)\nremove_lines(9, 9)\nremove_lines(8, 8)"
    assert run_chunk_program(text, program, max_errors=2).status == "edited"
    assert run_chunk_program(text, "remove_lines(9, 9)", max_errors=0).status == "reverted"


def test_reverted_short_document_is_still_dropped():
    assert run_chunk_program("a b c", "remove_lines(5,5) remove_lines(6,6)").status == "dropped"


def test_keeping_five_percent_or_less_drops():
    words = " ".join(f"w{i}" for i in range(400))
    text = "\n".join([words, " ".join(f"k{i}" for i in range(20))])
    result = run_chunk_program(text, "remove_lines(0, 0)")
    assert result.words_after == 0 and result.status == "dropped"
    text = "\n".join([words, " ".join(f"k{i}" for i in range(21))])
    # 21 / 421 = 4.99%: dropped by ratio although more than 10 words remain.
    assert run_chunk_program(text, "remove_lines(0, 0)").status == "dropped"
    assert run_chunk_program(text, "remove_lines(0, 0)", min_kept_ratio=0.01).status == "edited"


def test_ten_words_or_fewer_drops():
    ten = " ".join(f"w{i}" for i in range(10))
    assert run_chunk_program(ten, "").status == "dropped"
    assert run_chunk_program(ten + " w10", "").status == "kept"
    assert run_chunk_program(ten, "", min_words=5).status == "kept"


def test_policy_object_and_validation():
    policy = ChunkPolicy(max_errors=0, min_kept_ratio=0.0, min_words=0)
    assert run_chunk_program("a b", "", policy=policy).status == "kept"
    for bad in ({"max_errors": -1}, {"min_kept_ratio": 1.5}, {"min_words": "10"},
                {"max_errors": True}):
        with pytest.raises(ValueError):
            ChunkPolicy(**bad)
    with pytest.raises(ValueError):
        run_chunk_program("a", "", min_kept_ratio=-0.1)


def test_result_is_auditable():
    text = "Home | About\n" + TWENTY + " Click here"
    result = run_chunk_program(text, 'remove_lines(0, 0)\nnormalize(" Click here", "")')
    assert result.text == TWENTY
    assert result.status == "edited"
    assert (result.lines_removed, result.normalizations, result.errors) == (1, 1, 0)
    assert (result.words_before, result.words_after) == (25, 20)
