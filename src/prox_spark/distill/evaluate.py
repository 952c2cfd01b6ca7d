"""Score a student refiner against its teacher on the eval split, on Spark.

The student answers the stored prompts through the project's own engine path
(`engine.get_engine`, `Engine.generate`: greedy, one leading BOS, prompts
that do not fit the context refused per row) inside one `mapInArrow`, as the
refining stages run it, so evaluation sees what production sees. A row whose
generation fails keeps no output (it counts as keep / no edit and against
`parse_rate`), never a failed task. Scoring is `scores.doc_scores` and
`scores.chunk_scores` on the driver: the eval split is a few thousand rows.

    >>> evaluation = evaluate_student(spark, spark.read.format("delta").load(sft),
    ...                               EngineConfig(model="/models/my-refiner"))  # doctest: +SKIP
    >>> print(evaluation.summary())                                              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from prox_spark.distill.checks import chunk_of_prompt
from prox_spark.distill.labels import EVAL
from prox_spark.distill.scores import (
    PAPER_CHUNK_F1,
    PAPER_DOC_F1,
    ChunkScores,
    DocScores,
    chunk_scores,
    doc_scores,
)
from prox_spark.generation.batch import generate_safely, program_text
from prox_spark.generation.engine import (
    CHUNK_MAX_NEW_TOKENS,
    DOC_MAX_NEW_TOKENS,
    EngineConfig,
    Generation,
    bind_task_gpus,
    get_engine,
)
from prox_spark.resources import TaskResources
from prox_spark.stages.model_map import append_columns, map_batches

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

DOC_TASK = "doc"
CHUNK_TASK = "chunk"
OUTPUT = "student_output"
ERROR = "student_error"
_COLUMNS = ("id", "task", "prompt", "completion")


@dataclass(frozen=True)
class Evaluation:
    """A student's scores against its teacher: `doc` / `chunk` (None when the
    eval split has no example of that task), the student `model`, and the
    number of eval `examples` scored."""

    doc: DocScores | None
    chunk: ChunkScores | None
    model: str
    examples: int

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for the model card and the run report)."""
        return asdict(self)

    def summary(self) -> str:
        """A few printable lines, each F1 next to the paper's figure for the
        0.3B refiners (doc 82.6, chunk 75.2)."""
        out = [f"student {self.model} on {self.examples} eval examples"]
        if self.doc is not None:
            d = self.doc
            out.append(f"doc   (n={d.n}): drop_doc precision {d.precision:.3f} recall "
                       f"{d.recall:.3f} F1 {d.f1:.3f} (paper {PAPER_DOC_F1:.3f}), accuracy "
                       f"{d.accuracy:.3f}, parse rate {d.parse_rate:.3f}")
        if self.chunk is not None:
            c = self.chunk
            out.append(f"chunk (n={c.n}): removed lines precision {c.line_precision:.3f} "
                       f"recall {c.line_recall:.3f} F1 {c.line_f1:.3f} (paper "
                       f"{PAPER_CHUNK_F1:.3f}), normalize F1 {c.normalize_f1:.3f}, exact "
                       f"match {c.exact_match:.3f}, parse rate {c.parse_rate:.3f}")
        return "\n".join(out)


def _answer_batches(config: EngineConfig, doc_max_new_tokens: int, chunk_max_new_tokens: int
                    ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The Arrow-batch function (runs in the worker): each row's greedy
    answer and, when there is none, why."""
    budgets = {DOC_TASK: doc_max_new_tokens, CHUNK_TASK: chunk_max_new_tokens}

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        try:
            bind_task_gpus()
            failure: Exception | None = None
        except Exception as exc:
            failure = exc
        for batch in batches:
            tasks = batch.column("task").to_pylist()
            prompts = batch.column("prompt").to_pylist()
            outputs: list[str | None] = [None] * batch.num_rows
            errors: list[str | None] = [None] * batch.num_rows
            try:
                if failure is not None:
                    raise failure
                engine = get_engine(config)
            except Exception as exc:
                errors = [f"engine failed to start: {exc}"] * batch.num_rows
                yield append_columns(batch, {OUTPUT: (outputs, "string"),
                                             ERROR: (errors, "string")})
                continue
            for task, budget in budgets.items():
                rows = [i for i, t in enumerate(tasks) if t == task]
                ids: list[list[int]] = []
                sent: list[int] = []
                for i in rows:
                    if not isinstance(prompts[i], str) or not prompts[i]:
                        errors[i] = "empty prompt"
                        continue
                    try:
                        ids.append(engine.encode_one(prompts[i]))
                        sent.append(i)
                    except Exception as exc:
                        errors[i] = f"prompt failed: {exc}"
                gens: list[Generation] = generate_safely(engine, ids, budget)
                for i, gen in zip(sent, gens, strict=True):
                    outputs[i], errors[i] = program_text(gen), gen.error
            yield append_columns(batch, {OUTPUT: (outputs, "string"), ERROR: (errors, "string")})

    return run


def student_outputs(examples: DataFrame, engine: EngineConfig, *,
                    doc_max_new_tokens: int = DOC_MAX_NEW_TOKENS,
                    chunk_max_new_tokens: int = CHUNK_MAX_NEW_TOKENS,
                    resources: TaskResources | None = None) -> DataFrame:
    """The valid eval rows of an SFT table (id, task, prompt, completion)
    with the student's answer (`student_output`, None when generation
    failed) and `student_error`. Lazy: nothing runs until an action."""
    from pyspark.sql import functions as F

    rows = (examples.where(F.col("valid") & (F.col("split") == EVAL)
                           & F.col("task").isin(DOC_TASK, CHUNK_TASK))
            .select(*_COLUMNS))
    return map_batches(rows, _answer_batches(engine, doc_max_new_tokens, chunk_max_new_tokens),
                       {OUTPUT: "string", ERROR: "string"}, pool=f"evaluate:{engine.model}",
                       resources=resources)


def evaluate_student(spark: Any, examples: DataFrame, engine: EngineConfig, *,
                     doc_max_new_tokens: int = DOC_MAX_NEW_TOKENS,
                     chunk_max_new_tokens: int = CHUNK_MAX_NEW_TOKENS,
                     resources: TaskResources | None = None) -> Evaluation:
    """Run the student `engine` over the valid eval rows of an SFT table and
    score it against the teacher's completions.

    `examples` has the SFT table's columns (id, task, prompt, completion,
    valid, split); only rows with valid true and split "eval" count. The
    student answers each stored prompt greedily (doc: `doc_max_new_tokens`,
    chunk: `chunk_max_new_tokens` new tokens) in one Spark job. Returns doc
    and chunk scores (None for a task with no eval row). Raises ValueError
    naming the split when there is no eval row to score, or naming the row
    when a chunk row's prompt is not a chunk-level prompt. `spark` is the
    session the commands share (the rows come from `examples`); with
    `resources`, generation runs on GPU task slots (see `stages.model_map`).
    """
    rows = student_outputs(examples, engine, doc_max_new_tokens=doc_max_new_tokens,
                           chunk_max_new_tokens=chunk_max_new_tokens, resources=resources
                           ).select("id", "task", "prompt", "completion", OUTPUT).collect()
    if not rows:
        raise ValueError("evaluate: the SFT table has no eval rows (valid examples with "
                         f"split == {EVAL!r}); annotate with a larger eval fraction")
    doc = [(r.completion, r[OUTPUT]) for r in rows if r.task == DOC_TASK]
    chunk = [(_chunk_of(r), r.completion, r[OUTPUT]) for r in rows if r.task == CHUNK_TASK]
    return Evaluation(doc_scores(doc) if doc else None,
                      chunk_scores(chunk) if chunk else None, engine.model, len(rows))


def _chunk_of(row: Any) -> str:
    try:
        return chunk_of_prompt(row.prompt)
    except ValueError as exc:
        raise ValueError(f"evaluate: eval row {row.id!r} of task 'chunk': {exc}") from None
