"""Rule-based cleaning as Spark stages that record their decisions as programs.

Each stage reads the current text (`refined_text` after the model stages,
`text` before them), asks its rule for a program, applies it with the same
interpreter as the model programs, and appends what it did to `rule_edits`
(stage, program, reason code, words and tokens removed). Dropped documents keep their
row with a null text and status "dropped", so every decision stays auditable.

    >>> df.transform(RuleStage("gopher_quality")).transform(ExactDedup())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from prox_spark.params import check_params
from prox_spark.program import run_chunk_program
from prox_spark.rules import QUALITY_RULES
from prox_spark.stages.base import REFINED_TEXT, TEXT, Stage

RULE_EDITS = "rule_edits"
EDIT_TYPE = (
    "struct<stage:string,program:string,reason:string,words_removed:int,tokens_removed:int>"
)
RULE_RESULT_SCHEMA = (
    "text string, program string, reason string, changed boolean, words_removed int, "
    "tokens_removed int"
)
# Rule line edits are exact, so none of the model policy's safety nets apply.
_APPLY_ALL = {"max_errors": 10**9, "min_kept_ratio": 0.0, "min_words": 0}


def current_text_column(columns: list[str]) -> str:
    """The column that holds the text as refined so far."""
    return REFINED_TEXT if REFINED_TEXT in columns else TEXT


def apply_rule_batch(texts: pd.Series, rule: str, params: Mapping[str, Any],
                     tokenizer: str | None = None) -> pd.DataFrame:
    """One Arrow batch through one rule (plain pandas, testable without Spark).

    With a `tokenizer` (model directory or id), also counts tokens removed.
    """
    fn = QUALITY_RULES[rule]
    rows = []
    for text in texts:
        if not isinstance(text, str):
            rows.append((None, None, None, False, 0))
            continue
        result = fn(text, **params)
        if result.dropped:
            rows.append((None, result.program, result.reason, True, len(text.split())))
        elif result.removed or result.normalizations:
            applied = run_chunk_program(text, result.program, **_APPLY_ALL)
            new = applied.text
            rows.append((new, result.program, None, new != text,
                         len(text.split()) - len(new.split())))
        else:
            rows.append((text, None, None, False, 0))
    out = pd.DataFrame(rows, columns=["text", "program", "reason", "changed", "words_removed"])
    out["tokens_removed"] = None
    changed = [i for i, row in enumerate(rows) if row[3]]
    if tokenizer is not None and changed:
        from prox_spark.engine import get_tokenizer
        from prox_spark.prompts import token_counts

        tok = get_tokenizer(tokenizer)
        before = token_counts([texts.iloc[i] for i in changed], tok)
        after = token_counts([rows[i][0] or "" for i in changed], tok)
        removed = pd.Series(None, index=out.index, dtype="object")
        for i, b, a in zip(changed, before, after, strict=True):
            removed[i] = b - a
        out["tokens_removed"] = removed
    return out


def record_edit(df: Any, stage: str, column: str, new_text: Any, program: Any, reason: Any,
                changed: Any, words_removed: Any, tokens_removed: Any) -> Any:
    """Replace the current text and append an edit entry where the row changed."""
    from pyspark.sql import functions as F

    if RULE_EDITS not in df.columns:
        df = df.withColumn(RULE_EDITS, F.array().cast(f"array<{EDIT_TYPE}>"))
    edit = F.struct(
        F.lit(stage).alias("stage"), program.alias("program"), reason.alias("reason"),
        words_removed.cast("int").alias("words_removed"),
        tokens_removed.cast("int").alias("tokens_removed"),
    )
    dropped = reason.isNotNull()
    df = df.withColumn(
        RULE_EDITS, F.when(changed, F.concat(F.col(RULE_EDITS), F.array(edit)))
        .otherwise(F.col(RULE_EDITS))
    )
    if "status" in df.columns:
        status = (F.when(dropped, F.lit("dropped"))
                  .when(changed & (F.col("status") == "kept"), F.lit("edited"))
                  .otherwise(F.col("status")))
    else:
        status = (F.when(F.col(column).isNull() | dropped, F.lit("dropped"))
                  .when(changed, F.lit("edited")).otherwise(F.lit("kept")))
    return df.withColumn("status", status).withColumn(column, new_text)


@dataclass
class RuleStage(Stage):
    """One of the quality rules (`gopher_quality`, `gopher_repetition`,
    `c4_quality`, `fineweb_quality`) with its keyword thresholds.

    Example::

        df.transform(RuleStage("gopher_quality", {"min_doc_words": 100}))
    """

    rule: str
    params: Mapping[str, Any] = field(default_factory=dict)
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        if self.rule not in QUALITY_RULES:
            raise ValueError(
                f"unknown rule {self.rule!r}; expected one of {', '.join(QUALITY_RULES)}"
            )
        import inspect

        accepted = set(inspect.signature(QUALITY_RULES[self.rule]).parameters) - {"text"}
        unknown = set(self.params) - accepted
        if unknown:
            raise ValueError(
                f"{self.rule}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                f"expected some of {', '.join(sorted(accepted))}"
            )
        check_params(QUALITY_RULES[self.rule], self.params)

    def transform(self, df):  # type: ignore[no-untyped-def]
        from pyspark.sql import functions as F
        from pyspark.sql.functions import pandas_udf

        rule, params, tokenizer = self.rule, dict(self.params), self.tokenizer

        @pandas_udf(RULE_RESULT_SCHEMA)  # type: ignore[call-overload]
        def prox_rule(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
            for texts in batches:
                yield apply_rule_batch(texts, rule, params, tokenizer)

        column = current_text_column(df.columns)
        out = df.withColumn("_rule", prox_rule(F.col(column)))
        r = lambda name: F.col(f"_rule.{name}")  # noqa: E731
        out = record_edit(out, rule, column, r("text"), r("program"), r("reason"),
                          r("changed"), r("words_removed"), r("tokens_removed"))
        return out.drop("_rule")
