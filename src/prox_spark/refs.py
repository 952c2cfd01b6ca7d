"""How a table is named: a `TableRef` (a path or a catalog name), with no
Spark or Delta import, so that configuration can name tables without them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TableRef:
    """A table by location (`path`) or by catalog name (`table`); exactly one is set."""

    path: str | None = None
    table: str | None = None

    def __str__(self) -> str:
        return self.path or self.table or "?"

    def sibling(self, suffix: str) -> TableRef:
        """The table beside this one: `<path><suffix>` or `<table><suffix>`
        (the metrics table `_metrics`, the claims table `_claims`)."""
        if self.path is not None:
            return TableRef(path=self.path.rstrip("/") + suffix)
        return TableRef(table=f"{self.table}{suffix}")


def is_delta_dir(path: Path) -> bool:
    """True when a local directory holds a Delta table (has a transaction log)."""
    return (path / "_delta_log").is_dir()
