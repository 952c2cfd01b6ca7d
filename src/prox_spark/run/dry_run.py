"""`prox-spark plan CONFIG`: what a run would do, without writing anything or
calling a model.

    >>> print(dry_run(load_config("conf/local.yaml")).render())  # doctest: +SKIP

It reads the source and the refined table as a run would (`run.plan`),
runs the stages before the first model stage on the pending documents
(`StageChain.apply_prefix`: rules and dedup are CPU work), and asks
`stages.reuse` which model answers are stored. Per model stage it counts
the rows the model would answer now and the rows that would take stored
output, and the prompt tokens it would send, tokenized with the model's own
encoding (`generation.counting`). The run's summary and metrics carry the
same counts (`new_documents`, `changed_documents`, `refreshed_documents`,
`doc_recomputed`, `doc_reused`, `chunk_recomputed`, `chunk_reused`), so
plan and actual can be compared.

The doc stage's counts are exact. The chunk stage sees only documents the
doc model keeps, so where the doc model must answer again its count is a
range: `recompute` (certain) to `recompute_at_most`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from prox_spark.config import ModelConfig, PipelineConfig
from prox_spark.generation.batch import clean_text
from prox_spark.generation.counting import PromptCounter
from prox_spark.io.metrics import measured_rates
from prox_spark.program import DROPPED, FAILED, KEPT, run_doc_program
from prox_spark.run.job import plan_work, session_for
from prox_spark.run.refine import chain_for
from prox_spark.run.refined_table import RefinedTable
from prox_spark.schema import STATUS, TEXT
from prox_spark.stages.reuse import REUSE, with_reuse

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Prompt tokens one GPU reads per second for the released 0.3B/0.7B models,
# as implied by ProX's scale (about 100 GPU-hours for both passes over 60B
# tokens, i.e. ~330K prompt tokens/s; see the issue on per-stage reuse).
# A stated default, not a measurement: pass your own figure.
DEFAULT_PROMPT_TOKENS_PER_SECOND = 300_000.0

_COUNTS = ("doc_reached", "doc_reuse", "doc_tokens", "chunk_certain", "chunk_reuse",
           "chunk_unknown", "chunk_unknown_reuse", "chunk_tokens", "chunk_unknown_tokens")

__all__ = ["DEFAULT_PROMPT_TOKENS_PER_SECOND", "DryRun", "StagePlan", "dry_run"]


@dataclass(frozen=True)
class StagePlan:
    """One model stage in a plan: rows the model would answer now
    (`recompute`, at most `recompute_at_most`), rows that would take stored
    output (`reuse`), and the prompt tokens of the rows answered now
    (`prompt_tokens`, at most `prompt_tokens_at_most`)."""

    stage: str
    model: str
    recompute: int
    reuse: int
    prompt_tokens: int
    recompute_at_most: int
    prompt_tokens_at_most: int
    # Prompt tokens per second of one engine (one GPU) used for `gpu_hours`,
    # and where the figure comes from.
    tokens_per_second: float = DEFAULT_PROMPT_TOKENS_PER_SECOND
    rate_source: str = "stated default"

    def gpu_hours(self, tokens_per_second: float | None = None) -> float:
        """GPU-hours of generation for the most prompt tokens this stage may
        send, at `tokens_per_second` (default: the stage's own rate)."""
        return self.prompt_tokens_at_most / (tokens_per_second or self.tokens_per_second) / 3600


@dataclass(frozen=True)
class DryRun:
    """What a run of a config would do (see the module docstring).

    Documents: `new` (id not in the refined table), `changed` (its text
    changed), `refreshed` (same text, refined again: other settings, a
    failed row retried, a stale dedup decision), `unchanged` (already
    refined with these settings), `deleted` (refined rows whose document
    left the source), `waiting` (pending beyond --limit or the CPU sample).
    """

    fingerprint: str
    documents_in: int
    new: int
    changed: int
    refreshed: int
    unchanged: int
    deleted: int
    waiting: int
    stages: tuple[StagePlan, ...]
    tokens_per_second: float
    tokens_per_second_source: str
    batches: int = 0  # committed batches the run would make (commit_every)

    @property
    def pending(self) -> int:
        return self.new + self.changed + self.refreshed

    def render(self) -> str:
        lines = [
            "prox-spark plan (nothing written, no model called)",
            f"  documents in      {self.documents_in:>10,}",
            f"    new             {self.new:>10,}",
            f"    changed         {self.changed:>10,}",
            f"    refreshed       {self.refreshed:>10,}   (same text, refined again)",
            f"    unchanged       {self.unchanged:>10,}   (already refined, skipped)",
            f"  deleted           {self.deleted:>10,}   (gone from the source)",
            f"  batches           {self.batches:>10,}   (one commit each)",
        ]
        if self.waiting:
            lines.append(f"  waiting           {self.waiting:>10,}   (beyond --limit or the "
                         "CPU sample)")
        for s in self.stages:
            exact = s.recompute == s.recompute_at_most
            answers = f"{s.recompute:,}" if exact else f"{s.recompute:,}-{s.recompute_at_most:,}"
            tokens = (f"{s.prompt_tokens:,}" if exact
                      else f"{s.prompt_tokens:,}-{s.prompt_tokens_at_most:,}")
            lines += [f"  {s.stage:<17} {answers:>10} model answers, {s.reuse:,} stored reused",
                      f"    prompt tokens   {tokens:>10}   ({_hours(s.gpu_hours())} GPU-hours at "
                      f"{s.tokens_per_second:,.0f} tokens/s, {s.rate_source})"]
        lines.append(f"  fingerprint       {self.fingerprint}")
        return "\n".join(lines)


def _hours(hours: float) -> str:
    """GPU-hours for a person: "~1.25", "~0.003", "<0.001", "0"."""
    if hours <= 0:
        return "0"
    return "<0.001" if hours < 0.001 else f"~{hours:.3g}" if hours < 1 else f"~{hours:,.2f}"


def dry_run(config: PipelineConfig, spark: SparkSession | None = None,
            tokens_per_second: float | None = None) -> DryRun:
    """Plan a run of `config` without writing or calling a model.

    `tokens_per_second` is the prompt-token throughput of one GPU used for
    the GPU-hour figures. Without it, each model stage uses the throughput
    its engines reached in the earlier runs recorded in the metrics table
    (prompt tokens per second of generation, see `stages.model_usage`), or
    `DEFAULT_PROMPT_TOKENS_PER_SECOND` where none is recorded.
    Raises `ConfigError` as a run would (e.g. a session without Delta).
    """
    spark = spark or session_for(config)
    config, fp, work = plan_work(spark, config)
    try:
        pending = work.pending
        table = RefinedTable(spark, config.output)
        existing = stored = None
        if table.exists():
            existing = table.dedup_keys(pending)
            stored = table.stored_outputs()
        stages = _with_rates(_stage_plans(config, pending, existing, stored),
                             tokens_per_second, measured_rates(spark, config.metrics))
    finally:
        work.unpersist()
    rate = tokens_per_second or DEFAULT_PROMPT_TOKENS_PER_SECOND
    return DryRun(
        fingerprint=fp, documents_in=work.documents_in, new=work.new, changed=work.changed,
        refreshed=work.refreshed,
        unchanged=work.documents_in - work.waiting_count, deleted=work.deleted_count,
        waiting=work.waiting_count - work.pending_count, stages=stages,
        tokens_per_second=rate,
        tokens_per_second_source="given" if tokens_per_second else "stated default",
        batches=len(work.bounds))


def _with_rates(stages: tuple[StagePlan, ...], given: float | None,
                measured: dict[str, tuple[float, int]]) -> tuple[StagePlan, ...]:
    """Each stage with the throughput its GPU-hours are figured at: the
    given one, else the one measured by earlier runs, else the default."""
    out = []
    for s in stages:
        if given:
            s = replace(s, tokens_per_second=given, rate_source="given")
        elif s.stage in measured:
            rate, batches = measured[s.stage]
            s = replace(s, tokens_per_second=rate,
                        rate_source=f"measured by {batches:,} earlier batch(es)")
        out.append(s)
    return tuple(out)


def _stage_plans(config: PipelineConfig, pending: DataFrame, existing: DataFrame | None,
                 stored: DataFrame | None) -> tuple[StagePlan, ...]:
    """Run the stages before the first model stage, then count what the
    model stages would do (see `StagePlan`)."""
    from pyspark.sql import functions as F

    chain = chain_for(config)
    rows, models = chain.apply_prefix(pending, existing)
    if not models:
        return ()
    rows = with_reuse(rows, stored, models, dict(chain.fingerprints))
    if STATUS not in rows.columns:
        rows = rows.withColumn(STATUS, F.lit(KEPT))
    counter = _counter(config.doc_model if "prox_doc" in models else None,
                       config.chunk_model if "prox_chunk" in models else None)
    sums = (rows.select(TEXT, STATUS, *[REUSE[m] for m in models])
            .mapInPandas(counter, ", ".join(f"{c} long" for c in _COUNTS))
            .agg(*[F.sum(c).alias(c) for c in _COUNTS]).collect()[0])
    n = {c: int(sums[c] or 0) for c in _COUNTS}
    out = []
    if "prox_doc" in models:
        assert config.doc_model is not None
        out.append(StagePlan("prox_doc", config.doc_model.engine.model,
                             n["doc_reached"] - n["doc_reuse"], n["doc_reuse"], n["doc_tokens"],
                             n["doc_reached"] - n["doc_reuse"], n["doc_tokens"]))
    if "prox_chunk" in models:
        assert config.chunk_model is not None
        certain = n["chunk_certain"] - n["chunk_reuse"]
        out.append(StagePlan("prox_chunk", config.chunk_model.engine.model, certain,
                             n["chunk_reuse"], n["chunk_tokens"],
                             certain + n["chunk_unknown"] - n["chunk_unknown_reuse"],
                             n["chunk_tokens"] + n["chunk_unknown_tokens"]))
    return tuple(out)


def _counter(doc: ModelConfig | None, chunk: ModelConfig | None) -> Any:
    """The mapInPandas function counting, per partition, what the model
    stages (`doc`, `chunk`: their sections, None when not run) would do
    with their rows (the `_COUNTS` columns)."""

    def count(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        totals = dict.fromkeys(_COUNTS, 0)
        prompts = PromptCounter()
        for frame in frames:
            none = [None] * len(frame)
            doc_reuse = frame[REUSE["prox_doc"]] if doc is not None else none
            chunk_reuse = frame[REUSE["prox_chunk"]] if chunk is not None else none
            for raw, status, program, stored in zip(frame[TEXT], frame[STATUS], doc_reuse,
                                                    chunk_reuse, strict=True):
                _count_row(totals, prompts, doc, chunk, raw, status, program, stored)
        yield pd.DataFrame({k: [v] for k, v in totals.items()})

    return count


def _count_row(totals: dict[str, int], prompts: PromptCounter, doc: ModelConfig | None,
               chunk: ModelConfig | None, raw: Any, status: Any, program: Any,
               stored: Any) -> None:
    """Add one row to `totals`: whether the doc model would answer it (or
    take its stored `program`) and with how many prompt tokens, then whether
    the chunk model certainly or maybe would (`stored`: its stored output)."""
    text, _ = clean_text(raw)
    if status in (DROPPED, FAILED) or text is None:
        return
    kept: bool | None = True
    if doc is not None:
        totals["doc_reached"] += 1
        if program is not None:
            totals["doc_reuse"] += 1
            kept = run_doc_program(raw, program).status != DROPPED
        else:
            totals["doc_tokens"] += prompts.doc_tokens(
                text, doc.engine.tokenizer_name, doc.max_prompt_tokens)
            kept = None
    if chunk is None or kept is False:
        return
    reuse = stored is not None
    tokens = 0 if reuse else prompts.chunk_tokens(
        text, chunk.engine.tokenizer_name, chunk.max_prompt_tokens, chunk.max_doc_chars)
    part = "chunk" if kept else "chunk_unknown"
    totals["chunk_certain" if kept else "chunk_unknown"] += 1
    totals[f"{part}_reuse"] += reuse
    totals[f"{part}_tokens"] += tokens
