"""Small corpora and configs for the refresh tests (rules-only: the point is the
commit logic, so no model is loaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The refresh tests' job, for the `config_file` fixture with `source=`: one
# task per stage is fastest on tiny corpora, and the report has tests of its own.
RULES_JOB = {"stages": ["exact_dedup"], "spark": {"partitions": 1}, "report": False}

WORDS = ("river market mill bread town boat harbour field stone bridge lamp road garden "
         "window letter winter summer forest valley hill").split()


def doc(i: int, variant: int = 0) -> str:
    """A distinct, clean prose document per (i, variant)."""
    words = [WORDS[(i * 7 + j * 3 + variant) % len(WORDS)] for j in range(12)]
    return "\n".join(
        f"Document {i} version {variant} line {k}: the " + " ".join(words[k:] + words[:k]) + "."
        for k in range(4)
    )


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def table(spark: Any, path: Path | str) -> dict[str, Any]:
    rows = spark.read.format("delta").load(str(path)).collect()
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids)), "duplicate ids in the refined table"
    assert None not in ids, "a null id reached the refined table"
    return {r.id: r for r in rows}
