"""The configuration of a run as dataclasses: what `parse_config` returns.

Each YAML setting is declared once, as a field here (or on `InputConfig`,
`EngineConfig`, `TaskResources`, `ChunkPolicy`, `TableRef`), with its type,
`Range` and `Doc`; `config.keys` reads the allowed keys off these fields.
A field's YAML key is its name, unless its metadata says otherwise
(`YAML_KEY`: `spark.partitions`), or it carries `CHUNK_ONLY`.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from prox_spark.generation.engine import EngineConfig
from prox_spark.generation.prompts import DEFAULT_MAX_DOC_CHARS
from prox_spark.io.sources import FORMATS, InputConfig, SourceFormat
from prox_spark.params import Doc, Range, check_fields
from prox_spark.program import ChunkPolicy
from prox_spark.refs import TableRef
from prox_spark.resources import DEFAULT_GPU_MEMORY_FRACTION, TaskResources

__all__ = ["CHUNK_ONLY", "DEFAULT_COMMIT_EVERY", "FORMATS", "YAML_KEY", "InputConfig",
           "ModelConfig", "PipelineConfig", "ReportConfig", "SourceFormat", "StageConfig",
           "hints"]

DEFAULT_COMMIT_EVERY = 50_000
YAML_KEY = "yaml_key"
"""Field metadata: the dotted YAML key of a field not named as it is set."""
CHUNK_ONLY = "chunk_only"
"""Field metadata: a model setting only the chunk model's section takes."""


@dataclass(frozen=True)
class ModelConfig:
    """A model section: the engine, generation limits, and the task resources
    its stage asks for (None: plain task slots, e.g. on a CPU machine)."""

    engine: EngineConfig
    max_new_tokens: Annotated[int, Range(0, open_low=True), Doc(
        "longest answer generated per prompt, in tokens")]
    max_prompt_tokens: Annotated[int, Range(0, open_low=True), Doc(
        "doc: longest prompt sent, frame included; chunk: the budget of a chunk's numbered "
        "lines, to which the prompt frame (41 tokens with the released models' tokenizer) is "
        "added. In tokens; prompt + max_new_tokens must fit max_model_len")]
    # Only the chunk model splits documents, so only it has a document size bound.
    max_doc_chars: Annotated[int, Range(0, open_low=True), Doc(
        "longest document the chunk model reads, in characters")] = field(
        default=DEFAULT_MAX_DOC_CHARS, metadata={CHUNK_ONLY: True})
    resources: TaskResources | None = None

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class StageConfig:
    """One entry of `stages:`: a stage name and its keyword parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportConfig:
    """The HTML run report: documents sampled per status, the sampling seed,
    and a folder (default `<output>_reports` for a path output)."""

    sample: Annotated[int, Range(0), Doc("documents shown per status")] = 3
    seed: Annotated[int, Doc("seed of the sampling")] = 0
    path: Annotated[str | None, Doc("folder the report is written to")] = None


@dataclass(frozen=True)
class PipelineConfig:
    """A whole run, as validated by `parse_config`. The numbers a YAML sets at
    the top level (and `spark.partitions`) are declared here with their
    range and doc, and checked against these declarations. `distill` is the
    `distill:` section as written, which `distill.section.distill_config`
    parses and checks."""

    input: InputConfig
    output: TableRef
    metrics: TableRef
    doc_model: ModelConfig | None
    chunk_model: ModelConfig | None
    policy: ChunkPolicy = field(default_factory=ChunkPolicy)
    partitions: Annotated[int, Range(0, 100_000, open_low=True), Doc(
        "Spark partitions the source is read into")] = field(
        default=2, metadata={YAML_KEY: "spark.partitions"})
    spark_conf: Mapping[str, str] = field(default_factory=dict,
                                          metadata={YAML_KEY: "spark.conf"})
    limit: Annotated[int | None, Range(0, open_low=True), Doc(
        "read at most this many documents")] = None
    stages: tuple[StageConfig, ...] = ()
    commit_every: Annotated[int, Range(0, open_low=True), Doc(
        "documents per committed batch")] = DEFAULT_COMMIT_EVERY
    commit_retries: Annotated[int, Range(0), Doc(
        "times a batch commit is retried after a Delta conflict")] = 3
    gpu_memory_fraction: Annotated[float, Range(0, 1, open_low=True), Doc(
        "share of a GPU's memory all engines on it may use together")] = \
        DEFAULT_GPU_MEMORY_FRACTION
    report: ReportConfig | None = field(default_factory=lambda: ReportConfig())
    cpu_sample: Annotated[int | None, Range(0, open_low=True), Doc(
        "on a machine without GPUs, refine only this many documents")] = None
    max_attempts: Annotated[int, Range(0, open_low=True), Doc(
        "times a failed row is tried, over runs, before it is left failed")] = 3
    max_failed_fraction: Annotated[float | None, Range(0, 1), Doc(
        "fail the run (exit 1) when more than this share of a batch failed")] = None
    distill: Mapping[str, Any] | None = None
    claim_lease_seconds: Annotated[float, Range(0, open_low=True), Doc(
        "how long a run's claim on a batch holds without renewal (see `claims`)")] = 300.0


def hints(cls: type) -> dict[str, Any]:
    """The declared field types of a config dataclass, with the `Range` and
    `Doc` annotated on them."""
    return typing.get_type_hints(cls, include_extras=True)
