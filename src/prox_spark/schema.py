"""Every column layout of the project, written once.

Plain Python (no Spark): DDL strings are built from ordered name -> type
mappings, so the refined table, the `rule_edits` struct and each UDF's
result struct are defined here and imported everywhere else.

    >>> ddl({"program": "string", "error": "string"})
    'program string, error string'
    >>> list(columns("a int, b struct<x:int,y:int>"))
    ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Mapping

# Working columns the stages read and write.
ID = "id"
TEXT = "text"
# Why a source record could not be read (set by `sources`, null for good rows).
SOURCE_ERROR = "source_error"
STATUS = "status"
DOC_PROGRAM = "doc_program"
DOC_ERROR = "doc_error"
DOC_STATUS = "doc_status"
DOC_FAILURE = "doc_failure"
DOC_TRUNCATED = "doc_truncated"
CHUNK_PROGRAMS = "chunk_programs"
CHUNK_ERROR = "chunk_error"
CHUNK_FAILURE = "chunk_failure"
CHUNK_TRUNCATED = "chunk_truncated"
DROP_REASON = "drop_reason"
TRUNCATED = "truncated"
ATTEMPTS = "attempts"
REFINED_TEXT = "refined_text"
RULE_EDITS = "rule_edits"
RULE_ERROR = "rule_error"
DUPLICATE_OF = "duplicate_of"
DEDUP_HASH = "dedup_hash"
MINHASH = "minhash"
DOC_REUSED = "doc_reused"
CHUNK_REUSED = "chunk_reused"
STAGE_FINGERPRINTS = "stage_fingerprints"
STAGE_INPUTS = "stage_inputs"
REUSED = "reused"


def ddl(fields: Mapping[str, str]) -> str:
    """`name type, ...` for Spark (UDF return types, table schemas)."""
    return ", ".join(f"{name} {kind}" for name, kind in fields.items())


def columns(schema: str) -> dict[str, str]:
    """Top-level "name type" pairs of a DDL schema string (types may nest commas)."""
    out: dict[str, str] = {}
    depth, start = 0, 0
    for i, ch in enumerate(schema + ","):
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            name, kind = schema[start:i].strip().split(" ", 1)
            out[name] = kind
            start = i + 1
    return out


# One entry of `rule_edits`: what a rule or dedup stage did to a document.
EDIT_FIELDS = {"stage": "string", "program": "string", "reason": "string",
               "words_removed": "int", "tokens_removed": "int"}
EDIT_TYPE = "struct<" + ",".join(f"{k}:{v}" for k, v in EDIT_FIELDS.items()) + ">"

# What the interpreter reports per document (besides the refined text).
# `drop_reason`: why a dropped or failed row is not in the corpus;
# `truncated`: a model's program was cut at its token limit.
RESULT_FIELDS = {
    STATUS: "string", DROP_REASON: "string", TRUNCATED: "boolean", "errors": "int",
    "program_errors": "array<string>",
    "lines_removed": "int", "normalizations": "int", "words_before": "int",
    "words_after": "int", "tokens_before": "int", "tokens_after": "int",
}
APPLY_RESULT = ddl({"text": "string", **RESULT_FIELDS})
RULE_RESULT = ddl({"text": "string", "program": "string", "reason": "string",
                   "changed": "boolean", "words_removed": "int", "tokens_removed": "int",
                   "error": "string"})

# The refined table, in its column order.
REFINED_TYPES = {
    ID: "string", TEXT: "string", STATUS: "string",
    DOC_PROGRAM: "string", CHUNK_PROGRAMS: "array<string>",
    **{k: v for k, v in RESULT_FIELDS.items() if k != STATUS},
    "error": "string", RULE_EDITS: f"array<{EDIT_TYPE}>",
    DUPLICATE_OF: "string", DEDUP_HASH: "string", MINHASH: "array<bigint>",
    "content_hash": "string", "fingerprint": "string", "refined_at": "timestamp",
    ATTEMPTS: "int",
    # Per-stage reuse (see `stages.reuse`): each stage's fingerprint, the
    # sha256 of the text each model stage received, and the stages whose
    # stored output this row reused instead of calling the model again.
    STAGE_FINGERPRINTS: "map<string,string>", STAGE_INPUTS: "map<string,string>",
    REUSED: "array<string>",
    # Which stored answer was cut at the token limit (the doc program; each
    # chunk program), so a reused cut answer stays counted as cut.
    DOC_TRUNCATED: "boolean", CHUNK_TRUNCATED: "array<boolean>",
}
REFINED_SCHEMA = ddl(REFINED_TYPES)
REFINED_COLUMNS = tuple(REFINED_TYPES)
