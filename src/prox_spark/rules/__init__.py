"""Rule-based cleaning (Gopher, C4, FineWeb) that speaks the ProX program language.

Plain Python, no Spark: each rule maps a text to a `RuleResult` whose
`program` is a `drop_doc()` with a reason code or `remove_lines(...)` calls.

    >>> gopher_quality("too short").program
    'drop_doc()  # gopher_short_doc'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

# datatrove's spellings of our parameters, accepted too: its names, and -1
# for a check it turns off (we say None).
DATATROVE_NAMES = {"gopher_quality": {"max_non_alpha_words_ratio": "min_alpha_words_ratio"}}
OFF_AS_MINUS_ONE = {
    "c4_quality": ("min_num_sentences", "min_words_per_line", "max_word_length"),
}


def our_spelling(rule: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` of built-in rule `rule` with datatrove's spellings rewritten
    to ours (ValueError when both spellings of one parameter are given).

    >>> our_spelling("gopher_quality", {"max_non_alpha_words_ratio": 0.7})
    {'min_alpha_words_ratio': 0.7}
    >>> our_spelling("c4_quality", {"min_num_sentences": -1, "max_word_length": 50})
    {'min_num_sentences': None, 'max_word_length': 50}
    """
    out: dict[str, Any] = {}
    names = DATATROVE_NAMES.get(rule, {})
    for key, value in params.items():
        ours = names.get(key, key)
        if ours in out:
            raise ValueError(f"{key} is datatrove's name for {ours}; give only one of them")
        out[ours] = value
    for key in OFF_AS_MINUS_ONE.get(rule, ()):
        if type(out.get(key)) is int and out[key] == -1:
            out[key] = None
    return out


__all__ = [
    "DATATROVE_NAMES",
    "OFF_AS_MINUS_ONE",
    "QUALITY_RULES",
    "RuleResult",
    "as_rule_result",
    "c4_quality",
    "fineweb_quality",
    "gopher_quality",
    "gopher_repetition",
    "our_spelling",
]
