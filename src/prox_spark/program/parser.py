"""Turn a model's output into calls and errors, without ever running it.

The parser scans for calls of the known functions and reads their arguments
with a small tokenizer (strings in either quote style with escapes, integers,
`True`/`False`/`None`, keywords, positionals). Everything else is ignored, as
the reference does: prose, code fences, `# comments`, unknown functions. A
call of a known function that cannot be read (cut off, wrong types, wrong
arity, an empty `normalize` source) is one error, and scanning goes on.

    >>> parse_program('remove_lines(start=0, end=2)\\nnormalize("a, b=c)", "")').calls
    (RemoveLines(start=0, end=2), Normalize(source='a, b=c)', target=''))
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from prox_spark.program.calls import (
    CHUNK_KEEP,
    DOC_DROP,
    DOC_KEEP,
    KNOWN_FUNCTIONS,
    NORMALIZE,
    REMOVE_LINES,
    Call,
    DropDoc,
    KeepChunk,
    KeepDoc,
    Normalize,
    RemoveLines,
)

# A known function name, not part of a longer identifier or an attribute,
# followed by "(" -- or a "#" that starts a comment.
_CANDIDATE = re.compile(
    r"#|(?<![\w.])(" + "|".join(sorted(KNOWN_FUNCTIONS)) + r")[ \t]*\("
)
# A known function name anywhere (to find lines that name one but hold no call).
_NAME = re.compile(r"(?<![\w.])(" + "|".join(sorted(KNOWN_FUNCTIONS)) + r")(?!\w)")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>[rRuU]?(?:\"\"\"|'''|"|'))
      | (?P<int>[-+]?[0-9]+)(?![\w.])
      | (?P<name>[A-Za-z_]\w*)
      | (?P<op>[=,)])
    )""",
    re.VERBOSE,
)
_STRING_BODY = {
    '"': re.compile(r'([^"\\\n]*(?:\\[\s\S][^"\\\n]*)*)"'),
    "'": re.compile(r"([^'\\\n]*(?:\\[\s\S][^'\\\n]*)*)'"),
    '"""': re.compile(r'((?:[^\\]|\\[\s\S])*?)"""'),
    "'''": re.compile(r"((?:[^\\]|\\[\s\S])*?)'''"),
}
_NON_SPACE = re.compile(r"\S")
_NEWLINE = re.compile(r"\n")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|[\s\S])")
_SIMPLE_ESCAPES = {
    "n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"',
    "a": "\a", "b": "\b", "f": "\f", "v": "\v", "\n": "",
}
_CONSTANTS: dict[str, bool | None] = {"True": True, "False": False, "None": None}
# Longer integers mean "past any document"; this keeps int() away from
# Python's digit limit and from building huge numbers out of model output.
_MAX_DIGITS = 18
_HUGE = 10**_MAX_DIGITS

Value = str | int | bool | None


@dataclass(frozen=True, slots=True)
class ProgramError:
    """One call of a known function that could not be used."""

    function: str
    message: str
    position: int

    def __str__(self) -> str:
        return f"{self.function} at offset {self.position}: {self.message}"


@dataclass(frozen=True, slots=True)
class ParsedProgram:
    """The calls found in a program, in order, and the calls that were refused."""

    calls: tuple[Call, ...]
    errors: tuple[ProgramError, ...]


class _Invalid(Exception):
    def __init__(self, message: str, position: int, *, skip_line: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.skip_line = skip_line


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    simple = _SIMPLE_ESCAPES.get(code)
    if simple is not None:
        return simple
    head = code[0]
    if head in "xuU" and len(code) > 1:
        point = int(code[1:], 16)
        return chr(point) if point <= 0x10FFFF else match.group(0)
    if head in "01234567":
        return chr(int(code, 8))
    return match.group(0)


def _read_string(text: str, pos: int, opener: str) -> tuple[str, int]:
    raw = opener[0] in "rR"
    quote = opener.lstrip("rRuU")
    body = _STRING_BODY[quote].match(text, pos)
    if body is None:
        raise _Invalid("unterminated string", pos, skip_line=True)
    value = body.group(1)
    if not raw and "\\" in value:
        value = _ESCAPE.sub(_unescape_one, value)
    return value, body.end()


def _read_value(text: str, match: re.Match[str]) -> tuple[Value, int]:
    kind = match.lastgroup
    if kind == "str":
        return _read_string(text, match.end(), match.group("str"))
    if kind == "int":
        digits = match.group("int")
        sign = -1 if digits[0] == "-" else 1
        digits = digits.lstrip("+-")
        number = _HUGE if len(digits.lstrip("0")) > _MAX_DIGITS else int(digits)
        return sign * number, match.end()
    if kind == "name" and match.group("name") in _CONSTANTS:
        return _CONSTANTS[match.group("name")], match.end()
    raise _Invalid(f"expected a value, found {match.group(0).strip()!r}", match.start(kind))


def _next_token(text: str, pos: int) -> re.Match[str]:
    match = _TOKEN.match(text, pos)
    if match is None:
        # Found by search, not by slicing the rest: a failed token on a long
        # line must cost only the whitespace before it.
        found = _NON_SPACE.search(text, pos)
        if found is None:
            raise _Invalid("the call is cut off", len(text))
        raise _Invalid(f"unexpected {found.group(0)!r}", found.start())
    return match


def _read_arguments(text: str, pos: int) -> tuple[list[Value], dict[str, Value], int]:
    """Read `a, b, k=v)` starting just after the opening parenthesis."""
    args: list[Value] = []
    kwargs: dict[str, Value] = {}
    token = _next_token(text, pos)
    while token.group("op") != ")":
        if token.lastgroup == "op":
            raise _Invalid(f"unexpected {token.group('op')!r}", token.start("op"))
        keyword: str | None = None
        if token.lastgroup == "name" and token.group("name") not in _CONSTANTS:
            after = _next_token(text, token.end())
            if after.group("op") != "=":
                raise _Invalid(f"unknown name {token.group('name')!r}", token.start("name"))
            keyword = token.group("name")
            token = _next_token(text, after.end())
        value, end = _read_value(text, token)
        if keyword is None:
            if kwargs:
                raise _Invalid("positional argument after keyword argument", token.start())
            args.append(value)
        elif keyword in kwargs:
            raise _Invalid(f"argument {keyword!r} given twice", token.start())
        else:
            kwargs[keyword] = value
        token = _next_token(text, end)
        if token.group("op") == ",":
            token = _next_token(text, token.end())
        elif token.group("op") != ")":
            raise _Invalid("expected ',' or ')'", token.start())
    return args, kwargs, token.end()


def _bind(
    args: list[Value],
    kwargs: dict[str, Value],
    params: tuple[str, ...],
    aliases: dict[str, str],
    position: int,
) -> dict[str, Value]:
    if len(args) > len(params):
        raise _Invalid(f"takes at most {len(params)} arguments, got {len(args)}", position)
    bound: dict[str, Value] = dict(zip(params, args, strict=False))
    for name, value in kwargs.items():
        canonical = aliases.get(name, name)
        if canonical not in params:
            raise _Invalid(f"unexpected argument {name!r}", position)
        if canonical in bound:
            raise _Invalid(f"argument {canonical!r} given twice", position)
        bound[canonical] = value
    return bound


_LINE_ALIASES = {"start": "line_start", "end": "line_end"}
_NORMALIZE_ALIASES = {"source": "source_str", "target": "target_str"}


def _line_number(bound: dict[str, Value], name: str, position: int) -> int:
    if name not in bound:
        raise _Invalid(f"missing {name}", position)
    value = bound[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Invalid(f"{name} must be a non-negative integer, got {value!r}", position)
    return value


def _remove_lines(args: list[Value], kwargs: dict[str, Value], position: int) -> Call:
    if "all" in kwargs:
        flag = kwargs.pop("all")
        if args or kwargs or not isinstance(flag, bool):
            raise _Invalid("all= takes True or False and nothing else", position)
        return RemoveLines(0, None) if flag else KeepChunk()
    bound = _bind(args, kwargs, ("line_start", "line_end"), _LINE_ALIASES, position)
    start = _line_number(bound, "line_start", position)
    end = _line_number(bound, "line_end", position)
    if start > end:
        raise _Invalid(f"line_start {start} is after line_end {end}", position)
    return RemoveLines(start, end)


def _normalize(args: list[Value], kwargs: dict[str, Value], position: int) -> Call:
    bound = _bind(args, kwargs, ("source_str", "target_str"), _NORMALIZE_ALIASES, position)
    source = bound.get("source_str")
    target = bound.get("target_str", "")
    if not isinstance(source, str) or not isinstance(target, str):
        raise _Invalid("source_str and target_str must be strings", position)
    if not source.strip():
        raise _Invalid("refusing a normalize whose source is empty or whitespace", position)
    return Normalize(source, target)


def _build(name: str, args: list[Value], kwargs: dict[str, Value], position: int) -> Call:
    if name == REMOVE_LINES:
        return _remove_lines(args, kwargs, position)
    if name == NORMALIZE:
        return _normalize(args, kwargs, position)
    if args or kwargs:
        raise _Invalid("takes no arguments", position)
    if name == DOC_DROP:
        return DropDoc()
    if name in DOC_KEEP:
        return KeepDoc()
    assert name in CHUNK_KEEP
    return KeepChunk()


def parse_program(program: str | None) -> ParsedProgram:
    """Find every call of a known function in `program`; never raises, never executes."""
    if not program:
        return ParsedProgram((), ())
    calls: list[Call] = []
    errors: list[ProgramError] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    search = _CANDIDATE.search
    while (found := search(program, pos)) is not None:
        name = found.group(1)
        if name is None:
            newline = program.find("\n", found.end())
            if newline < 0:
                break
            pos = newline + 1
            continue
        try:
            args, kwargs, end = _read_arguments(program, found.end())
        except _Invalid as bad:
            # Resume at the offending token, so a call that lost its ")" does
            # not hide the next one; but never inside a broken string.
            errors.append(ProgramError(name, bad.message, bad.position))
            pos = max(bad.position, found.end())
            if bad.skip_line:
                newline = program.find("\n", pos)
                pos = len(program) if newline < 0 else newline + 1
            spans.append((found.start(), pos))
            continue
        spans.append((found.start(), end))
        pos = end
        try:
            calls.append(_build(name, args, kwargs, found.start()))
        except _Invalid as bad:
            errors.append(ProgramError(name, bad.message, bad.position))
    errors.extend(_names_without_calls(program, spans))
    errors.sort(key=lambda e: e.position)
    return ParsedProgram(tuple(calls), tuple(errors))


def _names_without_calls(program: str, spans: list[tuple[int, int]]) -> list[ProgramError]:
    """One error per line that names a known function outside any call and
    outside a comment, on a line where no call starts (e.g. a bare
    `remove_lines`, or `drop_doc garbage`), as the reference counts them.
    A call cut off mid-arguments was already counted where it starts.

    `spans` are in order and do not overlap (the scan only moves forward), so
    one pass walks the names and the spans together, and a line number is a
    binary search: O(n log n) for any program, never a rescan per name.
    """
    if not _NAME.search(program):
        return []
    newlines = [found.start() for found in _NEWLINE.finditer(program)]
    starts = {bisect_right(newlines, a) for a, _ in spans}
    errors: list[ProgramError] = []
    seen: set[int] = set()
    span = 0
    for match in _NAME.finditer(program):
        at = match.start()
        while span < len(spans) and spans[span][1] <= at:
            span += 1
        if span < len(spans) and spans[span][0] <= at:
            continue
        line = bisect_right(newlines, at)
        if line in starts or line in seen:
            continue
        seen.add(line)
        line_start = newlines[line - 1] + 1 if line else 0
        if "#" in program[line_start:at]:
            continue
        errors.append(ProgramError(match.group(1), "names a function but holds no call", at))
    return errors
