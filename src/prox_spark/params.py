"""Check stage parameters against their declared types, before anything runs.

A YAML `min_doc_words: "50"` or `filter_no_terminal_punct: "no"` is refused
with a message naming the parameter, instead of failing minutes later inside
a Spark task or silently doing the wrong thing.

    >>> def rule(text: str, *, min_words: int | None = 5) -> None: ...
    >>> check_params(rule, {"min_words": "5"})
    Traceback (most recent call last):
    ...
    ValueError: min_words: expected int or None, got '5'
"""

from __future__ import annotations

import collections.abc
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is Any:
        return True
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


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if origin is tuple and typing.get_args(hint) and typing.get_args(hint)[-1] is not Ellipsis:
        return "a list [" + ", ".join(_describe(a) for a in typing.get_args(hint)) + "]"
    if origin is not None:
        args = typing.get_args(hint)
        return f"a list of {_describe(args[0])}" if args else "a list"
    return getattr(hint, "__name__", str(hint))


def check_value(name: str, value: Any, hint: Any) -> None:
    """Raise ValueError naming `name` when `value` does not fit the type `hint`."""
    if not _matches(value, hint):
        raise ValueError(f"{name}: expected {_describe(hint)}, got {value!r}")


def check_params(target: Callable[..., Any] | type, params: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first parameter whose value does not fit
    the type `target` (a function or a dataclass) declares for it."""
    hints = typing.get_type_hints(target)
    for key, value in params.items():
        hint = hints.get(key)
        if hint is not None:
            check_value(key, value, hint)
