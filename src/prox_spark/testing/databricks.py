"""Run a Databricks source-format notebook as plain Python, off Databricks.

The notebook gets the globals Databricks would give it: `spark`, `display`,
`displayHTML`, and a stand-in `dbutils` whose widgets return the defaults the
notebook declares (or the values passed in). `# MAGIC` lines (`%pip`, `%md`)
are comments in the source, so they simply do not run.

    >>> shown = run_notebook("notebooks/inspect_refined.py", spark,   # doctest: +SKIP
    ...                      output="/tmp/refined")
"""

from __future__ import annotations

import runpy
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class StandInWidgets:
    """`dbutils.widgets` off Databricks: declarations record their default,
    `get` returns the value passed in, else the default."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self.values = {k: str(v) for k, v in (values or {}).items()}
        self.declared: dict[str, str] = {}

    def _declare(self, name: str, default: str, *_: Any, **__: Any) -> None:
        self.declared[name] = str(default)

    text = dropdown = combobox = multiselect = _declare

    def get(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        if name not in self.declared:
            raise KeyError(f"no widget named {name!r} was declared")
        return self.declared[name]

    def removeAll(self) -> None:
        self.declared.clear()


class StandInDbutils:
    """The part of `dbutils` the notebooks use."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self.widgets = StandInWidgets(values)


def run_notebook(path: str | Path, spark: Any, **widgets: Any) -> dict[str, Any]:
    """Execute the notebook; returns its globals plus `shown`: what it passed
    to `display` and `displayHTML`, in order."""
    shown: list[Any] = []
    return {**runpy.run_path(str(path), init_globals={
        "spark": spark, "dbutils": StandInDbutils(widgets),
        "display": shown.append, "displayHTML": shown.append,
    }), "shown": shown}
