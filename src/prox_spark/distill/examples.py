"""SFT examples from teacher labels: the rows every teacher writes.

Both the rule and table teachers (`annotate`) and the llm teacher
(`llm_teacher`) turn a label into rows of the SFT table with these
functions, so a row means the same whoever wrote it: one `doc` example per
document, one `chunk` example per chunk of a kept document, each program
checked by executing it (`checks`), and a document whose chunk labels would
delete all of it discarded as a whole (`finish_document`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prox_spark.distill.checks import check_calls, check_document, example_key
from prox_spark.distill.config import TeacherConfig
from prox_spark.distill.labels import split_for
from prox_spark.distill.teachers import KEEP, TeacherLabel, calls_for_chunk
from prox_spark.generation.prompts import chunk_document, chunk_prompt, doc_prompt
from prox_spark.program import ChunkPolicy
from prox_spark.schema import ddl

SFT_FIELDS = {
    "id": "string", "task": "string", "chunk_index": "int", "prompt": "string",
    "completion": "string", "teacher": "string", "teacher_output": "string",
    "valid": "boolean", "reason": "string", "discarded_calls": "array<string>",
    "split": "string", "example_key": "string",
}
SFT_SCHEMA = ddl(SFT_FIELDS)


@dataclass(frozen=True)
class LabelJob:
    """What one Spark task needs to label documents (picklable)."""

    teacher: TeacherConfig
    tokenizer: str
    doc_max_tokens: int
    chunk_max_tokens: int
    max_doc_chars: int
    tasks: tuple[str, ...]
    eval_fraction: float
    policy: ChunkPolicy
    rules: tuple[tuple[str, Mapping[str, Any]], ...] = ()


def example_row(doc_id: str, task: str, index: int | None, prompt: str | None,
                completion: str | None, job: LabelJob, raw: str | None, reason: str | None,
                discarded_calls: Sequence[str] = ()) -> dict[str, Any]:
    """One row of the SFT table (`SFT_FIELDS`): valid when there is a
    completion and no `reason`; its split is the document's."""
    valid = completion is not None and reason is None
    return {"id": doc_id, "task": task, "chunk_index": index, "prompt": prompt,
            "completion": completion, "teacher": job.teacher.kind, "teacher_output": raw,
            "valid": valid, "reason": None if valid else (reason or "no label"),
            "discarded_calls": list(discarded_calls),
            "split": split_for(doc_id, job.eval_fraction),
            "example_key": example_key(task, prompt, completion) if valid and prompt else None}


def doc_rows(doc_id: str, text: str, label: TeacherLabel, tok: Any, job: LabelJob
             ) -> list[dict[str, Any]]:
    """The document's `doc` example (none when the doc task is not asked)."""
    if "doc" not in job.tasks:
        return []
    prompt = doc_prompt(text, tok, job.doc_max_tokens)
    return [example_row(doc_id, "doc", None, prompt, label.doc, job, label.raw, label.reason)]


def label_chunks(text: str, tok: Any, job: LabelJob) -> list[str]:
    """The document cut into the student's chunks, as the chunk stage cuts
    it. Raises ValueError for a document over `max_doc_chars`."""
    if len(text) > job.max_doc_chars:
        raise ValueError(f"document of {len(text):,} characters exceeds max_doc_chars")
    return chunk_document(text, tok, job.chunk_max_tokens)


def finish_document(doc_id: str, text: str, rows: list[dict[str, Any]], job: LabelJob
                    ) -> list[dict[str, Any]]:
    """A kept document whose chunk labels would delete all of it is not a
    lesson to teach: its chunk examples are discarded with the reason."""
    programs = [r["completion"] for r in rows if r["valid"]]
    why = check_document(text, programs, job.policy) if programs else None
    if why is not None:
        for r in rows:
            if r["valid"]:
                r.update(valid=False, reason=why, example_key=None)
    return rows


def program_rows(doc_id: str, text: str, label: TeacherLabel, tok: Any, job: LabelJob
                 ) -> list[dict[str, Any]]:
    """Chunk examples from doc-level calls (rules and table teachers)."""
    if "chunk" not in job.tasks or label.doc != KEEP:
        return []
    try:
        chunks = label_chunks(text, tok, job)
    except Exception as exc:
        return [example_row(doc_id, "chunk", None, None, None, job, label.raw,
                            f"chunking failed: {exc}")]
    rows = []
    for k, chunk in enumerate(chunks):
        prompt = chunk_prompt(chunk)
        if label.calls is None:
            rows.append(example_row(doc_id, "chunk", k, prompt, None, job, label.raw,
                                    label.reason))
            continue
        program = calls_for_chunk(chunk, label.calls)
        checked = check_calls(chunk, program)
        rows.append(example_row(doc_id, "chunk", k, prompt, checked.program, job, program,
                                checked.reason, checked.discarded_calls))
    return finish_document(doc_id, text, rows, job)


def failed_rows(ids: Sequence[str], job: LabelJob, exc: BaseException) -> list[dict[str, Any]]:
    """One invalid `doc` row per document of a batch that could not be
    labelled, with the error as its reason."""
    return [example_row(i, "doc", None, None, None, job, None,
                        f"labelling failed: {type(exc).__name__}: {exc}"[:300]) for i in ids]
