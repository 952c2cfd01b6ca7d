"""Helpers every section parser uses (here, in `distill` and in `ablate`):
a section as a mapping, its keys checked, its declared values checked, a
table reference read. Each problem is one `ConfigError` naming the field.

    >>> table_ref({"table": "main.docs"}, "output")
    TableRef(path=None, table='main.docs')
    >>> check_keys({"pth": "x"}, ("path", "table"), "output")
    Traceback (most recent call last):
    ...
    prox_spark.errors.ConfigError: output.pth: unknown key; expected one of path, table
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prox_spark.config.keys import TABLE_KEYS
from prox_spark.config.model import hints
from prox_spark.errors import ConfigError
from prox_spark.params import value_problem
from prox_spark.refs import TableRef

TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""A plain column name (what a source column setting must be)."""
URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:/")
"""A location with a scheme (`s3://`, `file:/`): not made absolute locally."""


def as_mapping(value: Any, where: str) -> dict[str, Any]:
    """A YAML section as a dict (null: empty); ConfigError naming `where`
    when it is not a mapping."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(where, f"expected a mapping, got {type(value).__name__}")
    return dict(value)


def check_keys(section: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """ConfigError naming the first key of `section` not in `allowed`."""
    for key in section:
        if key not in allowed:
            raise ConfigError(
                f"{where}.{key}" if where else str(key),
                f"unknown key; expected one of {', '.join(allowed)}",
            )


def declared(cls: type, section: Mapping[str, Any], where: str,
             names: tuple[str, ...]) -> dict[str, Any]:
    """The values of `names` given in `section` (null means absent, so the
    field's default), each checked against the type and range `cls`
    declares for it; a `ConfigError` names the first that does not fit."""
    types = hints(cls)
    out = {}
    for name in names:
        value = section.get(name)
        if value is None:
            continue
        why = value_problem(value, types[name])
        if why is not None:
            raise ConfigError(f"{where}.{name}" if where else name, why)
        out[name] = value
    return out


def absolute(path: str) -> str:
    """A local path made absolute (relative to the current directory); a URI as it is."""
    return path if URI.match(path) else str(Path(path).expanduser().resolve())


def table_ref(section: Mapping[str, Any], where: str) -> TableRef:
    """`path` or `table` (exactly one), validated; a local path made absolute.
    The section's other keys are the caller's to check."""
    given = declared(TableRef, section, where, TABLE_KEYS)
    path, table = given.get("path"), given.get("table")
    if (path is None) == (table is None):
        raise ConfigError(where, "give exactly one of `path` or `table`")
    if table is not None and not TABLE_NAME.match(table):
        raise ConfigError(f"{where}.table", f"{table!r} is not a valid table name")
    if path is not None:
        if not path.strip() or "\x00" in path:
            raise ConfigError(f"{where}.path", f"{path!r} is not a valid path")
        path = absolute(path)
    return TableRef(path=path, table=table)


def parse_table_ref(raw: Any, where: str) -> TableRef:
    """A `{path: ...}` or `{table: ...}` section (exactly one), validated."""
    section = as_mapping(raw, where)
    check_keys(section, TABLE_KEYS, where)
    return table_ref(section, where)
