"""The old import paths of the modules that moved into packages.

Until the `io`, `generation` and `report` packages, `prox_spark.delta`,
`prox_spark.engine`, `prox_spark.report_diff` and the others in `MOVED` were
top-level modules; notebooks, jobs and users import them (and tests
monkeypatch through them) by those names. Each old name stays importable and
*is* the moved module, the same object, so an attribute set through one name
is seen through the other:

    >>> import prox_spark.delta, prox_spark.io.delta
    >>> prox_spark.delta is prox_spark.io.delta
    True

One finder on `sys.meta_path` serves every old name, rather than a file per
old module: a shim file would be a second module whose `sys.modules` entry is
another file (which pytest's `--doctest-modules` refuses). `prox_spark.generation`
and `prox_spark.report` need no alias: they are the packages now, and
re-export what the modules of those names defined.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

MOVED: dict[str, str] = {
    "prox_spark.records": "prox_spark.io.records",
    "prox_spark.sources": "prox_spark.io.sources",
    "prox_spark.delta": "prox_spark.io.delta",
    "prox_spark.metrics": "prox_spark.io.metrics",
    "prox_spark.claims": "prox_spark.io.claims",
    "prox_spark.corpus": "prox_spark.io.corpus",
    "prox_spark.engine": "prox_spark.generation.engine",
    "prox_spark.prompts": "prox_spark.generation.prompts",
    "prox_spark.report_diff": "prox_spark.report.diff",
    "prox_spark.report_svg": "prox_spark.report.svg",
}


class _AliasLoader:
    """Loads an old name as the module it moved to (imported if need be)."""

    def __init__(self, new: str) -> None:
        self.new = new
        self._spec: ModuleSpec | None = None

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.new)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The module is already executed. The import system has just given it
        # the old name's spec; it keeps its own (what `importlib.reload` uses).
        module.__spec__ = self._spec


class _MovedFinder:
    """Finds the old names in `MOVED`, and nothing else. (The import protocol
    needs no base class; `importlib.abc` would add ~80 ms to `import prox_spark`.)"""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        new = MOVED.get(fullname)
        return None if new is None else ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put the finder first on `sys.meta_path` (once), so an old name never
    reaches a stale file of that name."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
