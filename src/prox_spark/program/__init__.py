"""The ProX program language: parse model output safely and apply it.

Pure Python, no Spark. Programs are data: they are parsed, never executed.

    >>> from prox_spark.program import run_chunk_program
    >>> doc = "Home | About\\n" + "A real sentence with enough words to be kept here. " * 3
    >>> run_chunk_program(doc, "remove_lines(line_start=0, line_end=0)").status
    'edited'
"""

from __future__ import annotations

from prox_spark.program.calls import (
    KNOWN_FUNCTIONS,
    Call,
    DropDoc,
    KeepChunk,
    KeepDoc,
    Normalize,
    RemoveLines,
    quote,
)
from prox_spark.program.combine import refine_document
from prox_spark.program.interpreter import run_chunk_program, run_doc_program
from prox_spark.program.parser import ParsedProgram, ProgramError, parse_program
from prox_spark.program.policy import DEFAULT_CHUNK_POLICY, ChunkPolicy
from prox_spark.program.results import (
    CORPUS_STATUSES,
    DROPPED,
    EDITED,
    FAILED,
    KEPT,
    REVERTED,
    STATUSES,
    ProgramResult,
    Status,
    decide_status,
)

__all__ = [
    "CORPUS_STATUSES",
    "DEFAULT_CHUNK_POLICY",
    "DROPPED",
    "EDITED",
    "FAILED",
    "KEPT",
    "KNOWN_FUNCTIONS",
    "REVERTED",
    "STATUSES",
    "Call",
    "ChunkPolicy",
    "DropDoc",
    "KeepChunk",
    "KeepDoc",
    "Normalize",
    "ParsedProgram",
    "ProgramError",
    "ProgramResult",
    "RemoveLines",
    "Status",
    "decide_status",
    "parse_program",
    "quote",
    "refine_document",
    "run_chunk_program",
    "run_doc_program",
]
