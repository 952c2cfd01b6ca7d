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


def as_rule_result(value: object, reason: str) -> RuleResult:
    """A rule's answer as a `RuleResult`: a `RuleResult` as it is, True or
    None to keep, False to drop with `reason`, or datatrove's
    `(False, "why")`.

        >>> as_rule_result((False, "too_short"), "my_rule").program
        'drop_doc()  # too_short'
    """
    if isinstance(value, RuleResult):
        return value
    if value is None or value is True:
        return KEEP
    if value is False:
        return RuleResult(reason)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
        return KEEP if value[0] else RuleResult(str(value[1] or reason))
    raise TypeError(f"a rule must return a RuleResult, a bool or (bool, reason), "
                    f"not {type(value).__name__}")


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
