"""Rule-based cleaning as Spark stages that record their decisions as programs.

Each stage reads the current text (`refined_text` after the model stages,
`text` before them), asks its rule for a program, applies it with the same
interpreter as the model programs, and appends what it did to `rule_edits`
(stage, program, reason code, words and tokens removed). Dropped documents keep their
row with a null text and status "dropped", so every decision stays auditable.

    >>> df.transform(RuleStage("gopher_quality")).transform(ExactDedup())  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from prox_spark.counts import word_count
from prox_spark.generation.counting import token_counts_with
from prox_spark.params import check_params
from prox_spark.program import run_chunk_program
from prox_spark.rules import QUALITY_RULES, as_rule_result, our_spelling
from prox_spark.schema import (
    EDIT_TYPE,
    REFINED_TEXT,
    RULE_EDITS,
    RULE_ERROR,
    RULE_RESULT,
    STATUS,
    TEXT,
)
from prox_spark.stages.base import Stage, status_expr

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# The reason code (after the rule's name) of a document whose edits left no word.
EMPTIED = "empty_after_edit"
# Rule line edits are exact, so none of the model policy's safety nets apply.
_APPLY_ALL = {"max_errors": 10**9, "min_kept_ratio": 0.0, "min_words": 0}


def current_text_column(columns: list[str]) -> str:
    """The column that holds the text as refined so far."""
    return REFINED_TEXT if REFINED_TEXT in columns else TEXT


def _rule_function(rule: str | Callable[..., Any]) -> Callable[..., Any]:
    return QUALITY_RULES[rule] if isinstance(rule, str) else rule


def apply_rule_batch(texts: pd.Series, rule: str | Callable[..., Any],
                     params: Mapping[str, Any], tokenizer: str | None = None,
                     name: str | None = None) -> pd.DataFrame:
    """One Arrow batch through one rule (plain pandas, testable without Spark).

    `rule` is a built-in rule's name or any function `(text, **params)`
    returning a `RuleResult`, a bool or `(bool, reason)`. A rule that raises
    or answers nonsense for a row leaves that row as it was, with an error.
    Edits that leave no word drop the row (reason ``<rule>:empty_after_edit``).
    With a `tokenizer` (model directory or id), also counts tokens removed.
    """
    fn = _rule_function(rule)
    reason = name or (rule if isinstance(rule, str) else getattr(fn, "__name__", "rule"))
    rows = []
    for text in texts:
        if not isinstance(text, str):
            rows.append((None, None, None, False, 0, None))
            continue
        try:
            result = as_rule_result(fn(text, **params), reason)
            if result.dropped:
                rows.append((None, result.program, result.reason, True, word_count(text),
                             None))
            elif result.removed or result.normalizations:
                program = result.program
                new = run_chunk_program(text, program, **_APPLY_ALL).text
                if not word_count(new):
                    # Edits that leave no word drop the document, saying so.
                    rows.append((None, program, f"{reason}:{EMPTIED}", True,
                                 word_count(text), None))
                else:
                    rows.append((new, program, None, new != text,
                                 word_count(text) - word_count(new), None))
            else:
                rows.append((text, None, None, False, 0, None))
        except Exception as exc:  # a user's rule must not fail the task
            rows.append((text, None, None, False, 0,
                         f"{reason} failed: {type(exc).__name__}: {exc}"[:500]))
    out = pd.DataFrame(rows, columns=["text", "program", "reason", "changed", "words_removed",
                                      "error"])
    out["tokens_removed"] = None
    changed = [i for i, row in enumerate(rows) if row[3]]
    before = token_counts_with(tokenizer, [texts.iloc[i] for i in changed])
    if before is not None:
        after = token_counts_with(tokenizer, [rows[i][0] or "" for i in changed]) or []
        removed = pd.Series(None, index=out.index, dtype="object")
        for i, b, a in zip(changed, before, after, strict=True):
            removed[i] = b - a
        out["tokens_removed"] = removed
    return out[["text", "program", "reason", "changed", "words_removed", "tokens_removed",
                "error"]]


def word_count_column(text: Any) -> Any:
    """`counts.word_count` of a string column, as an int column (0 for null)."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("int")  # type: ignore[call-overload]
    def prox_words(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for texts in batches:
            yield pd.Series([word_count(t) for t in texts], dtype="int32")

    return prox_words(text)


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
    if STATUS in df.columns:
        status = status_expr(dropped, changed, F.col(STATUS))
    else:
        status = status_expr(F.col(column).isNull() | dropped, changed)
    return df.withColumn(STATUS, status).withColumn(column, new_text)


class RuleStage(Stage):
    """A quality rule as a stage: one of ours by name (`gopher_quality`,
    `gopher_repetition`, `c4_quality`, `fineweb_quality`) or any function
    `(text, **params)` returning a `RuleResult`, a bool or `(bool, reason)`,
    with its keyword thresholds (datatrove's spellings of ours too, see
    `rules.our_spelling`). `tokenizer` (a model directory or id) counts the
    tokens each edit removed.

    Example::

        df.transform(RuleStage("c4_quality", filter_no_terminal_punct=False))
        df.transform(RuleStage(lambda text: "<table" not in text, name="no_tables"))
    """

    adds: ClassVar[tuple[str, ...]] = (RULE_EDITS, RULE_ERROR, STATUS)

    def __init__(self, rule: str | Callable[..., Any], /, *, tokenizer: str | None = None,
                 name: str | None = None, **params: Any) -> None:
        if isinstance(rule, str):
            if rule not in QUALITY_RULES:
                raise ValueError(
                    f"unknown rule {rule!r}; expected one of {', '.join(QUALITY_RULES)}")
            name = name or rule
            params = our_spelling(rule, params)
        elif not callable(rule):
            raise TypeError(f"rule must be a rule name or a function, not {rule!r}")
        self.rule, self.params, self.tokenizer = rule, dict(params), tokenizer
        self.name = name or getattr(rule, "__name__", "rule")
        fn = _rule_function(rule)
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return
        if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            accepted = set(list(signature.parameters)[1:])
            unknown = set(self.params) - accepted
            if unknown:
                raise ValueError(
                    f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                    f"expected some of {', '.join(sorted(accepted)) or '(none)'}")
        if inspect.isfunction(fn):
            check_params(fn, self.params)

    def __repr__(self) -> str:
        return f"RuleStage({self.name!r}, **{self.params!r})"

    def _transform(self, df: DataFrame) -> DataFrame:
        return apply_rules(df, [self])


def apply_rules(df: DataFrame, stages: Sequence[RuleStage]) -> DataFrame:
    """`df` through rule stages one after another, in one Python UDF: each
    Arrow batch goes to Python once and every rule runs on it in turn, the
    next rule reading the text the one before left (what the stages would do
    one `transform` at a time: the same rows, edits and errors). A chained
    Python UDF costs each Spark task a Python worker and an Arrow round trip
    of the text (about 0.1 s a task here), which small batches feel."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    specs = [(s.rule, s.params, s.tokenizer, s.name) for s in stages]
    fields = RULE_RESULT.split(", ")
    schema = ", ".join(f"r{i}_{f}" for i in range(len(specs)) for f in fields)

    @pandas_udf(schema)  # type: ignore[call-overload]
    def prox_rule(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        for texts in batches:
            parts = []
            for i, (rule, params, tokenizer, name) in enumerate(specs):
                out = apply_rule_batch(texts, rule, params, tokenizer, name)
                texts = out["text"]
                parts.append(out.add_prefix(f"r{i}_"))
            yield pd.concat(parts, axis=1)

    column = current_text_column(df.columns)
    out = df.withColumn("_rule", prox_rule(F.col(column)))
    for i, stage in enumerate(stages):
        r = lambda field, i=i: F.col(f"_rule.r{i}_{field}")  # noqa: E731
        out = record_edit(out, stage.name, column, r("text"), r("program"), r("reason"),
                          r("changed"), r("words_removed"), r("tokens_removed"))
        previous = F.col(RULE_ERROR) if RULE_ERROR in out.columns else F.lit(None)
        out = out.withColumn(RULE_ERROR, F.concat_ws("; ", previous, r("error")))
        out = out.withColumn(RULE_ERROR, F.when(F.col(RULE_ERROR) != "", F.col(RULE_ERROR)))
    return out.drop("_rule")


class RuleChain(Stage):
    """Consecutive rule stages as one stage (`apply_rules`): what the
    pipeline runs for rule stages listed one after another."""

    adds: ClassVar[tuple[str, ...]] = RuleStage.adds

    def __init__(self, stages: Sequence[RuleStage]) -> None:
        self.stages = tuple(stages)

    def __repr__(self) -> str:
        return f"RuleChain({list(self.stages)!r})"

    def _transform(self, df: DataFrame) -> DataFrame:
        return apply_rules(df, self.stages)


def fuse_rule_stages(stages: list[Stage]) -> list[Stage]:
    """Rule stages directly following one another become one `RuleChain`
    (a subclass that brings its own `_transform` stays on its own)."""
    out: list[Stage] = []
    for stage in stages:
        fusable = isinstance(stage, RuleStage) and type(stage)._transform is RuleStage._transform
        last = out[-1] if out else None
        if fusable and isinstance(last, RuleChain):
            out[-1] = RuleChain([*last.stages, stage])
        elif fusable and isinstance(last, RuleStage) \
                and type(last)._transform is RuleStage._transform:
            out[-1] = RuleChain([last, stage])
        else:
            out.append(stage)
    return out
