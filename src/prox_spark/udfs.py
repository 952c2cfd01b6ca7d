"""Pandas UDFs that turn a text column into ProX programs with a cached engine.

Each Python worker builds its engine once (see `engine.get_engine`) and then
sends every Arrow batch it receives to vLLM in one call. Rows that cannot be
refined -- null, empty, too large -- get an error string instead of a
program, and never fail the task.

    >>> doc = doc_program_udf(EngineConfig(model="/models/web-doc-refining-lm"))  # doctest: +SKIP
    >>> df.withColumn("doc", doc("text")).select("id", "doc.program", "doc.error")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd

from prox_spark.engine import (
    CHUNK_MAX_NEW_TOKENS,
    DOC_MAX_NEW_TOKENS,
    Engine,
    EngineConfig,
    Generation,
    get_engine,
)
from prox_spark.prompts import (
    CHUNK_MAX_TOKENS,
    DEFAULT_MAX_DOC_CHARS,
    DOC_MAX_TOKENS,
    chunk_document,
    chunk_prompt,
    doc_prompt,
)
from prox_spark.schema import CHUNK_RESULT, DOC_RESULT


def clean_text(text: Any) -> tuple[str | None, str | None]:
    """Return (usable text, None) or (None, why it cannot be refined).

    Lone surrogates (broken UTF-16 from upstream) are replaced, not fatal.
    """
    if text is None or (isinstance(text, float) and text != text):
        return None, "text is null"
    if not isinstance(text, str):
        return None, f"text is not a string but {type(text).__name__}"
    if not text.strip():
        return None, "text is empty or whitespace"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text, None


def _generate_safely(
    engine: Engine, prompts: list[str], max_new_tokens: int
) -> list[Generation]:
    """Generate for a batch; if the batch fails, retry prompt by prompt so one
    bad prompt costs one row, not the task."""
    if not prompts:
        return []
    try:
        return engine.generate(prompts, max_new_tokens)
    except Exception:
        results = []
        for prompt in prompts:
            try:
                results.extend(engine.generate([prompt], max_new_tokens))
            except Exception as exc:
                results.append(Generation(None, f"generation failed: {exc}"))
        return results


def _program_text(gen: Generation) -> str | None:
    # Llama-style models start their answer with a word-initial "▁", which
    # decodes as a leading space; programs are stored without it.
    return None if gen.text is None else gen.text.strip()


def doc_programs(
    texts: Sequence[Any],
    engine_for: Callable[[], Engine],
    *,
    max_prompt_tokens: int = DOC_MAX_TOKENS,
    max_new_tokens: int = DOC_MAX_NEW_TOKENS,
) -> tuple[list[str | None], list[str | None]]:
    """Document-level programs for `texts` (one batch): (programs, errors)."""
    programs: list[str | None] = [None] * len(texts)
    errors: list[str | None] = [None] * len(texts)
    prompts: list[str] = []
    rows: list[int] = []
    engine: Engine | None = None
    for i, raw in enumerate(texts):
        text, errors[i] = clean_text(raw)
        if text is None:
            continue
        engine = engine or engine_for()
        try:
            prompts.append(doc_prompt(text, engine.tokenizer, max_prompt_tokens))
            rows.append(i)
        except Exception as exc:
            errors[i] = f"prompt failed: {exc}"
    if engine is not None:
        for i, gen in zip(rows, _generate_safely(engine, prompts, max_new_tokens), strict=True):
            programs[i], errors[i] = _program_text(gen), gen.error
    return programs, errors


def chunk_programs(
    texts: Sequence[Any],
    engine_for: Callable[[], Engine],
    *,
    max_chunk_tokens: int = CHUNK_MAX_TOKENS,
    max_new_tokens: int = CHUNK_MAX_NEW_TOKENS,
    max_doc_chars: int = DEFAULT_MAX_DOC_CHARS,
) -> tuple[list[list[str] | None], list[str | None]]:
    """Chunk-level programs for `texts` (one batch): (per-row program lists, errors).

    A chunk whose prompt could not be answered contributes an empty program
    (no edit) and its reason to the row's error.
    """
    programs: list[list[str] | None] = [None] * len(texts)
    errors: list[str | None] = [None] * len(texts)
    prompts: list[str] = []
    owners: list[int] = []
    engine: Engine | None = None
    for i, raw in enumerate(texts):
        text, errors[i] = clean_text(raw)
        if text is None:
            continue
        if len(text) > max_doc_chars:
            errors[i] = (
                f"document of {len(text):,} characters exceeds max_doc_chars={max_doc_chars:,}"
            )
            continue
        engine = engine or engine_for()
        try:
            chunks = chunk_document(text, engine.tokenizer, max_chunk_tokens)
        except Exception as exc:
            errors[i] = f"chunking failed: {exc}"
            continue
        programs[i] = []
        prompts.extend(chunk_prompt(c) for c in chunks)
        owners.extend([i] * len(chunks))
    if engine is not None:
        for i, gen in zip(owners, _generate_safely(engine, prompts, max_new_tokens), strict=True):
            row = programs[i]
            assert row is not None
            row.append(_program_text(gen) or "")
            if gen.error is not None:
                note = f"chunk {len(row) - 1}: {gen.error}"
                errors[i] = note if errors[i] is None else f"{errors[i]}; {note}"
    return programs, errors


def doc_program_udf(
    config: EngineConfig,
    *,
    max_prompt_tokens: int = DOC_MAX_TOKENS,
    max_new_tokens: int = DOC_MAX_NEW_TOKENS,
) -> Any:
    """A non-deterministic pandas UDF: text -> struct<program, error>."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf(DOC_RESULT)  # type: ignore[call-overload]
    def prox_doc_program(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        for texts in batches:
            programs, errors = doc_programs(
                texts.tolist(),
                lambda: get_engine(config),
                max_prompt_tokens=max_prompt_tokens,
                max_new_tokens=max_new_tokens,
            )
            yield pd.DataFrame({"program": programs, "error": errors})

    return prox_doc_program.asNondeterministic()


def chunk_programs_udf(
    config: EngineConfig,
    *,
    max_chunk_tokens: int = CHUNK_MAX_TOKENS,
    max_new_tokens: int = CHUNK_MAX_NEW_TOKENS,
    max_doc_chars: int = DEFAULT_MAX_DOC_CHARS,
) -> Any:
    """A non-deterministic pandas UDF: text -> struct<programs: array<string>, error>."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf(CHUNK_RESULT)  # type: ignore[call-overload]
    def prox_chunk_programs(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        for texts in batches:
            programs, errors = chunk_programs(
                texts.tolist(),
                lambda: get_engine(config),
                max_chunk_tokens=max_chunk_tokens,
                max_new_tokens=max_new_tokens,
                max_doc_chars=max_doc_chars,
            )
            yield pd.DataFrame({"programs": programs, "error": errors})

    return prox_chunk_programs.asNondeterministic()
