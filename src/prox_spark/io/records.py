"""Turn one raw JSONL line into (id, text, error): never raises, never loses a line.

Pure Python, so every way a line can be bad is testable without Spark:

    >>> parse_line(b'{"id": 7, "text": "hi"}', "id", "text").id
    '7'
    >>> parse_line(b'{"id": null, "text": "hi"}', "id", "text").error
    'record has no id (id is null)'

A line that cannot be read still becomes a record: its id is derived from
the raw bytes (`line:<sha256 prefix>`), so it is stable across runs and never
null, and `error` says what was wrong.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    """One source record as the pipeline sees it."""

    id: str
    text: str | None
    error: str | None = None
    sort_num: float | None = None
    sort_str: str | None = None


def line_id(raw: bytes) -> str:
    """The id of a line that has no usable id of its own."""
    return "line:" + hashlib.sha256(raw).hexdigest()[:32]


def content_id(text: str | None) -> str:
    """The id of a document without an id column: sha256 of its text."""
    return hashlib.sha256((text or "").encode("utf-8", "surrogatepass")).hexdigest()


def _id_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and abs(value) < 1e38 and value.is_integer():
        return str(int(value))  # 7.0 is the id 7, as in a typed source (38 digits at most)
    if isinstance(value, str) and value.strip():
        return value
    return None


def unencodable(value: str) -> str | None:
    """Why `value` cannot be stored as UTF-8 (a lone surrogate, e.g. from the
    JSON escape `\\ud83d` without its pair), or None when it can.

        >>> unencodable("coffee \\ud83d")
        'holds a lone surrogate U+D83D at character 7 (not valid Unicode)'
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"holds a lone surrogate U+{ord(value[exc.start]):04X} at character "
                f"{exc.start} (not valid Unicode)")
    return None


_JSON_TYPES = {bool: "boolean", int: "number", float: "number", str: "string",
               list: "array", dict: "object"}


def _json_kind(value: Any) -> str:
    """The JSON type name of a parsed value ("number", not Python's "int")."""
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _sort_key(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, int | float):
        return float(value), None
    if isinstance(value, str):
        return None, value
    return None, None


def _text_field(obj: dict[str, Any], text_column: str, cast_text: bool,
                error: str | None) -> tuple[str | None, str | None]:
    """A record's text and its error (the first one found wins); the text is
    None whenever there is an error."""
    text = obj.get(text_column)
    if text_column not in obj:
        error = error or f"record has no {text_column!r} field"
        text = None
    elif text is not None and not isinstance(text, str):
        if cast_text:
            text = json.dumps(text, ensure_ascii=False) if isinstance(text, list | dict) \
                else str(text).lower() if isinstance(text, bool) else str(text)
        else:
            error = error or (f"text is a JSON {_json_kind(text)}, not a string "
                              "(set input.cast_text: true to refine its string form)")
            text = None
    if error is None and isinstance(text, str) and (why := unencodable(text)) is not None:
        error = f"text {why}"
    return (None if error is not None else text), error


def _id_field(obj: dict[str, Any], id_column: str, replaced: bool,
              error: str | None) -> tuple[str | None, str | None]:
    """A record's id and its error; None when the record has no usable id
    (it then takes its line's id, `line_id`, and keeps no text)."""
    value = obj.get(id_column)
    ident = _id_of(value)
    if ident is not None and replaced and "\ufffd" in ident:
        # Its invalid bytes were replaced: two records whose ids differ
        # only there would share one id (and one would pass for a
        # duplicate of the other).
        return None, error
    if ident is not None and (why := unencodable(ident)) is not None:
        return None, error or f"record has no usable {id_column} ({id_column} {why})"
    if ident is None:
        why = ("is missing" if id_column not in obj else
               "is null" if value is None else
               "is empty" if isinstance(value, str) else
               f"is the number {value!r}, not a string or integer"
               if isinstance(value, float) else
               f"is a JSON {_json_kind(value)}, not a string or integer")
        return None, error or f"record has no {id_column} ({id_column} {why})"
    return ident, error


def parse_line(raw: bytes | None, id_column: str | None, text_column: str, *,
               cast_text: bool = False, sort_column: str | None = None) -> Record | None:
    """Parse one JSONL line; None for a blank line (not a record)."""
    # A byte order mark opens many exported files (and so their first line).
    raw = raw.removeprefix(b"\xef\xbb\xbf") if raw is not None else None
    if raw is None or not raw.strip():
        return None
    replaced = False
    try:
        line = raw.decode("utf-8")
        error = None
    except UnicodeDecodeError as exc:
        line, replaced = raw.decode("utf-8", "replace"), True
        error = f"line is not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})"
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return Record(line_id(raw), None, error or f"line is not valid JSON: {exc}")
    if not isinstance(obj, dict):
        return Record(line_id(raw), None,
                      error or f"line is a JSON {_json_kind(obj)}, not an object")
    text, error = _text_field(obj, text_column, cast_text, error)
    if id_column is None:
        ident = content_id(text) if error is None else line_id(raw)
    else:
        ident, error = _id_field(obj, id_column, replaced, error)
        if ident is None:
            ident, text = line_id(raw), None
    num, word = _sort_key(obj.get(sort_column)) if sort_column else (None, None)
    if word is not None and unencodable(word) is not None:
        word = word.encode("utf-8", "replace").decode("utf-8")
    return Record(ident, text, error, num, word)
