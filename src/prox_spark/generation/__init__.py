"""Texts to ProX programs with a model: `prompts` (the exact prompts of the
released refining models), `engine` (one cached vLLM engine per Spark Python
worker) and `batch` (one batch of texts to programs, no Spark).

`prox_spark.generation` was one module before it became this package, so the
public names of `batch` stay importable from here.
"""

from __future__ import annotations

from prox_spark.generation.batch import (
    CHUNKING_FAILED,
    PROMPT_FAILED,
    TOO_LARGE,
    Prepared,
    chunk_programs,
    clean_text,
    doc_programs,
    finish_chunks,
    finish_doc,
    generate_safely,
    prefetched,
    prepare_chunks,
    prepare_doc,
    program_text,
)

__all__ = [
    "CHUNKING_FAILED",
    "PROMPT_FAILED",
    "TOO_LARGE",
    "Prepared",
    "chunk_programs",
    "clean_text",
    "doc_programs",
    "finish_chunks",
    "finish_doc",
    "generate_safely",
    "prefetched",
    "prepare_chunks",
    "prepare_doc",
    "program_text",
]
