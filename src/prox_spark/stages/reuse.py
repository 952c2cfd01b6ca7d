"""Per-stage reuse of stored model output: pay only for what changed.

A refined row stores, per stage, the stage's fingerprint
(`stage_fingerprints`) and, per model stage, the sha256 of the text the
stage received (`stage_inputs`). When a later run refines the row again
(its row fingerprint changed: a new policy, a new chunk model, a rule
threshold), a model stage whose fingerprint is unchanged and whose input
text hashes the same takes its stored programs instead of calling the
model; the interpreter re-applies them. So a policy change makes no model
call, and a chunk-model change runs only the chunk model.

Stored output is reused only when it is a complete answer: a doc program
that exists on a row whose answers were not cut at the token limit, chunk
programs of a row that did not fail.

    >>> REUSE["prox_doc"], INPUT["prox_chunk"]
    ('_reuse_prox_doc', '_input_prox_chunk')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prox_spark.program.results import FAILED
from prox_spark.schema import (
    CHUNK_PROGRAMS,
    CHUNK_REUSED,
    DOC_PROGRAM,
    DOC_REUSED,
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
# Working columns: the stored output a model stage may take (null: call the
# model), and the hash of the text the stage received.
REUSE = {stage: f"_reuse_{stage}" for stage in MODEL_OUTPUT}
INPUT = {stage: f"_input_{stage}" for stage in MODEL_OUTPUT}
_STORED = {stage: f"_stored_{stage}" for stage in MODEL_OUTPUT}
_STORED_FP = {stage: f"_stored_fp_{stage}" for stage in MODEL_OUTPUT}
_STORED_INPUT = {stage: f"_stored_input_{stage}" for stage in MODEL_OUTPUT}

__all__ = ["INPUT", "REUSE", "finish_reuse", "stored_outputs", "text_hash", "with_reuse"]


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
    complete = ~F.coalesce(F.col(TRUNCATED), F.lit(False))
    picks = []
    for stage, output in MODEL_OUTPUT.items():
        usable = complete & F.col(output).isNotNull()
        if stage == "prox_chunk":
            usable = usable & (F.col(STATUS) != F.lit(FAILED))
        picks += [F.when(usable, F.col(output)).alias(_STORED[stage]),
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
            out = out.withColumn(REUSE[stage], F.lit(None).cast(
                "string" if stage == "prox_doc" else "array<string>"))
        return out
    columns = [c for stage in stages for c in (_STORED[stage], _STORED_FP[stage],
                                                _STORED_INPUT[stage])]
    out = out.join(stored.select("id", *columns), "id", "left")
    for stage in stages:
        same = ((F.col(_STORED_FP[stage]) == F.lit(fingerprints[stage]))
                & (F.col(_STORED_INPUT[stage]) == F.col(INPUT[stage])))
        out = out.withColumn(REUSE[stage], F.when(same, F.col(_STORED[stage])))
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
    working = [c for s in MODEL_OUTPUT for c in (INPUT[s], REUSE[s]) if c in df.columns]
    return (df.withColumn(STAGE_FINGERPRINTS, F.create_map(*pairs) if pairs else F.lit(None))
            .withColumn(STAGE_INPUTS, entries)
            .withColumn(REUSED, reused)
            .drop(*working))
