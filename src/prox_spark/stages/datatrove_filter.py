"""Any datatrove filter as a Spark stage, its decisions recorded as programs.

An existing datatrove pipeline moves onto Spark without rewriting its
filters: each document goes through the filter's own `filter(doc)`; a drop
becomes `drop_doc()  # <reason>` in `rule_edits`, and a filter that rewrites
the text by removing lines (C4's line filters) becomes `remove_lines(...)`
calls. datatrove is an optional extra (`pip install prox-spark[datatrove]`);
nothing else in the package imports it.

Example::

    from datatrove.pipeline.filters import GopherQualityFilter
    df.transform(DatatroveFilter(GopherQualityFilter()))
"""

from __future__ import annotations

from typing import Any

from prox_spark.program import Normalize
from prox_spark.rules.result import KEEP, RuleResult, line_ranges
from prox_spark.stages.rule_stages import RuleStage


def is_datatrove_filter(obj: Any) -> bool:
    """True for a datatrove filter class or instance (without importing datatrove
    unless the object comes from it)."""
    kind = obj if isinstance(obj, type) else type(obj)
    if not any(c.__module__.startswith("datatrove.") for c in kind.__mro__):
        return False
    from datatrove.pipeline.filters.base_filter import BaseFilter

    return issubclass(kind, BaseFilter)


def _as_line_edits(before: str, after: str) -> RuleResult:
    """The lines of `before` a filter removed to get `after`, as a program.

    Kept lines are matched in order on their stripped text (datatrove's C4
    filter strips what it keeps); anything else is one exact normalization.
    """
    old = before.split("\n")
    new = [line.strip() for line in after.split("\n")]
    removed, j = [], 0
    for i, line in enumerate(old):
        if j < len(new) and line.strip() == new[j]:
            j += 1
        else:
            removed.append(i)
    if j == len(new) and removed:
        return RuleResult(removed=line_ranges(removed))
    return RuleResult(normalizations=(Normalize(before, after),))


class DatatroveRule:
    """A datatrove filter instance as a rule function `text -> RuleResult`."""

    def __init__(self, datatrove_filter: Any) -> None:
        if not is_datatrove_filter(datatrove_filter) or isinstance(datatrove_filter, type):
            raise TypeError(f"expected a datatrove filter instance, got {datatrove_filter!r}")
        self.filter = datatrove_filter
        self.__name__ = type(datatrove_filter).__name__

    def __call__(self, text: str) -> RuleResult:
        from datatrove.data import Document

        doc = Document(text=text, id="")
        decision = self.filter.filter(doc)
        keep, reason = (decision if isinstance(decision, tuple) else (bool(decision), None))
        if not keep:
            return RuleResult(str(reason or self.__name__))
        if doc.text != text and doc.text.strip() != text.strip():
            return _as_line_edits(text, doc.text)
        return KEEP


class DatatroveFilter(RuleStage):
    """Run a datatrove filter instance as a stage (see the module doc).

    Example::

        df.transform(DatatroveFilter(C4QualityFilter(filter_no_terminal_punct=False)))
    """

    def __init__(self, datatrove_filter: Any, /, *, tokenizer: str | None = None,
                 name: str | None = None) -> None:
        rule = DatatroveRule(datatrove_filter)
        super().__init__(rule, tokenizer=tokenizer, name=name or rule.__name__)
