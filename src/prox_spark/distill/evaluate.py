"""Score a student refiner against its teacher on the eval split, on Spark.

The student answers the stored prompts through the project's own engine path
(`engine.get_engine`, `Engine.generate`: greedy, one leading BOS, prompts
that do not fit the context refused per row) inside one `mapInArrow`, as the
refining stages run it, so evaluation sees what production sees. A row whose
generation fails keeps no output (it counts as keep / no edit and against
`parse_rate`), never a failed task. Scoring is `scores.doc_scores` and
`scores.chunk_scores` on the driver (the eval split is a few thousand rows),
each chunk output counted as a run applies it (`policy.max_errors`), beside
the trivial students' scores, with a verdict.

    >>> evaluation = evaluate_student(spark, spark.read.format("delta").load(sft),
    ...                               EngineConfig(model="/models/my-refiner"))  # doctest: +SKIP
    >>> print(evaluation.summary())                                              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from prox_spark.distill.checks import chunk_of_prompt
from prox_spark.distill.labels import EVAL
from prox_spark.distill.scores import (
    PAPER_CHUNK_F1,
    PAPER_DOC_F1,
    REMOVE_EVERYTHING,
    REMOVE_NOTHING,
    ChunkScores,
    DocScores,
    chunk_beats,
    chunk_scores,
    doc_beats,
    doc_scores,
    majority_decision,
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
from prox_spark.program import DEFAULT_CHUNK_POLICY, ChunkPolicy
from prox_spark.resources import TaskResources
from prox_spark.stages.model_map import append_columns, map_batches

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

DOC_TASK = "doc"
CHUNK_TASK = "chunk"
OUTPUT = "student_output"
ERROR = "student_error"
CUT = "student_truncated"
_COLUMNS = ("id", "task", "prompt", "completion")


PARSE_WARNING_BELOW = 0.9
PAPER = "paper (0.3B refiners)"


def fmt(value: Any) -> str:
    """A figure as printed: "n/a" for a measure with nothing to measure."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _doc_table(s: DocScores, t: DocScores, majority: str) -> dict[str, Any]:
    rows = [["drop precision", s.precision, t.precision, ""],
            ["drop recall", s.recall, t.recall, ""],
            ["drop F1", s.f1, t.f1, PAPER_DOC_F1],
            ["keep precision", s.keep_precision, t.keep_precision, ""],
            ["keep recall", s.keep_recall, t.keep_recall, ""],
            ["keep F1", s.keep_f1, t.keep_f1, ""],
            ["accuracy", s.accuracy, t.accuracy, ""],
            ["parse rate", s.parse_rate, t.parse_rate, ""],
            ["cut at the token limit", s.truncated, t.truncated, ""],
            ["teacher drops (support)", s.drops, t.drops, ""],
            ["teacher keeps (support)", s.keeps, t.keeps, ""]]
    return {"level": DOC_TASK, "title": f"doc level, {s.n} eval examples",
            "columns": ["measure", "student", f"always {majority}", PAPER], "rows": rows}


def _chunk_table(s: ChunkScores, nothing: ChunkScores, everything: ChunkScores,
                 max_errors: int) -> dict[str, Any]:
    trio = (s, nothing, everything)
    rows = [["removed lines precision", *(c.line_precision for c in trio), ""],
            ["removed lines recall", *(c.line_recall for c in trio), ""],
            ["removed lines F1", *(c.line_f1 for c in trio), PAPER_CHUNK_F1],
            ["normalize precision", *(c.normalize_precision for c in trio), ""],
            ["normalize recall", *(c.normalize_recall for c in trio), ""],
            ["normalize F1", *(c.normalize_f1 for c in trio), ""],
            ["exact match", *(c.exact_match for c in trio), ""],
            ["parse rate", *(c.parse_rate for c in trio), ""],
            [f"ignored (more than {max_errors} errors)", *(c.ignored for c in trio), ""],
            ["cut at the token limit", *(c.truncated for c in trio), ""],
            ["teacher removed lines (support)", *(c.lines_removed for c in trio), ""],
            ["teacher normalizations (support)", *(c.normalizations for c in trio), ""]]
    return {"level": CHUNK_TASK, "title": f"chunk level, {s.n} eval examples, each output as "
            f"a run applies it (policy.max_errors {max_errors}); the trivial students always "
            f"answer {REMOVE_NOTHING} or {REMOVE_EVERYTHING}",
            "columns": ["measure", "student", "remove nothing", "remove everything", PAPER],
            "rows": rows}


def _verdict(parts: list[tuple[str, bool, str]]) -> str:
    good = [f"{level} ({detail})" for level, beats, detail in parts if beats]
    bad = [f"{level} ({detail})" for level, beats, detail in parts if not beats]
    if not bad:
        return "Verdict: beats the trivial students on " + " and on ".join(good)
    if not good:
        return "Verdict: does not beat the trivial students on " + " nor on ".join(bad)
    return (f"Verdict: beats the trivial students on {' and on '.join(good)} "
            f"but not on {' nor on '.join(bad)}")


def _warning(level: str, scores: DocScores | ChunkScores) -> str | None:
    if scores.parse_rate >= PARSE_WARNING_BELOW:
        return None
    kinds = "; ".join(f"{count}x {kind}" for kind, count in scores.failures.kinds)
    examples = " | ".join(scores.failures.examples)
    return (f"warning: {level} parse rate {scores.parse_rate:.3f} is below "
            f"{PARSE_WARNING_BELOW}; commonest errors: {kinds}; for example: {examples}")


@dataclass(frozen=True)
class Evaluation:
    """A student's scores against its teacher, beside the trivial students'.

    `doc` / `chunk` are None when the eval split has no example of that
    task; `majority` is the trivial doc student's answer (the commoner
    teacher decision) and `doc_trivial` its scores; `remove_nothing` /
    `remove_everything` score the trivial chunk students. `max_errors` is
    the policy the chunk outputs were applied under; `examples` the number
    of eval rows scored.
    """

    doc: DocScores | None
    chunk: ChunkScores | None
    model: str
    examples: int
    majority: str | None = None
    doc_trivial: DocScores | None = None
    remove_nothing: ChunkScores | None = None
    remove_everything: ChunkScores | None = None
    max_errors: int = DEFAULT_CHUNK_POLICY.max_errors

    def to_dict(self) -> dict[str, Any]:
        """Plain values (None for a measure with nothing to measure)."""
        return asdict(self)

    def tables(self) -> list[dict[str, Any]]:
        """Per level: title, columns and rows (measure, student, trivial
        students, the paper's figure where it is the same measure)."""
        out = []
        if self.doc is not None and self.doc_trivial is not None and self.majority:
            out.append(_doc_table(self.doc, self.doc_trivial, self.majority))
        if self.chunk is not None and self.remove_nothing and self.remove_everything:
            out.append(_chunk_table(self.chunk, self.remove_nothing, self.remove_everything,
                                    self.max_errors))
        return out

    def verdict(self) -> str:
        """One line: whether the student beats the trivial students per level."""
        parts = []
        if self.doc is not None and self.doc_trivial is not None:
            s, t = self.doc, self.doc_trivial
            detail = ", ".join(f"{name} F1 {fmt(a)} vs {fmt(b)}" for name, a, b, support in
                               (("drop", s.f1, t.f1, s.drops), ("keep", s.keep_f1, t.keep_f1,
                                                                s.keeps)) if support)
            parts.append((DOC_TASK, doc_beats(s, t), f"{detail} for always {self.majority}"))
        if self.chunk is not None and self.remove_nothing and self.remove_everything:
            c, best = self.chunk, max((self.remove_nothing, self.remove_everything),
                                      key=lambda t: t.line_f1 or 0.0)
            name = "remove everything" if best is self.remove_everything else "remove nothing"
            detail = (f"removed-lines F1 {fmt(c.line_f1)} vs {fmt(best.line_f1)} for {name}"
                      if c.lines_removed else "the teacher removes no line: nothing to measure")
            parts.append((CHUNK_TASK, chunk_beats(c, self.remove_nothing,
                                                  self.remove_everything), detail))
        return _verdict(parts)

    def warnings(self) -> list[str]:
        """A warning per level whose parse rate is below 0.9."""
        found = [_warning(level, s) for level, s in ((DOC_TASK, self.doc),
                                                     (CHUNK_TASK, self.chunk)) if s]
        return [w for w in found if w]

    def summary(self) -> str:
        """Printable lines: a table per level, the warnings, the verdict."""
        out = [f"student {self.model} on {self.examples} eval examples"]
        for table in self.tables():
            out += ["", table["title"], _text_table(table["columns"], table["rows"])]
        out += ["", *self.warnings(), self.verdict(),
                f"({PAPER}: the ProX paper's figure, shown only beside the same measure)"]
        return "\n".join(out)


def _text_table(columns: list[str], rows: list[list[Any]]) -> str:
    cells = [columns, *([row[0], *(fmt(v) for v in row[1:])] for row in rows)]
    widths = [max(len(r[k]) for r in cells) for k in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) if k == 0 else c.rjust(w)
                               for k, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in cells)


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
            cut = [False] * batch.num_rows
            try:
                if failure is not None:
                    raise failure
                engine = get_engine(config)
            except Exception as exc:
                errors = [f"engine failed to start: {exc}"] * batch.num_rows
                yield append_columns(batch, {OUTPUT: (outputs, "string"),
                                             ERROR: (errors, "string"), CUT: (cut, "boolean")})
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
                    outputs[i], errors[i], cut[i] = program_text(gen), gen.error, gen.truncated
            yield append_columns(batch, {OUTPUT: (outputs, "string"), ERROR: (errors, "string"),
                                         CUT: (cut, "boolean")})

    return run


def student_outputs(examples: DataFrame, engine: EngineConfig, *,
                    doc_max_new_tokens: int = DOC_MAX_NEW_TOKENS,
                    chunk_max_new_tokens: int = CHUNK_MAX_NEW_TOKENS,
                    resources: TaskResources | None = None) -> DataFrame:
    """The valid eval rows of an SFT table (id, task, prompt, completion)
    with the student's answer (`student_output`, None when generation
    failed), `student_error` and `student_truncated` (the answer was cut at
    the token limit). Lazy: nothing runs until an action."""
    from pyspark.sql import functions as F

    rows = (examples.where(F.col("valid") & (F.col("split") == EVAL)
                           & F.col("task").isin(DOC_TASK, CHUNK_TASK))
            .select(*_COLUMNS))
    return map_batches(rows, _answer_batches(engine, doc_max_new_tokens, chunk_max_new_tokens),
                       {OUTPUT: "string", ERROR: "string", CUT: "boolean"},
                       pool=f"evaluate:{engine.model}", resources=resources)


def evaluate_student(spark: Any, examples: DataFrame, engine: EngineConfig, *,
                     doc_max_new_tokens: int = DOC_MAX_NEW_TOKENS,
                     chunk_max_new_tokens: int = CHUNK_MAX_NEW_TOKENS,
                     policy: ChunkPolicy = DEFAULT_CHUNK_POLICY,
                     resources: TaskResources | None = None) -> Evaluation:
    """Run the student `engine` over the valid eval rows of an SFT table and
    score it against the teacher's completions and beside the trivial
    students (doc: always the teacher's commoner decision; chunk: remove
    nothing, remove everything).

    `examples` has the SFT table's columns (id, task, prompt, completion,
    valid, split); only rows with valid true and split "eval" count. The
    student answers each stored prompt greedily (doc: `doc_max_new_tokens`,
    chunk: `chunk_max_new_tokens` new tokens) in one Spark job; each chunk
    output counts as a run under `policy` applies it (`scores.chunk_scores`).
    Returns doc and chunk scores (None for a task with no eval row). Raises
    ValueError naming the split when there is no eval row to score, or
    naming the row when a chunk row's prompt is not a chunk-level prompt.
    `spark` is the session the commands share (the rows come from
    `examples`); with `resources`, generation runs on GPU task slots (see
    `stages.model_map`).
    """
    rows = student_outputs(examples, engine, doc_max_new_tokens=doc_max_new_tokens,
                           chunk_max_new_tokens=chunk_max_new_tokens, resources=resources
                           ).select("id", "task", "prompt", "completion", OUTPUT, CUT).collect()
    if not rows:
        raise ValueError("evaluate: the SFT table has no eval rows (valid examples with "
                         f"split == {EVAL!r}); annotate with a larger eval fraction")
    doc = [(r.completion, r[OUTPUT], bool(r[CUT])) for r in rows if r.task == DOC_TASK]
    chunk = [(_chunk_of(r), r.completion, r[OUTPUT], bool(r[CUT]))
             for r in rows if r.task == CHUNK_TASK]
    return score(doc, chunk, engine.model, policy)


def score(doc: Sequence[tuple[str, str | None, bool]],
          chunk: Sequence[tuple[str, str, str | None, bool]], model: str,
          policy: ChunkPolicy = DEFAULT_CHUNK_POLICY) -> Evaluation:
    """Score the student's answers beside the trivial students'.

    `doc`: (teacher completion, student output, cut at the token limit)
    per doc example; `chunk`: (numbered chunk, teacher completion, student
    output, cut) per chunk example, each output counted as a run under
    `policy` applies it. Either may be empty (that level is then None).
    """
    fields: dict[str, Any] = {}
    if doc:
        teachers = [t for t, _, _ in doc]
        majority = majority_decision(teachers)
        fields.update(doc=doc_scores([(t, o) for t, o, _ in doc], cut=[c for _, _, c in doc]),
                      majority=majority, doc_trivial=doc_scores((t, majority) for t in teachers))
    if chunk:
        fields.update(
            chunk=chunk_scores([(c, t, o) for c, t, o, _ in chunk],
                               cut=[cut for *_, cut in chunk], policy=policy),
            remove_nothing=chunk_scores((c, t, REMOVE_NOTHING) for c, t, _, _ in chunk),
            remove_everything=chunk_scores((c, t, REMOVE_EVERYTHING) for c, t, _, _ in chunk))
    return Evaluation(doc=fields.pop("doc", None), chunk=fields.pop("chunk", None),
                      model=model, examples=len(doc) + len(chunk),
                      max_errors=policy.max_errors, **fields)


def _chunk_of(row: Any) -> str:
    try:
        return chunk_of_prompt(row.prompt)
    except ValueError as exc:
        raise ValueError(f"evaluate: eval row {row.id!r} of task 'chunk': {exc}") from None
