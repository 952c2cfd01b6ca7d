"""What `annotate` wrote, counted: examples per task and validity, labels,
discards by reason, valid examples per split (`AnnotateSummary`), and the
rendering the command prints and the report page shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class AnnotateSummary:
    """What `annotate` wrote: counts per task and validity, labels, discards
    by reason, the table and its Delta version."""

    documents: int
    examples: Mapping[str, Mapping[str, int]]
    labels: Mapping[str, int]
    discards: Mapping[str, int]
    splits: Mapping[str, int]
    table: str
    version: int | None
    seconds: float
    report: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def render(self) -> str:
        lines = [f"annotated {self.documents:,} documents in {self.seconds:.0f} s -> "
                 f"{self.table} (version {self.version})"]
        for task, counts in sorted(self.examples.items()):
            lines.append(f"  {task}: {counts.get('valid', 0):,} valid, "
                         f"{counts.get('discarded', 0):,} discarded")
        lines.append("  labels: " + ", ".join(f"{k} {v:,}" for k, v in
                                              sorted(self.labels.items())))
        lines.append("  split (valid): " + ", ".join(f"{k} {v:,}" for k, v in
                                                    sorted(self.splits.items())))
        if self.discards:
            lines.append("  discarded by reason:")
            lines.extend(f"    {n:6,}  {r}" for r, n in
                         sorted(self.discards.items(), key=lambda kv: -kv[1]))
        lines.extend(f"  note: {n}" for n in self.notes)
        if self.report:
            lines.append(f"  report: {self.report}")
        return "\n".join(lines)


def summarize(df: DataFrame) -> tuple[dict[str, dict[str, int]], dict[str, int],
                                      dict[str, int], dict[str, int]]:
    """(examples per task and validity, labels, discards by reason, valid per split)."""
    rows = df.groupBy("task", "valid", "split", "completion", "reason").count().collect()
    examples: dict[str, Counter[str]] = {}
    labels: Counter[str] = Counter()
    discards: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    for r in rows:
        kind = "valid" if r["valid"] else "discarded"
        examples.setdefault(r["task"], Counter())[kind] += r["count"]
        if r["valid"]:
            splits[r["split"]] += r["count"]
            label = r["completion"] if r["task"] == "doc" or r["completion"] == "keep_chunk()" \
                else "chunk edits"
            labels[f"{r['task']}: {label}"] += r["count"]
        else:
            discards[f"{r['task']}: {reason_kind(r['reason'])}"] += r["count"]
    return ({k: dict(v) for k, v in examples.items()}, dict(labels), dict(discards),
            dict(splits))


def reason_kind(reason: str | None) -> str:
    """A discard reason without its specifics (line numbers, strings), to count by."""
    text = (reason or "no label").split(" (")[0]
    return text.split(": ", 1)[0] if ": " in text else text
