"""Check stage parameters against their declared types, before anything runs.

A YAML `min_doc_words: "50"` or `filter_no_terminal_punct: "no"` is refused
with a message naming the parameter, instead of failing minutes later inside
a Spark task or silently doing the wrong thing.

    >>> def rule(text: str, *, min_words: int | None = 5) -> None: ...
    >>> check_params(rule, {"min_words": "5"})
    Traceback (most recent call last):
    ...
    ValueError: min_words: expected int or None, got '5'

A parameter is declared once, where it is defined (a rule function's
keyword, a dataclass field): its type, default, range and one-line doc, the
last two with `Annotated[..., Range(...), Doc("...")]`. Validation, the
stage registry, fingerprints and the README's parameter list all read that
declaration. None (a disabled rule) is always in range:

    >>> def rule2(text: str, *,
    ...           frac: Annotated[float | None, Range(0, 1), Doc("largest share")] = 0.3
    ...           ) -> None: ...
    >>> check_params(rule2, {"frac": 2.0})
    Traceback (most recent call last):
    ...
    ValueError: frac must be between 0 and 1, got 2.0
    >>> doc_of(typing.get_type_hints(rule2, include_extras=True)["frac"])
    'largest share'

`Doc` has the shape of `typing_extensions.Doc` (PEP 727); either is read.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

__all__ = ["Doc", "Range", "check_fields", "check_params", "check_ranges", "check_value",
           "describe_hint", "doc_of", "value_problem"]


@dataclass(frozen=True)
class Doc:
    """The one-line doc of a parameter, declared with its type:
    `Annotated[int, Range(0), Doc("fewest words a kept document has")]`."""

    documentation: str


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric parameter: `low <= value <= high` (either
    bound may be None), `value > low` instead when `open_low`, and
    `value >= params[at_least]` when that other parameter is set too."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    at_least: str | None = None

    def describe(self) -> str:
        """The range in a few characters, e.g. `0 to 1`, `>= 0`, `> 0, <= 1`."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {_num(self.low)}")
        if self.high is not None:
            parts.append(f"<= {_num(self.high)}")
        if self.at_least is not None:
            parts.append(f">= {self.at_least}")
        if self.low is not None and self.high is not None and not self.open_low:
            parts[:2] = [f"{_num(self.low)} to {_num(self.high)}"]
        return ", ".join(parts)

    def problem(self, value: Any) -> str | None:
        """Why `value` is out of range, or None (None values are never out of range)."""
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value):
            # NaN passes every comparison, and no setting here means anything at infinity.
            return f"must be a finite number, got {value!r}"
        low_bad = self.low is not None and (value <= self.low if self.open_low
                                            else value < self.low)
        high_bad = self.high is not None and value > self.high
        if not (low_bad or high_bad):
            return None
        if self.low is not None and self.high is not None:
            left = "above" if self.open_low else "between"
            joint = "and at most" if self.open_low else "and"
            return f"must be {left} {_num(self.low)} {joint} {_num(self.high)}, got {value!r}"
        if self.low == 0 and self.open_low:
            return f"must be positive, got {value!r}"
        if self.low is not None:
            word = "above" if self.open_low else "at least"
            return f"must be {word} {_num(self.low)}, got {value!r}"
        return f"must be at most {_num(self.high)}, got {value!r}"


def _num(x: float | None) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def doc_of(hint: Any) -> str:
    """The `Doc` (ours or typing_extensions') annotated on a hint, or ""."""
    if typing.get_origin(hint) is Annotated:
        for extra in typing.get_args(hint)[1:]:
            text = getattr(extra, "documentation", None)
            if isinstance(text, str):
                return text
    return ""


def describe_hint(hint: Any) -> tuple[str, str]:
    """(type, range) of a declared parameter as short text for tables,
    e.g. ("float or None", "0 to 1")."""
    kind, bounds = _split(hint)
    return _hint_text(kind), bounds.describe() if bounds is not None else ""


def _split(hint: Any) -> tuple[Any, Range | None]:
    """(the type, its Range if declared) of a possibly `Annotated` hint."""
    if typing.get_origin(hint) is Annotated:
        args = typing.get_args(hint)
        found = [a for a in args[1:] if isinstance(a, Range)]
        return args[0], found[0] if found else None
    return hint, None


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is Any:
        return True
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple and typing.get_args(hint) and typing.get_args(hint)[-1] is not Ellipsis:
        args = typing.get_args(hint)
        return isinstance(value, list | tuple) and len(value) == len(args) and all(
            _matches(v, a) for v, a in zip(value, args, strict=True))
    if origin in (collections.abc.Iterable, collections.abc.Sequence, list, tuple,
                  frozenset, set, collections.abc.Set):
        args = typing.get_args(hint)
        return isinstance(value, list | tuple | set | frozenset) and (
            not args or all(_matches(v, args[0]) for v in value))
    return True


def _hint_text(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_hint_text(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(hint))
    if origin is tuple and typing.get_args(hint) and typing.get_args(hint)[-1] is not Ellipsis:
        return "a list [" + ", ".join(_hint_text(a) for a in typing.get_args(hint)) + "]"
    if origin is not None:
        args = typing.get_args(hint)
        return f"a list of {_hint_text(args[0])}" if args else "a list"
    return getattr(hint, "__name__", str(hint))


def value_problem(value: Any, hint: Any) -> str | None:
    """Why `value` does not fit the type `hint` or the `Range` annotated on
    it (e.g. "expected int, got 'ten'", "must be positive, got 0",
    "'csv' is not one of delta, parquet, jsonl"), or None when it fits."""
    kind, bounds = _split(hint)
    if not _matches(value, kind):
        if typing.get_origin(kind) is Literal:
            return f"{value!r} is not {_hint_text(kind)}"
        return f"expected {_hint_text(kind)}, got {value!r}"
    return bounds.problem(value) if bounds is not None else None


def check_value(name: str, value: Any, hint: Any) -> None:
    """Raise ValueError naming `name` when `value` does not fit the type `hint`
    or the `Range` annotated on it."""
    why = value_problem(value, hint)
    if why is not None:
        raise ValueError(f"{name}{'' if why.startswith('must') else ':'} {why}")


def check_ranges(params: Mapping[str, Any], hints: Mapping[str, Any]) -> None:
    """Raise ValueError naming the parameter when a `Range(at_least=OTHER)`
    is broken by the values of both (e.g. max_doc_words < min_doc_words)."""
    for key, hint in hints.items():
        bounds = _split(hint)[1]
        if bounds is None or bounds.at_least is None:
            continue
        value, other = params.get(key), params.get(bounds.at_least)
        if value is None or other is None or isinstance(value, bool) or isinstance(other, bool):
            continue
        if isinstance(value, int | float) and isinstance(other, int | float) and value < other:
            raise ValueError(f"{key} must be at least {bounds.at_least} ({other!r}), "
                             f"got {value!r}")


def check_params(target: Callable[..., Any] | type, params: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first parameter whose value does not fit
    the type or range `target` (a function or a dataclass) declares for it."""
    hints = typing.get_type_hints(target, include_extras=True)
    for key, value in params.items():
        hint = hints.get(key)
        if hint is not None:
            check_value(key, value, hint)
    check_ranges(params, {k: v for k, v in hints.items() if k in params})


def check_fields(obj: Any) -> None:
    """Check every field of a dataclass instance against its declared type
    and `Range` (ValueError naming the field): the one validation a
    settings dataclass calls from its `__post_init__`."""
    hints = typing.get_type_hints(type(obj), include_extras=True)
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
              if f.name in hints and typing.get_origin(hints[f.name]) is not ClassVar}
    for key, value in values.items():
        check_value(key, value, hints[key])
    check_ranges(values, {k: hints[k] for k in values})
