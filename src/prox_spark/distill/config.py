"""The `distill:` section of a YAML config: how to make a refiner.

One section drives the three commands (`prox-spark annotate | train |
evaluate CONFIG`). The documents come from the config's `input:` (any source
the pipeline reads), the rule stages of `stages:` are the `rules` teacher, and
the `doc_model` / `chunk_model` sections give the prompt budgets the student
will be run with, so an example's prompt is exactly what the refiner reads.

    distill:
      sample: {size: 2000, seed: 0}       # documents drawn from the input
      eval_fraction: 0.1                  # by a stable hash of the document id
      teacher: {kind: rules}              # rules | llm | table
      drop_share: null                    # share of drops among train doc examples (0-1);
                                          # null: 0.5 when the teacher's majority > 80%
      sft_table: {path: output/sft}       # the SFT Delta table annotate writes
      student:
        output_dir: output/refiner        # the model directory train writes
        base_model: null                  # a HF model directory, or null: from scratch
        max_steps: 1000

Every problem is one `ConfigError` naming the field (`distill.teacher.kind`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from prox_spark.config import check_output_location, table_ref
from prox_spark.errors import ConfigError
from prox_spark.generation.engine import EngineConfig
from prox_spark.params import Doc, Range, check_fields, value_problem
from prox_spark.refs import TableRef

TEACHERS = ("rules", "llm", "table")
DEFAULT_STUDENT_DIR = "output/refiner"
CHUNK_MODES = ("calls", "rewrite")


@dataclass(frozen=True)
class SampleConfig:
    """How many documents the teacher labels and the seed that picks them.

    `size` None labels every document of the input."""

    size: int | None = 2000
    seed: int = 0


@dataclass(frozen=True)
class TeacherConfig:
    """Who writes the labels.

    - `rules`: the config's rule stages (their drops and line removals);
    - `llm`: any chat model vLLM can load (`model` plus the engine keys of a
      model section), scoring documents (doc) and writing calls or rewrites
      (chunk, `chunk_mode`);
    - `table`: the programs stored in an existing refined table (`table`),
      e.g. one refined with the released models, to distill a smaller student.
    """

    kind: str = "rules"
    model: str | None = None
    tokenizer: str | None = None
    dtype: str = "auto"
    max_model_len: int = 4096
    kv_cache_gib: float | None = None
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int = 1
    enforce_eager: bool = False
    chunk_mode: str = "calls"
    doc_max_new_tokens: int = 32
    chunk_max_new_tokens: int = 512
    table: TableRef | None = None

    def engine(self) -> EngineConfig:
        """The teacher's engine (an `llm` teacher only)."""
        assert self.model is not None
        return EngineConfig(
            model=self.model, tokenizer=self.tokenizer, dtype=self.dtype,
            max_model_len=self.max_model_len, kv_cache_gib=self.kv_cache_gib,
            gpu_memory_utilization=self.gpu_memory_utilization,
            tensor_parallel_size=self.tensor_parallel_size, enforce_eager=self.enforce_eager)


@dataclass(frozen=True)
class DistillConfig:
    """The whole `distill:` section, validated."""

    sft_table: TableRef
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval_fraction: float = 0.1
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: TrainConfig = field(
        default_factory=lambda: TrainConfig(output_dir=DEFAULT_STUDENT_DIR))
    drop_share: float | None = None
    dedup_examples: bool = True
    tasks: tuple[str, ...] = ("doc", "chunk")

    @property
    def tokenizer_dir(self) -> str:
        """The tokenizer every example's prompt is measured with: the base
        model's, or (from scratch) the one `annotate` trains next to the
        student's output directory."""
        return self.student.base_model or str(Path(self.student.output_dir) / "tokenizer")


def _fields(cls: type, raw: Any, where: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """`raw` checked against the dataclass `cls`: known keys, declared types."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(where, f"expected a mapping, got {type(raw).__name__}")
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}",
                              f"unknown key; expected one of {', '.join(allowed)}")
    values = {k: v for k, v in raw.items() if k not in skip}
    hints = typing.get_type_hints(cls, include_extras=True)
    for key, value in values.items():
        why = value_problem(value, hints[key]) if key in hints else None
        if why is not None:
            raise ConfigError(f"{where}.{key}", why)
    return values


def _at_least(value: float | None, low: float, where: str) -> None:
    if value is not None and value < low:
        raise ConfigError(where, f"must be at least {low}, got {value}")


def _share(value: float | None, where: str, *, open_low: bool = True) -> None:
    if value is not None and not ((0 < value < 1) if open_low else (0 <= value <= 1)):
        raise ConfigError(where, f"must be between 0 and 1 (exclusive), got {value}")


def _table(raw: Any, where: str) -> TableRef:
    ref = table_ref(raw if isinstance(raw, Mapping) else {"path": raw}, where)
    check_output_location(ref, where)
    return ref


def _teacher(raw: Any) -> TeacherConfig:
    where = "distill.teacher"
    values = _fields(TeacherConfig, raw, where, skip=("table",))
    table = None
    if isinstance(raw, Mapping) and raw.get("table") is not None:
        t = raw["table"]
        table = table_ref(t if isinstance(t, Mapping) else {"path": t}, f"{where}.table")
    teacher = TeacherConfig(**values, table=table)
    if teacher.kind not in TEACHERS:
        raise ConfigError(f"{where}.kind", f"{teacher.kind!r} is not one of {', '.join(TEACHERS)}")
    if teacher.chunk_mode not in CHUNK_MODES:
        raise ConfigError(f"{where}.chunk_mode",
                          f"{teacher.chunk_mode!r} is not one of {', '.join(CHUNK_MODES)}")
    if teacher.kind == "llm" and not teacher.model:
        raise ConfigError(f"{where}.model", "an llm teacher needs a model directory or hub id")
    if teacher.kind == "table" and teacher.table is None:
        raise ConfigError(f"{where}.table", "a table teacher needs the refined table "
                          "(path or table) whose programs it reads")
    for key in ("doc_max_new_tokens", "chunk_max_new_tokens", "max_model_len",
                "tensor_parallel_size"):
        _at_least(getattr(teacher, key), 1, f"{where}.{key}")
    if teacher.kind == "llm":
        try:
            teacher.engine()
        except ValueError as exc:
            raise ConfigError(where, str(exc)) from None
    return teacher


def _student(raw: Any) -> TrainConfig:
    """`distill.student`: the `TrainConfig` of `train`, every field of it a
    key (`output_dir` defaults to output/refiner)."""
    where = "distill.student"
    if isinstance(raw, Mapping):  # null means the default
        raw = {k: v for k, v in raw.items() if v is not None}
    values = {"output_dir": DEFAULT_STUDENT_DIR, **_fields(TrainConfig, raw, where)}
    try:
        student = TrainConfig(**values)
    except ValueError as exc:
        key, _, why = str(exc).removeprefix("TrainConfig.").partition(" ")
        raise ConfigError(f"{where}.{key.rstrip(':')}", why) from None
    if student.base_model is not None and not (Path(student.base_model) / "config.json").is_file():
        raise ConfigError(f"{where}.base_model",
                          f"{student.base_model} is not a model directory (no config.json)")
    return replace_paths(student)


def replace_paths(student: TrainConfig) -> TrainConfig:
    """The student with its directories made absolute (relative to the
    working directory, like every path of a config)."""
    out = str(Path(student.output_dir).expanduser().resolve())
    base = student.base_model and str(Path(student.base_model).expanduser().resolve())
    return dataclasses.replace(student, output_dir=out, base_model=base)


def parse_distill(raw: Any) -> DistillConfig:
    """Validate a `distill:` mapping (ConfigError naming the field)."""
    where = "distill"
    section = _fields(DistillConfig, raw, where, skip=("sft_table", "sample", "teacher",
                                                       "student", "tasks"))
    raw = dict(raw or {})
    if raw.get("sft_table") is None:
        raise ConfigError(f"{where}.sft_table", "the SFT Delta table to write is required "
                          "(e.g. {path: output/sft})")
    sample = SampleConfig(**_fields(SampleConfig, raw.get("sample"), f"{where}.sample"))
    _at_least(sample.size, 1, f"{where}.sample.size")
    tasks = raw.get("tasks", ("doc", "chunk"))
    if isinstance(tasks, str):
        tasks = [tasks]
    if not isinstance(tasks, list | tuple) or not tasks or \
            any(t not in ("doc", "chunk") for t in tasks):
        raise ConfigError(f"{where}.tasks", f"expected a list of doc and/or chunk, got {tasks!r}")
    config = DistillConfig(
        sft_table=_table(raw["sft_table"], f"{where}.sft_table"),
        sample=sample,
        teacher=_teacher(raw.get("teacher")),
        student=_student(raw.get("student")),
        tasks=tuple(dict.fromkeys(tasks)),
        **section,
    )
    _share(config.eval_fraction, f"{where}.eval_fraction")
    _share(config.drop_share, f"{where}.drop_share")
    return config


# vLLM's CPU attention kernels accept only these head sizes.
CPU_HEAD_DIMS = (64, 80)


@dataclass(frozen=True)
class TrainConfig:
    """One fine-tuning run; `output_dir` is its identity (a rerun resumes it).

    From `base_model` (a Hugging Face causal-LM directory with its tokenizer),
    or, when it is None, from scratch: a Llama-style BPE tokenizer of at most
    `vocab_size` tokens and a `LlamaForCausalLM` of `hidden_size`, `layers`,
    `heads` (head size hidden/heads must be 64 or 80 for vLLM's CPU attention),
    `kv_heads` and `intermediate_size` (default 2 x hidden).

    `max_steps` optimizer steps, or `epochs` passes over the data when set.
    `batch_size` is per process; the effective batch is batch_size x
    gradient_accumulation x num_processes. `warmup_ratio` is the share of steps
    with a linear warm-up. Examples longer than `max_seq_tokens` tokens are
    skipped (cutting one would cut its program). `num_processes` > 1 trains
    under `TorchDistributor(local_mode=..., use_gpu=...)`; with
    `local_mode=False` the processes are Spark barrier tasks and `output_dir`
    must be storage every executor sees.

    Raises ValueError naming the field when a value cannot work.
    """

    output_dir: Annotated[str, Doc("the model directory train writes (a rerun resumes it)")]
    base_model: Annotated[str | None, Doc(
        "a Hugging Face model directory to fine-tune; null: from scratch")] = None
    hidden_size: Annotated[int, Range(1), Doc("from scratch: hidden size")] = 256
    layers: Annotated[int, Range(1), Doc("from scratch: decoder layers")] = 4
    heads: Annotated[int, Range(1), Doc(
        "from scratch: attention heads (hidden_size / heads must be 64 or 80)")] = 4
    kv_heads: Annotated[int, Range(1), Doc("from scratch: key/value heads")] = 1
    intermediate_size: Annotated[int | None, Range(1), Doc(
        "from scratch: MLP size (null: 2 x hidden_size)")] = None
    vocab_size: Annotated[int, Range(320), Doc(
        "from scratch: most tokens of the BPE tokenizer trained on the corpus")] = 4000
    max_positions: Annotated[int, Range(1), Doc("from scratch: longest sequence")] = 2048
    max_steps: Annotated[int, Doc("optimizer steps (unless epochs is set)")] = 1000
    epochs: Annotated[float | None, Range(0, open_low=True), Doc(
        "passes over the data instead of max_steps")] = None
    learning_rate: Annotated[float, Range(0, open_low=True), Doc("peak learning rate")] = 1e-3
    batch_size: Annotated[int, Range(1), Doc("examples per step and process")] = 8
    gradient_accumulation: Annotated[int, Range(1), Doc("steps accumulated per update")] = 1
    warmup_ratio: Annotated[float, Range(0, 1), Doc(
        "share of steps with a linear warm-up (below 1)")] = 0.05
    max_seq_tokens: Annotated[int, Range(1), Doc(
        "longer examples are skipped, never cut")] = 2048
    save_steps: Annotated[int, Range(1), Doc("steps between checkpoints")] = 200
    seed: Annotated[int, Doc("seed of initialization and shuffling")] = 0
    num_processes: Annotated[int, Range(1), Doc(
        "DDP processes (> 1: under TorchDistributor)")] = 1
    local_mode: Annotated[bool, Doc(
        "TorchDistributor on the driver (false: barrier tasks on the executors)")] = True
    use_gpu: Annotated[bool, Doc("train on GPUs")] = False
    overwrite: Annotated[bool, Doc(
        "start afresh when output_dir holds checkpoints of other examples or settings "
        "(false: that is an error)")] = False

    def __post_init__(self) -> None:
        try:
            check_fields(self)
        except ValueError as exc:
            raise ValueError(f"TrainConfig.{exc}") from None
        if not self.output_dir.strip():
            raise ValueError("TrainConfig.output_dir must name a directory")
        if self.base_model is not None and not self.base_model.strip():
            raise ValueError("TrainConfig.base_model must name a model directory or be None")
        if self.epochs is None and self.max_steps < 1:
            raise ValueError(f"TrainConfig.max_steps must be a positive integer, got "
                             f"{self.max_steps!r}")
        if self.warmup_ratio >= 1:
            raise ValueError(f"TrainConfig.warmup_ratio must be below 1, got "
                             f"{self.warmup_ratio!r}")
        if self.base_model is None:
            self._check_architecture()

    def _check_architecture(self) -> None:
        if self.hidden_size % self.heads or self.hidden_size // self.heads not in CPU_HEAD_DIMS:
            raise ValueError(
                f"TrainConfig.heads: hidden_size/heads = {self.hidden_size}/{self.heads} must be "
                f"a head size of {' or '.join(map(str, CPU_HEAD_DIMS))} (vLLM's CPU attention)")
        if self.heads % self.kv_heads:
            raise ValueError(f"TrainConfig.kv_heads must divide heads ({self.heads}), got "
                             f"{self.kv_heads}")
        if self.max_seq_tokens > self.max_positions:
            raise ValueError(f"TrainConfig.max_seq_tokens ({self.max_seq_tokens}) exceeds "
                             f"max_positions ({self.max_positions})")
