"""Every way a JSONL line can be bad becomes a record with a reason, never a lost row."""

from __future__ import annotations

import json

import pytest

from prox_spark.io.records import line_id, parse_line


def parse(obj: object, **kw):
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return parse_line(raw, kw.pop("id_column", "id"), "text", **kw)


def test_a_good_record_keeps_its_id_and_text():
    rec = parse({"id": "a", "text": "hello"})
    assert (rec.id, rec.text, rec.error) == ("a", "hello", None)
    assert parse({"id": 42, "text": "x"}).id == "42"


def test_a_byte_order_mark_before_a_record_is_not_part_of_it():
    raw = "\ufeff".encode() + json.dumps({"id": "a", "text": "t"}).encode()
    rec = parse_line(raw, "id", "text")
    assert (rec.id, rec.text, rec.error) == ("a", "t", None)
    assert parse_line(b"\xef\xbb\xbf\r", "id", "text") is None  # an empty exported file


def test_null_text_is_a_document_not_an_error():
    rec = parse({"id": "n", "text": None})
    assert (rec.id, rec.text, rec.error) == ("n", None, None)


@pytest.mark.parametrize("raw, reason", [
    (b'{"id": "a", "text": "unterminated', "not valid JSON"),
    (b'[1, 2]', "a JSON array, not an object"),
    (b'"just a string"', "a JSON string, not an object"),
    (json.dumps({"text": "no id here"}).encode(), "record has no id (id is missing)"),
    (json.dumps({"id": None, "text": "t"}).encode(), "record has no id (id is null)"),
    (json.dumps({"id": "  ", "text": "t"}).encode(), "record has no id (id is empty)"),
    (json.dumps({"id": 1.5, "text": "t"}).encode(), "id is the number 1.5, not a string"),
    (json.dumps({"id": True, "text": "t"}).encode(), "id is a JSON boolean"),
])
def test_unreadable_lines_get_an_id_from_the_raw_line(raw, reason):
    rec = parse_line(raw, "id", "text")
    assert rec.id == line_id(raw) and rec.id.startswith("line:")
    assert rec.text is None
    assert reason in rec.error


def test_text_that_is_not_unicode_keeps_a_recoverable_id_but_not_the_text():
    """Invalid UTF-8 bytes, or a lone surrogate escape (valid JSON, but no
    character): an error record, with the id when the id itself is sound."""
    raw = b'{"id": "u1", "text": "caf\xe9 au lait"}'
    rec = parse_line(raw, "id", "text")
    assert rec.id == "u1" and rec.text is None
    assert "not valid UTF-8 (byte 0xe9" in rec.error
    lone = b'{"id": "a", "text": "coffee \\ud83d and a quiet place"}'
    rec = parse_line(lone, "id", "text")
    assert (rec.id, rec.text) == ("a", None)
    assert "lone surrogate U+D83D" in rec.error
    ident = parse_line(b'{"id": "x\\udc00", "text": "fine"}', "id", "text")
    assert ident.id.startswith("line:") and ident.text is None
    assert "id holds a lone surrogate" in ident.error
    # A proper surrogate pair is one character, not an error.
    pair = parse_line(b'{"id": "p", "text": "smile \\ud83d\\ude00"}', "id", "text")
    assert (pair.text, pair.error) == ("smile \U0001F600", None)
    content = parse_line(lone, None, "text")
    assert content.id.startswith("line:") and "lone surrogate" in content.error


def test_ids_with_invalid_utf8_do_not_merge_into_one():
    """Two ids that differ only in invalid bytes would both read as
    "x-\ufffd(-y": each record gets its own line id and keeps its error,
    instead of one passing for a duplicate of the other."""
    one, two = (b'{"id": "x-\xc3(-y", "text": "a"}', b'{"id": "x-\xff(-y", "text": "b"}')
    records = [parse_line(raw, "id", "text") for raw in (one, two)]
    assert [r.id for r in records] == [line_id(one), line_id(two)]
    assert all("not valid UTF-8" in r.error and r.text is None for r in records)
    # An id that holds U+FFFD itself (valid UTF-8) is kept.
    assert parse_line('{"id": "a\ufffdb", "text": "t"}'.encode(), "id", "text").id == "a\ufffdb"


@pytest.mark.parametrize("value, cast", [(12345, "12345"), (["a", "b"], '["a", "b"]'),
                                         ({"k": 1}, '{"k": 1}'), (True, "true")])
def test_text_that_is_not_a_string_is_an_error_unless_cast(value, cast):
    rec = parse({"id": "x", "text": value})
    assert rec.id == "x" and rec.text is None
    assert "not a string" in rec.error and "cast_text" in rec.error
    assert parse({"id": "x", "text": value}, cast_text=True).text == cast


def test_missing_text_field_is_an_error():
    assert "no 'text' field" in parse({"id": "x", "body": "y"}).error


def test_blank_lines_are_not_records_and_ids_are_stable():
    assert parse_line(b"  \t\r\n", "id", "text") is None
    assert line_id(b"garbage") == line_id(b"garbage") != line_id(b"garbage2")


def test_without_an_id_column_the_id_is_the_text_hash():
    import hashlib

    rec = parse({"text": "abc"}, id_column=None)
    assert rec.id == hashlib.sha256(b"abc").hexdigest()


def test_sort_column_for_last_by():
    rec = parse({"id": "a", "text": "t", "v": 3}, sort_column="v")
    assert (rec.sort_num, rec.sort_str) == (3.0, None)
    rec = parse({"id": "a", "text": "t", "v": "2026-01-02"}, sort_column="v")
    assert (rec.sort_num, rec.sort_str) == (None, "2026-01-02")
