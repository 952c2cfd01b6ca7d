"""What a rule decided about one document, as a ProX program."""

from __future__ import annotations

from dataclasses import dataclass

from prox_spark.program.calls import Normalize, RemoveLines


@dataclass(frozen=True, slots=True)
class RuleResult:
    """`reason` is None when the document is kept; line edits may accompany a keep.

    `program` writes the decision in the models' language, so the same
    interpreter applies rule edits and model edits::

        >>> RuleResult("gopher_short_doc").program
        'drop_doc()  # gopher_short_doc'
    """

    reason: str | None = None
    removed: tuple[RemoveLines, ...] = ()
    normalizations: tuple[Normalize, ...] = ()

    @property
    def dropped(self) -> bool:
        return self.reason is not None

    @property
    def program(self) -> str:
        if self.reason is not None:
            return f"drop_doc()  # {self.reason}"
        calls = [str(c) for c in (*self.removed, *self.normalizations)]
        return "\n".join(calls) if calls else "keep_doc()"


KEEP = RuleResult()


def line_ranges(indices: list[int]) -> tuple[RemoveLines, ...]:
    """Consecutive line numbers folded into `remove_lines` calls."""
    calls: list[RemoveLines] = []
    start = prev = None
    for i in indices:
        if start is None:
            start = prev = i
        elif i == prev + 1:  # type: ignore[operator]
            prev = i
        else:
            calls.append(RemoveLines(start, prev))  # type: ignore[arg-type]
            start = prev = i
    if start is not None:
        calls.append(RemoveLines(start, prev))  # type: ignore[arg-type]
    return tuple(calls)
