"""The calls a ProX program can make, as plain immutable values.

A parsed program is a list of these; the interpreter never sees source text.
Each call can write itself back as source, which the rule-based stages use to
emit programs in the same language as the models::

    >>> str(RemoveLines(3, 9))
    'remove_lines(line_start=3, line_end=9)'
"""

from __future__ import annotations

from dataclasses import dataclass

DOC_DROP = "drop_doc"
DOC_KEEP = ("keep_doc", "untouch_doc")
CHUNK_KEEP = ("keep_chunk", "skip_chunk")
REMOVE_LINES = "remove_lines"
NORMALIZE = "normalize"

KNOWN_FUNCTIONS: frozenset[str] = frozenset(
    (DOC_DROP, *DOC_KEEP, *CHUNK_KEEP, REMOVE_LINES, NORMALIZE)
)


def quote(value: str) -> str:
    """Return `value` as a double-quoted string literal the parser reads back exactly."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


@dataclass(frozen=True, slots=True)
class DropDoc:
    """`drop_doc()`: delete the whole document."""

    def __str__(self) -> str:
        return "drop_doc()"


@dataclass(frozen=True, slots=True)
class KeepDoc:
    """`keep_doc()` (or `untouch_doc()`): keep the document as it is."""

    def __str__(self) -> str:
        return "keep_doc()"


@dataclass(frozen=True, slots=True)
class KeepChunk:
    """`keep_chunk()` (or `skip_chunk()`): leave the chunk as it is."""

    def __str__(self) -> str:
        return "keep_chunk()"


@dataclass(frozen=True, slots=True)
class RemoveLines:
    """`remove_lines(line_start=A, line_end=B)`: delete original lines A..B inclusive.

    `end=None` with `start=0` stands for `remove_lines(all=True)`.
    """

    start: int
    end: int | None

    @property
    def removes_all(self) -> bool:
        return self.end is None

    def __str__(self) -> str:
        if self.end is None:
            return "remove_lines(all=True)"
        return f"remove_lines(line_start={self.start}, line_end={self.end})"


@dataclass(frozen=True, slots=True)
class Normalize:
    """`normalize(source_str="s", target_str="t")`: replace every `s` by `t`."""

    source: str
    target: str = ""

    def __str__(self) -> str:
        return f"normalize(source_str={quote(self.source)}, target_str={quote(self.target)})"


Call = DropDoc | KeepDoc | KeepChunk | RemoveLines | Normalize
