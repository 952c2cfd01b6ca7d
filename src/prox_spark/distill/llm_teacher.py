"""The `llm` teacher inside a Spark task: score documents, then write calls
or rewrites for the chunks of the documents it kept.

The teacher runs through the project's executor-local engines (`get_engine`:
one cached engine per Python worker, bound to the task's GPUs, its memory
share from the config), so a teacher that cannot start or a prompt it
cannot answer is a row with a reason, never a failed task. A model that
cannot be loaded at all is refused before any work (`check_teacher_model`),
and `annotate` refuses a run whose every answer was discarded. Its prompts are
wrapped in the teacher's own chat template when its tokenizer has one, else
in the Llama-2 chat format the refiners use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prox_spark.distill.checks import check_calls, derive_rewrite
from prox_spark.distill.config import TeacherConfig
from prox_spark.distill.examples import (
    LabelJob,
    doc_rows,
    example_row,
    finish_document,
    label_chunks,
)
from prox_spark.distill.labels import (
    calls_prompt,
    doc_label,
    parse_scores,
    rewrite_prompt,
    scoring_prompt,
)
from prox_spark.distill.teachers import KEEP, TeacherLabel
from prox_spark.errors import ConfigError, LabelError, first_line
from prox_spark.generation.batch import generate_safely
from prox_spark.generation.engine import Engine, Generation, get_engine
from prox_spark.generation.prompts import chat_prompt, chunk_prompt, prefix_within

if TYPE_CHECKING:
    import pandas as pd

# Files one of which a loadable model directory holds (its weights).
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")


def check_teacher_model(teacher: TeacherConfig) -> None:
    """Raise ConfigError naming `distill.teacher.model` when the model cannot
    be loaded: a local path (one that exists, or starts with `/`, `.` or
    `~`, or is not of the hub's `owner/name` form) must be a directory with
    `config.json` and weights; a hub id must resolve (offline: be cached).
    Checked before anything is read, so a wrong path costs no engine start."""
    from transformers import AutoConfig  # heavy (torch): kept out of import time

    model = str(teacher.model)
    path = Path(model).expanduser()
    local = path.exists() or model.startswith(("/", ".", "~")) or model.count("/") != 1
    where = "distill.teacher.model"
    if local and not path.is_dir():
        raise ConfigError(where, f"{model} does not exist" if not path.exists()
                          else f"{model} is a file, not a model directory")
    if local and not (path / "config.json").is_file():
        raise ConfigError(where, f"{model} is not a model directory (no config.json)")
    if local and not any(any(path.glob(p)) for p in _WEIGHTS):
        raise ConfigError(where, f"{model} holds no weights ({', '.join(_WEIGHTS)})")
    try:
        AutoConfig.from_pretrained(str(path) if local else model)
    except Exception as exc:
        raise ConfigError(where, f"{model} cannot be loaded: {first_line(exc, 200)}") from None


def teacher_prompt(user: str, tokenizer: Any) -> str:
    """`user` as the teacher's chat turn, without a leading BOS (the engine
    adds exactly one)."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": user}],
                                             tokenize=False, add_generation_prompt=True)
        bos = getattr(tokenizer, "bos_token", None)
        return text[len(bos):] if bos and text.startswith(bos) else text
    return chat_prompt(user)


def _scoring_prompt(text: str, engine: Engine, job: LabelJob) -> str:
    """The scoring prompt, the document cut so that prompt and answer fit
    the teacher's context."""
    frame = len(engine.encode_one(teacher_prompt(scoring_prompt(""), engine.tokenizer)))
    budget = job.teacher.max_model_len - job.teacher.doc_max_new_tokens - frame - 8
    return teacher_prompt(scoring_prompt(prefix_within(text, engine.tokenizer, budget)),
                          engine.tokenizer)


def _generate(engine: Engine, prompts: list[str], max_new_tokens: int) -> list[Generation]:
    return generate_safely(engine, prompts, max_new_tokens)


def _answer(gen: Generation) -> tuple[str | None, str | None]:
    """(answer text, why there is none)."""
    if gen.error is not None:
        return None, f"teacher failed: {gen.error}"[:300]
    text = gen.text
    # Llama-style models start an answer with a word-initial "▁", which
    # decodes as one leading space; it is not part of the answer.
    if text is not None and text.startswith(" "):
        text = text[1:]
    return text, None


def label_llm(frame: pd.DataFrame, tok: Any, job: LabelJob) -> list[dict[str, Any]]:
    """SFT rows for one batch of documents (`id`, `text`) from an llm teacher."""
    ids, texts = list(frame["id"]), list(frame["text"])
    try:
        engine = get_engine(job.teacher.engine())
    except Exception as exc:
        why = f"teacher engine failed to start: {exc}"[:300]
        return [example_row(i, "doc", None, None, None, job, None, why) for i in ids]
    labels: list[TeacherLabel] = []
    if "doc" in job.tasks:
        prompts = [_scoring_prompt(t, engine, job) for t in texts]
        for gen in _generate(engine, prompts, job.teacher.doc_max_new_tokens):
            answer, why = _answer(gen)
            try:
                if why is not None:
                    raise LabelError(why)
                edu, fmt = parse_scores(answer)
                labels.append(TeacherLabel(doc_label(edu, fmt), None, answer or ""))
            except LabelError as exc:
                labels.append(TeacherLabel(None, None, answer or "", exc.reason))
    else:
        labels = [TeacherLabel(KEEP, None, "") for _ in texts]
    rows: list[dict[str, Any]] = []
    for doc_id, text, label in zip(ids, texts, labels, strict=True):
        rows += doc_rows(doc_id, text, label, tok, job)
    if "chunk" in job.tasks:
        kept = [(i, t, lab) for i, t, lab in zip(ids, texts, labels, strict=True)
                if lab.doc == KEEP]
        rows += _chunk_rows(kept, tok, job, engine)
    return rows


def _chunk_rows(kept: list[tuple[str, str, Any]], tok: Any, job: LabelJob, engine: Engine
                ) -> list[dict[str, Any]]:
    """Calls (few-shot) or rewrites for every chunk of the kept documents, in
    one engine call, each checked by executing it."""
    ask = calls_prompt if job.teacher.chunk_mode == "calls" else rewrite_prompt
    check = check_calls if job.teacher.chunk_mode == "calls" else derive_rewrite
    plan: list[tuple[str, str, list[str]]] = []
    rows: list[dict[str, Any]] = []
    for doc_id, text, label in kept:
        try:
            plan.append((doc_id, text, label_chunks(text, tok, job)))
        except Exception as exc:
            rows.append(example_row(doc_id, "chunk", None, None, None, job, label.raw,
                                    f"chunking failed: {exc}"))
    prompts = [teacher_prompt(ask(c), engine.tokenizer) for _, _, cs in plan for c in cs]
    answers = iter(_generate(engine, prompts, job.teacher.chunk_max_new_tokens))
    for doc_id, text, chunks in plan:
        chunk_rows = []
        for k, chunk in enumerate(chunks):
            answer, why = _answer(next(answers))
            if why is None and answer is not None and not answer.strip():
                why = "empty answer"
            checked = check(chunk, answer) if why is None else None
            chunk_rows.append(example_row(
                doc_id, "chunk", k, chunk_prompt(chunk),
                None if checked is None else checked.program, job, answer,
                why if checked is None else checked.reason,
                () if checked is None else checked.discarded_calls))
        rows += finish_document(doc_id, text, chunk_rows, job)
    return rows

