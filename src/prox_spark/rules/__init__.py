"""Rule-based cleaning (Gopher, C4, FineWeb) that speaks the ProX program language.

Plain Python, no Spark: each rule maps a text to a `RuleResult` whose
`program` is a `drop_doc()` with a reason code or `remove_lines(...)` calls.

    >>> gopher_quality("too short").program
    'drop_doc()  # gopher_short_doc'
"""

from __future__ import annotations

from prox_spark.rules.c4 import c4_quality
from prox_spark.rules.fineweb import fineweb_quality
from prox_spark.rules.gopher import gopher_quality, gopher_repetition
from prox_spark.rules.result import RuleResult, as_rule_result

QUALITY_RULES = {
    "gopher_quality": gopher_quality,
    "gopher_repetition": gopher_repetition,
    "c4_quality": c4_quality,
    "fineweb_quality": fineweb_quality,
}

__all__ = [
    "QUALITY_RULES",
    "RuleResult",
    "as_rule_result",
    "c4_quality",
    "fineweb_quality",
    "gopher_quality",
    "gopher_repetition",
]
