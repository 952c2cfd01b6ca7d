"""The model stages: document-level keep/drop, chunk-level line edits, or
both in one pass (`ProxRefiner`, what the job runs when `prox_doc` is
followed by `prox_chunk`).

A pass is one `mapInArrow` (see `stages.model_map`). Run together, both
engines live in the same Python worker and the chunk model is only asked
about documents the doc model kept; each batch's prompts of both kinds are
prepared while the engines work on the batch before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from prox_spark.generation.batch import (
    Prepared,
    clean_text,
    finish_chunks,
    finish_doc,
    prefetched,
    prepare_chunks,
    prepare_doc,
)
from prox_spark.generation.engine import (
    CHUNK_MAX_NEW_TOKENS,
    DOC_MAX_NEW_TOKENS,
    Engine,
    EngineConfig,
    EngineStartError,
    bind_task_gpus,
    generate_seconds,
    get_engine,
    prompt_tokens_sent,
    record_event,
)
from prox_spark.generation.prompts import CHUNK_MAX_TOKENS, DEFAULT_MAX_DOC_CHARS, DOC_MAX_TOKENS
from prox_spark.program import DEFAULT_CHUNK_POLICY, DROPPED, FAILED, ChunkPolicy
from prox_spark.resources import TaskResources
from prox_spark.schema import (
    CHUNK_ERROR,
    CHUNK_FAILURE,
    CHUNK_PROGRAMS,
    CHUNK_REUSED,
    CHUNK_TRUNCATED,
    DOC_ERROR,
    DOC_FAILURE,
    DOC_PROGRAM,
    DOC_REUSED,
    DOC_STATUS,
    DOC_TRUNCATED,
    STATUS,
    TEXT,
)
from prox_spark.stages.apply import ProgramApplier, doc_statuses
from prox_spark.stages.base import BuildContext, Stage
from prox_spark.stages.model_map import append_columns, map_batches, task_info
from prox_spark.stages.model_usage import usage_accumulator
from prox_spark.stages.reuse import REUSE, REUSE_CUT

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

ENGINE_TOKENIZER = "engine"
_T = TypeVar("_T")


DOC_COLUMNS = {DOC_PROGRAM: "string", DOC_ERROR: "string", DOC_STATUS: "string",
               DOC_FAILURE: "string", DOC_TRUNCATED: "boolean", DOC_REUSED: "boolean"}
CHUNK_COLUMNS = {CHUNK_PROGRAMS: "array<string>", CHUNK_ERROR: "string",
                 CHUNK_FAILURE: "string", CHUNK_TRUNCATED: "array<boolean>",
                 CHUNK_REUSED: "boolean"}


@dataclass(frozen=True)
class DocSettings:
    """What a doc pass needs in the worker (not the whole stage)."""

    engine: EngineConfig
    max_prompt_tokens: int
    max_new_tokens: int


@dataclass(frozen=True)
class ChunkSettings:
    """What a chunk pass needs in the worker (not the whole stage)."""

    engine: EngineConfig
    max_prompt_tokens: int
    max_new_tokens: int
    max_doc_chars: int


def _model_pass(doc: DocRefiner | None, chunk: ChunkRefiner | None,
                skip: tuple[str, ...], usage: Any = None
                ) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The Arrow-batch function of a model pass (runs in the worker): bind
    the task's GPUs, skip rows an earlier stage dropped (no prompt, no
    error), take stored output where `stages.reuse` offers it (no prompt),
    prepare the next batch while the engines run this one. `usage`: an
    accumulator of `stages.model_usage.ModelUsage` (None: not measured)."""
    stage = "prox_doc+prox_chunk" if doc and chunk else "prox_doc" if doc else "prox_chunk"
    doc_settings = DocSettings(doc.engine, doc.max_prompt_tokens, doc.max_new_tokens) \
        if doc else None
    chunk_settings = ChunkSettings(chunk.engine, chunk.max_prompt_tokens, chunk.max_new_tokens,
                                   chunk.max_doc_chars) if chunk else None
    added = {**(DOC_COLUMNS if doc else {}), **(CHUNK_COLUMNS if chunk else {})}

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        gpus, failure = _bind(stage)
        doc_engine = _engine_for(doc_settings.engine, failure) if doc_settings else None
        chunk_engine = _engine_for(chunk_settings.engine, failure) if chunk_settings else None

        def prepare(batch: pa.RecordBatch) -> tuple[Prepared | None, Prepared | None]:
            texts = _texts(batch, *skip)
            d = prepare_doc(_unless(_reused(batch, "prox_doc"), texts), doc_engine,
                            max_prompt_tokens=doc_settings.max_prompt_tokens) \
                if doc_settings and doc_engine else None
            # In a fused pass the chunk prompts wait for the doc programs: most
            # documents are dropped (ProX kept 19.0B of 62.5B tokens), and
            # their chunk prompts would be host work for nothing.
            c = _prepare_chunk_pass(batch, texts, chunk_settings, chunk_engine) \
                if not doc_settings else None
            return d, c

        def finish(batch: pa.RecordBatch, preps: tuple[Prepared | None, Prepared | None]
                   ) -> pa.RecordBatch:
            d, c = preps
            skipped = _skipped(batch, *skip)
            values: dict[str, list[Any]] = {}
            if d is not None and doc_settings:
                texts = _texts(batch, *skip)
                skipped = _finish_doc_pass(batch, d, doc_settings, skipped, texts, usage,
                                           values)
                c = _prepare_chunk_pass(batch, _unless(skipped, texts), chunk_settings,
                                        chunk_engine)
            if c is not None and chunk_settings:
                _finish_chunk_pass(batch, c.without(skipped), chunk_settings, skipped, usage,
                                   values)
            return append_columns(batch, {name: (values[name], kind)
                                          for name, kind in added.items()})

        record_event("model_task", model_stage=stage, gpus=gpus, **task_info())
        started, generating = time.perf_counter(), generate_seconds()
        yield from prefetched(batches, prepare, finish)
        record_event("model_task_done", model_stage=stage, **task_info(),
                     seconds=time.perf_counter() - started,
                     generate_seconds=generate_seconds() - generating)

    return run


def _prepare_chunk_pass(batch: pa.RecordBatch, texts: list[Any],
                        settings: ChunkSettings | None,
                        engine: Callable[[], Engine] | None) -> Prepared | None:
    """Chunk prompts of the rows of `texts` that are not null and take no
    stored chunk output (None when the pass has no chunk model)."""
    if settings is None or engine is None:
        return None
    return prepare_chunks(_unless(_reused(batch, "prox_chunk"), texts), engine,
                          max_prompt_tokens=settings.max_prompt_tokens,
                          max_doc_chars=settings.max_doc_chars)


def _measured(usage: Any, doc: bool, generate: Callable[[], _T]) -> _T:
    """`generate()`, adding the prompt tokens it sent and its seconds of
    generation to `usage` (the doc or the chunk model's share) when given."""
    sent, seconds = prompt_tokens_sent(), generate_seconds()
    out = generate()
    if usage is not None:
        used = [prompt_tokens_sent() - sent, generate_seconds() - seconds]
        usage.add([*used, 0.0, 0.0] if doc else [0.0, 0.0, *used])
    return out


def _finish_doc_pass(batch: pa.RecordBatch, d: Prepared, settings: DocSettings,
                     skipped: list[bool], texts: list[Any], usage: Any,
                     values: dict[str, list[Any]]) -> list[bool]:
    """The doc columns of a batch into `values` (asked or stored); the rows
    the chunk pass skips (those skipped, dropped or failed)."""
    programs, errors = _measured(usage, True, lambda: finish_doc(d, settings.max_new_tokens))
    reused = _take_stored(batch, "prox_doc", skipped, d, programs, errors)
    statuses = doc_statuses(texts, programs, d.failures)
    values.update({DOC_PROGRAM: programs, DOC_ERROR: _unless(skipped, errors),
                   DOC_STATUS: statuses,
                   DOC_FAILURE: _unless(skipped, d.failures),
                   DOC_TRUNCATED: _unless(skipped, d.truncated),
                   DOC_REUSED: reused})
    return [s or st in (DROPPED, FAILED) for s, st in zip(skipped, statuses, strict=True)]


def _finish_chunk_pass(batch: pa.RecordBatch, c: Prepared, settings: ChunkSettings,
                       skipped: list[bool], usage: Any, values: dict[str, list[Any]]) -> None:
    """The chunk columns of a batch into `values` (asked or stored)."""
    programs, errors = _measured(usage, False,
                                 lambda: finish_chunks(c, settings.max_new_tokens))
    reused = _take_stored(batch, "prox_chunk", skipped, c, programs, errors)
    values.update({CHUNK_PROGRAMS: programs, CHUNK_ERROR: _unless(skipped, errors),
                   CHUNK_FAILURE: _unless(skipped, c.failures),
                   CHUNK_TRUNCATED: _unless(skipped, c.truncated),
                   CHUNK_REUSED: reused})


def _unless(skipped: list[bool], values: list[Any]) -> list[Any]:
    return [None if s else v for s, v in zip(skipped, values, strict=True)]


def _stored(batch: pa.RecordBatch, stage: str) -> list[Any]:
    """The stored output each row may take for `stage` (None: ask the model)."""
    name = REUSE[stage]
    if name not in batch.schema.names:
        return [None] * batch.num_rows
    return batch.column(name).to_pylist()


def _reused(batch: pa.RecordBatch, stage: str) -> list[bool]:
    return [v is not None for v in _stored(batch, stage)]


def _take_stored(batch: pa.RecordBatch, stage: str, skipped: list[bool], prep: Prepared,
                 programs: list[Any], errors: list[Any]) -> list[bool | None]:
    """Fill in the stored output of the rows that take it (in place: no
    error, no failure, not truncated). Per row: True (took it), False (the
    model was asked), None (the stage skipped the row, or its text is null
    or blank: nothing to ask)."""
    taken: list[bool | None] = []
    texts = batch.column(TEXT).to_pylist()
    name = REUSE_CUT[stage]
    cuts = batch.column(name).to_pylist() if name in batch.schema.names \
        else [None] * batch.num_rows
    for i, value in enumerate(_stored(batch, stage)):
        if skipped[i] or clean_text(texts[i])[0] is None:
            taken.append(None)
            continue
        if value is not None:
            programs[i], errors[i], prep.failures[i] = value, None, None
            prep.truncated[i] = _stored_cut(cuts[i], stage, len(value))
        taken.append(value is not None)
    return taken


def _stored_cut(cut: Any, stage: str, programs: int) -> Any:
    """The stored output's cut at the token limit, as the interpreter takes
    it: one bool for the doc program, one per chunk program (unknown: not
    cut, the rule for rows stored before cuts were)."""
    if stage == "prox_doc":
        return bool(cut)
    flags = [bool(c) for c in (cut or [])]
    return (flags + [False] * programs)[:programs]


def _bind(stage: str) -> tuple[list[str], Exception | None]:
    """Bind this task to its GPUs before anything touches CUDA."""
    try:
        return bind_task_gpus(), None
    except EngineStartError as exc:
        return [], exc


def _engine_for(config: EngineConfig, failure: Exception | None) -> Callable[[], Engine]:
    """The engine (or why it cannot start), fetched on first need."""

    def engine_for() -> Engine:
        if failure is not None:
            raise failure
        return get_engine(config)

    return engine_for


def _skipped(batch: pa.RecordBatch, *status_columns: str) -> list[bool]:
    """Rows an earlier stage dropped, or a model pass could not refine: the
    model is not asked about them."""
    skipped = [False] * batch.num_rows
    for name in status_columns:
        if name in batch.schema.names:
            values = batch.column(name).to_pylist()
            skipped = [s or v in (DROPPED, FAILED) for s, v in zip(skipped, values,
                                                                    strict=True)]
    return skipped


def _texts(batch: pa.RecordBatch, *status_columns: str) -> list[Any]:
    texts = batch.column(TEXT).to_pylist()
    return [None if s else t for s, t in zip(_skipped(batch, *status_columns), texts,
                                              strict=True)]


def _run_pass(df: Any, doc: DocRefiner | None, chunk: ChunkRefiner | None,
              resources: TaskResources | None) -> Any:
    skip = tuple(c for c in (STATUS, DOC_STATUS) if c in df.columns)
    added = {**(DOC_COLUMNS if doc else {}), **(CHUNK_COLUMNS if chunk else {})}
    pool = "+".join(f"{name}:{stage.engine.model}" for name, stage in
                    (("prox_doc", doc), ("prox_chunk", chunk)) if stage is not None)
    usage = usage_accumulator(df.sparkSession)
    return map_batches(df, _model_pass(doc, chunk, skip, usage), added, pool=pool,
                       resources=resources)


@dataclass
class DocRefiner(Stage):
    """Generate each document's keep/drop program and decide.

    Adds `doc_program`, `doc_error`, `doc_status` ("kept" / "dropped" /
    "failed"), `doc_failure` (why the model gave no answer: a kind such as
    "engine_start") and `doc_truncated` (the answer hit `max_new_tokens`).
    Rows an earlier stage dropped are not sent and get no error. With
    `resources`, runs on GPU task slots (see `stages.model_map`).

    Example::

        kept = df.transform(DocRefiner(EngineConfig(model="gair-prox/web-doc-refining-lm")))
    """

    engine: EngineConfig
    max_prompt_tokens: int = DOC_MAX_TOKENS
    max_new_tokens: int = DOC_MAX_NEW_TOKENS
    resources: TaskResources | None = None

    stage_name: ClassVar[str] = "prox_doc"
    config_section: ClassVar[str | None] = "doc_model"
    adds: ClassVar[tuple[str, ...]] = tuple(DOC_COLUMNS)
    # 2: a long document is cut after as many of its own tokens as the
    # prompt leaves (its prompt is one token longer than in version 1's).
    output_version: ClassVar[int] = 2

    @classmethod
    def build(cls, params: dict[str, Any], context: BuildContext) -> DocRefiner:
        m = context.doc_model
        return cls(m.engine, max_prompt_tokens=m.max_prompt_tokens,
                   max_new_tokens=m.max_new_tokens, resources=m.resources)

    def _transform(self, df: DataFrame) -> DataFrame:
        return _run_pass(df, self, None, self.resources)


@dataclass
class ChunkRefiner(Stage):
    """Generate chunk programs for documents not dropped, then apply everything.

    Skips rows whose `doc_status` or `status` is "dropped" or "failed" (no
    model call), adds `chunk_programs`, `chunk_error`, `chunk_failure` and
    `chunk_truncated` (one bool per chunk program), then runs `ProgramApplier` with
    `policy` to add `refined_text` and the result columns. With
    `resources`, the model runs on GPU task slots and the interpreter on CPU
    ones. `tokenizer` counts tokens, as in every stage: "engine" (the
    default) uses the engine's, None counts none.
    """

    engine: EngineConfig
    policy: ChunkPolicy = field(default_factory=lambda: DEFAULT_CHUNK_POLICY)
    max_prompt_tokens: int = CHUNK_MAX_TOKENS
    max_new_tokens: int = CHUNK_MAX_NEW_TOKENS
    max_doc_chars: int = DEFAULT_MAX_DOC_CHARS
    tokenizer: str | None = ENGINE_TOKENIZER
    resources: TaskResources | None = None

    stage_name: ClassVar[str] = "prox_chunk"
    config_section: ClassVar[str | None] = "chunk_model"
    adds: ClassVar[tuple[str, ...]] = (*CHUNK_COLUMNS, *ProgramApplier.adds)

    @classmethod
    def build(cls, params: dict[str, Any], context: BuildContext) -> ChunkRefiner:
        m = context.chunk_model
        return cls(m.engine, policy=context.policy or DEFAULT_CHUNK_POLICY,
                   max_prompt_tokens=m.max_prompt_tokens, max_new_tokens=m.max_new_tokens,
                   max_doc_chars=m.max_doc_chars, resources=m.resources)

    def _transform(self, df: DataFrame) -> DataFrame:
        return self.apply(_run_pass(df, None, self, self.resources))

    def apply(self, df: DataFrame) -> DataFrame:
        """The interpreter over the generated programs (no model)."""
        tokenizer = self.engine.tokenizer_name if self.tokenizer == ENGINE_TOKENIZER \
            else self.tokenizer
        return df.transform(ProgramApplier(self.policy, tokenizer=tokenizer))


@dataclass
class ProxRefiner(Stage):
    """`DocRefiner` then `ChunkRefiner` in one pass over the data: both
    engines in each model task's worker, the chunk model asked only about
    documents the doc model kept, one GPU request for both (the two
    stages' `resources` must agree). What the job runs for `prox_doc`
    followed by `prox_chunk`.

    Example::

        df.transform(ProxRefiner(DocRefiner(doc_engine), ChunkRefiner(chunk_engine)))
    """

    doc: DocRefiner
    chunk: ChunkRefiner

    adds: ClassVar[tuple[str, ...]] = (*DocRefiner.adds, *ChunkRefiner.adds)

    def __post_init__(self) -> None:
        if self.doc.resources != self.chunk.resources:
            raise ValueError("ProxRefiner: the doc and chunk stages ask for different "
                             f"resources ({self.doc.resources} vs {self.chunk.resources})")

    def _transform(self, df: DataFrame) -> DataFrame:
        return self.chunk.apply(_run_pass(df, self.doc, self.chunk, self.doc.resources))


def fuse_model_stages(stages: list[Stage]) -> list[Stage]:
    """`DocRefiner` directly followed by `ChunkRefiner` (same resources)
    becomes one `ProxRefiner`: one pass, one worker pool, one GPU request."""
    out: list[Stage] = []
    for stage in stages:
        last = out[-1] if out else None
        if isinstance(stage, ChunkRefiner) and isinstance(last, DocRefiner) \
                and last.resources == stage.resources:
            out[-1] = ProxRefiner(last, stage)
        else:
            out.append(stage)
    return out


def model_stage_names(stage: Stage) -> tuple[str, ...]:
    """The model stages (YAML names) a built stage runs: what per-stage
    reuse (`stages.reuse`) prepares before it; () for any other stage."""
    if isinstance(stage, ProxRefiner):
        return ("prox_doc", "prox_chunk")
    if isinstance(stage, DocRefiner):
        return ("prox_doc",)
    if isinstance(stage, ChunkRefiner):
        return ("prox_chunk",)
    return ()
