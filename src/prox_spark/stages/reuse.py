"""Per-stage reuse of stored model output: pay only for what changed.

A refined row stores, per stage, the stage's fingerprint
(`stage_fingerprints`) and, per model stage, the sha256 of the text the
stage received (`stage_inputs`). When a later run refines the row again
(its row fingerprint changed: a new policy, a new chunk model, a rule
threshold), a model stage whose fingerprint is unchanged and whose input
text hashes the same takes its stored programs instead of calling the
model; the interpreter re-applies them. So a policy change makes no model
call, and a chunk-model change runs only the chunk model.

Stored output is reused when it is an answer: a doc program that exists,
chunk programs of a row that did not fail. An answer cut at the token limit
is reused too (greedy decoding with the same model, settings and input would
cut it again), with its cut: the stored `doc_truncated` / `chunk_truncated`
flags go back to the interpreter, so the row stays marked `truncated` and
its cut counts as an error as before. Rows written before those flags were
stored, and cut somewhere, are asked again (which answer was cut is unknown).

    >>> REUSE["prox_doc"], INPUT["prox_chunk"]
    ('_reuse_prox_doc', '_input_prox_chunk')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prox_spark.program.results import FAILED
from prox_spark.schema import (
    CHUNK_PROGRAMS,
    CHUNK_REUSED,
    CHUNK_TRUNCATED,
    DOC_PROGRAM,
    DOC_REUSED,
    DOC_TRUNCATED,
    REUSED,
    STAGE_FINGERPRINTS,
    STAGE_INPUTS,
    STATUS,
    TEXT,
    TRUNCATED,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

MODEL_OUTPUT = {"prox_doc": DOC_PROGRAM, "prox_chunk": CHUNK_PROGRAMS}
REUSED_FLAG = {"prox_doc": DOC_REUSED, "prox_chunk": CHUNK_REUSED}
CUT_FLAG = {"prox_doc": DOC_TRUNCATED, "prox_chunk": CHUNK_TRUNCATED}
# Working columns: the stored output a model stage may take (null: call the
# model), and the hash of the text the stage received.
REUSE = {stage: f"_reuse_{stage}" for stage in MODEL_OUTPUT}
INPUT = {stage: f"_input_{stage}" for stage in MODEL_OUTPUT}
# Whether the stored output a stage takes was cut at the token limit.
REUSE_CUT = {stage: f"_reuse_cut_{stage}" for stage in MODEL_OUTPUT}
_STORED_CUT = {stage: f"_stored_cut_{stage}" for stage in MODEL_OUTPUT}
_STORED = {stage: f"_stored_{stage}" for stage in MODEL_OUTPUT}
_STORED_FP = {stage: f"_stored_fp_{stage}" for stage in MODEL_OUTPUT}
_STORED_INPUT = {stage: f"_stored_input_{stage}" for stage in MODEL_OUTPUT}

__all__ = ["INPUT", "REUSE", "REUSE_CUT", "finish_reuse", "stored_outputs", "text_hash",
           "with_reuse"]


def text_hash(column: str = TEXT) -> Column:
    """sha256 (hex) of a text column, as `stage_inputs` stores it."""
    from pyspark.sql import functions as F

    return F.sha2(F.col(column), 256)


def stored_outputs(table: DataFrame) -> DataFrame | None:
    """Per id, the model output a refined table holds that a later run may
    reuse (see the module docstring), or None for a table written before
    per-stage reuse (nothing to reuse)."""
    from pyspark.sql import functions as F

    if STAGE_FINGERPRINTS not in table.columns or STAGE_INPUTS not in table.columns:
        return None
    uncut = ~F.coalesce(F.col(TRUNCATED), F.lit(False))
    picks = []
    for stage, output in MODEL_OUTPUT.items():
        flag = CUT_FLAG[stage]
        cut = F.col(flag) if flag in table.columns else F.lit(None)
        usable = F.col(output).isNotNull() & (cut.isNotNull() | uncut)
        if stage == "prox_chunk":
            usable = usable & (F.col(STATUS) != F.lit(FAILED))
        picks += [F.when(usable, F.col(output)).alias(_STORED[stage]),
                  F.when(usable, cut).cast(
                      "boolean" if stage == "prox_doc" else "array<boolean>"
                  ).alias(_STORED_CUT[stage]),
                  F.col(STAGE_FINGERPRINTS)[stage].alias(_STORED_FP[stage]),
                  F.col(STAGE_INPUTS)[stage].alias(_STORED_INPUT[stage])]
    return table.select("id", *picks)


def with_reuse(df: DataFrame, stored: DataFrame | None, stages: tuple[str, ...],
               fingerprints: dict[str, str]) -> DataFrame:
    """`df` (rows about to enter the model stages `stages`) with, per stage,
    the hash of the text it receives (`INPUT[stage]`) and the stored output
    it may take (`REUSE[stage]`, null when the model must run)."""
    from pyspark.sql import functions as F

    out = df
    for stage in stages:
        out = out.withColumn(INPUT[stage], text_hash())
    if stored is None:
        for stage in stages:
            doc = stage == "prox_doc"
            out = (out.withColumn(REUSE[stage], F.lit(None).cast(
                "string" if doc else "array<string>"))
                .withColumn(REUSE_CUT[stage], F.lit(None).cast(
                    "boolean" if doc else "array<boolean>")))
        return out
    columns = [c for stage in stages for c in (_STORED[stage], _STORED_CUT[stage],
                                                _STORED_FP[stage], _STORED_INPUT[stage])]
    out = out.join(stored.select("id", *columns), "id", "left")
    for stage in stages:
        same = ((F.col(_STORED_FP[stage]) == F.lit(fingerprints[stage]))
                & (F.col(_STORED_INPUT[stage]) == F.col(INPUT[stage])))
        out = (out.withColumn(REUSE[stage], F.when(same, F.col(_STORED[stage])))
               .withColumn(REUSE_CUT[stage], F.when(same, F.col(_STORED_CUT[stage]))))
    return out.drop(*columns)


def finish_reuse(df: DataFrame, fingerprints: dict[str, str]) -> DataFrame:
    """The stored per-stage columns of a refined row: `stage_fingerprints`
    (every stage configured), `stage_inputs` (model stages the row
    reached: the doc stage every row not dropped before it, the chunk stage
    the rows the doc model kept) and `reused` (model stages that took
    stored output). Drops the working columns."""
    from pyspark.sql import functions as F

    pairs = [x for name, fp in fingerprints.items() for x in (F.lit(name), F.lit(fp))]
    inputs = [s for s in MODEL_OUTPUT if INPUT[s] in df.columns and REUSED_FLAG[s] in df.columns]
    entries = F.map_from_entries(F.filter(F.array(*[
        F.struct(F.lit(s).alias("key"),
                 F.when(F.col(REUSED_FLAG[s]).isNotNull(), F.col(INPUT[s])).alias("value"))
        for s in inputs]), lambda e: e["value"].isNotNull())) if inputs else F.lit(None)
    flags = [F.when(F.coalesce(F.col(REUSED_FLAG[s]), F.lit(False)), F.lit(s))
             for s in MODEL_OUTPUT if REUSED_FLAG[s] in df.columns]
    reused = F.filter(F.array(*flags), lambda x: x.isNotNull()) if flags \
        else F.array().cast("array<string>")
    working = [c for s in MODEL_OUTPUT for c in (INPUT[s], REUSE[s], REUSE_CUT[s])
               if c in df.columns]
    return (df.withColumn(STAGE_FINGERPRINTS, F.create_map(*pairs) if pairs else F.lit(None))
            .withColumn(STAGE_INPUTS, entries)
            .withColumn(REUSED, reused)
            .drop(*working))
