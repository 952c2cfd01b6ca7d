"""Pipeline configuration: YAML in, validated dataclasses out.

Every problem is reported as one `ConfigError` naming the field, before any
Spark work starts: unknown keys, wrong types, a model that cannot be found,
an unreadable input, an output that is not a Delta location.

    >>> cfg = load_config("conf/local.yaml", {"limit": 20})  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from prox_spark.errors import ConfigError
from prox_spark.generation.engine import CHUNK_MAX_NEW_TOKENS, DOC_MAX_NEW_TOKENS, EngineConfig
from prox_spark.generation.prompts import CHUNK_MAX_TOKENS, DEFAULT_MAX_DOC_CHARS, DOC_MAX_TOKENS
from prox_spark.params import Doc, Range, check_fields
from prox_spark.program import ChunkPolicy
from prox_spark.refs import TableRef, is_delta_dir
from prox_spark.resources import DEFAULT_GPU_MEMORY_FRACTION, TaskResources, shares

if TYPE_CHECKING:
    from prox_spark.distill.config import DistillConfig

FORMATS = ("delta", "parquet", "jsonl")
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:/")
log = logging.getLogger(__name__)
DEDUP_STAGES = ("exact_dedup", "near_dedup")


DUPLICATE_ID_RULES = ("error", "first", "last_by")
SOURCE_DELETE_RULES = ("delete", "keep")
DEFAULT_COMMIT_EVERY = 50_000


@dataclass(frozen=True)
class InputConfig:
    """Where the documents come from and how bad or repeated records are handled.

    `on_duplicate_id`: records sharing an id with different texts become one
    error row (`error`), or the first read wins (`first`), or the one with the
    largest `last_by` column wins. `on_source_delete`: what a document that
    left the source does to its refined row (`delete` it, or `keep` it).
    """

    ref: TableRef
    format: str = "delta"
    id_column: str | None = "id"
    text_column: str = "text"
    cast_text: bool = False
    on_duplicate_id: str = "error"
    last_by: str | None = None
    change_feed: bool = False
    on_source_delete: str = "delete"
    extra_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelConfig:
    """A model section: the engine, generation limits, and the task resources
    its stage asks for (None: plain task slots, e.g. on a CPU machine)."""

    engine: EngineConfig
    max_new_tokens: Annotated[int, Range(0, open_low=True), Doc(
        "longest answer generated per prompt, in tokens")]
    max_prompt_tokens: Annotated[int, Range(0, open_low=True), Doc(
        "longest prompt sent, in tokens (a longer chunk is split)")]
    max_doc_chars: Annotated[int, Range(0, open_low=True), Doc(
        "longest document the chunk model reads, in characters")] = DEFAULT_MAX_DOC_CHARS
    resources: TaskResources | None = None

    def __post_init__(self) -> None:
        check_fields(self)


MODEL_STAGES = ("prox_doc", "prox_chunk")


@dataclass(frozen=True)
class StageConfig:
    """One entry of `stages:`: a stage name and its keyword parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportConfig:
    """The HTML run report: documents sampled per status, the sampling seed,
    and a folder (default `<output>_reports` for a path output)."""

    sample: int = 3
    seed: int = 0
    path: str | None = None


@dataclass(frozen=True)
class PipelineConfig:
    input: InputConfig
    output: TableRef
    metrics: TableRef
    doc_model: ModelConfig | None
    chunk_model: ModelConfig | None
    policy: ChunkPolicy = field(default_factory=ChunkPolicy)
    partitions: int = 2
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    limit: int | None = None
    stages: tuple[StageConfig, ...] = ()
    commit_every: int = DEFAULT_COMMIT_EVERY
    commit_retries: int = 3
    gpu_memory_fraction: float = DEFAULT_GPU_MEMORY_FRACTION
    report: ReportConfig | None = field(default_factory=lambda: ReportConfig())
    cpu_sample: int | None = None
    # A "failed" row (not refined) is tried again on later runs until it has
    # been tried this many times.
    max_attempts: int = 3
    # Fail the run (exit 1) when more than this share of a batch failed;
    # None: never.
    max_failed_fraction: float | None = None
    distill: DistillConfig | None = None
    # How long a run's claim on a batch holds without renewal (see `claims`):
    # a live run renews it; a dead run's claim lapses after this.
    claim_lease_seconds: float = 300.0


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(where, f"expected a mapping, got {type(value).__name__}")
    return dict(value)


def _check_keys(section: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in section:
        if key not in allowed:
            raise ConfigError(
                f"{where}.{key}" if where else str(key),
                f"unknown key; expected one of {', '.join(allowed)}",
            )


def _typed(section: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str,
           default: Any = None) -> Any:
    value = section.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ConfigError(f"{where}.{key}", f"expected a number, got {value!r}")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}.{key}", f"expected {names}, got {value!r}")
    return value


def _positive(value: Any, where: str) -> Any:
    if value is not None and value <= 0:
        raise ConfigError(where, f"must be positive, got {value}")
    return value


def _table_ref(section: Mapping[str, Any], where: str) -> TableRef:
    path = _typed(section, "path", str, where)
    table = _typed(section, "table", str, where)
    if (path is None) == (table is None):
        raise ConfigError(where, "give exactly one of `path` or `table`")
    if table is not None and not _TABLE_NAME.match(table):
        raise ConfigError(f"{where}.table", f"{table!r} is not a valid table name")
    if path is not None:
        if not path.strip() or "\x00" in path:
            raise ConfigError(f"{where}.path", f"{path!r} is not a valid path")
        if not _URI.match(path):
            path = str(Path(path).expanduser().resolve())
    return TableRef(path=path, table=table)


def _is_local(path: str) -> bool:
    return not _URI.match(path) or path.startswith("file:/")


def _local(path: str) -> Path:
    return Path(path[5:] if path.startswith("file:") else path)


def _check_input(inp: InputConfig) -> None:
    if inp.ref.path is None or not _is_local(inp.ref.path):
        return
    path = _local(inp.ref.path)
    if not path.exists():
        raise ConfigError("input.path", f"{path} does not exist")
    if not os.access(path, os.R_OK):
        raise ConfigError("input.path", f"{path} is not readable")
    if inp.format == "delta" and not is_delta_dir(path):
        raise ConfigError("input.path", f"{path} is not a Delta table (no _delta_log)")


def _check_output(ref: TableRef, where: str) -> None:
    if ref.path is None or not _is_local(ref.path):
        return
    path = _local(ref.path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{where}.path", f"{path} is a file, not a Delta location")
    if path.is_dir() and any(path.iterdir()) and not is_delta_dir(path):
        raise ConfigError(
            f"{where}.path", f"{path} exists, is not empty and is not a Delta table"
        )
    parent = path.parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{where}.path", f"{parent} is a file, so {path} cannot be created "
                          "under it")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{where}.path", f"{parent} is not writable")


def check_model_available(name: str, where: str) -> None:
    """Fail with a helpful message when a model is neither a local directory
    nor downloadable (the hub is unreachable, or offline mode is on)."""
    hint = (
        f"Point the job at a local copy instead, e.g. `prox-spark run CONFIG "
        f"--{where.split('.')[0].replace('_', '-')} /path/to/model_dir` (`prox-spark plan` "
        "takes the same flag; a directory holding config.json, the weights and the "
        "tokenizer)."
    )
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(where, f"directory {path} has no config.json. {hint}")
        return
    if not _HUB_ID.match(name):
        raise ConfigError(where, f"{name!r} is neither a model directory nor a hub id. {hint}")
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(name, allow_patterns=["config.json"],
                          local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1",
                          etag_timeout=10)
    except Exception as exc:
        raise ConfigError(
            where,
            f"cannot find model {name!r}: it is not a local directory and it could not be "
            f"fetched from the Hugging Face hub ({type(exc).__name__}). {hint}",
        ) from None


_MODEL_KEYS = ("model", "tokenizer", "dtype", "max_model_len", "kv_cache_gib",
               "cpu_kv_cache_gib", "gpu_memory_utilization", "tensor_parallel_size",
               "max_num_seqs", "enforce_eager", "seed", "max_new_tokens",
               "max_prompt_tokens", "max_doc_chars", "resources")
_LIMIT_KEYS = ("max_new_tokens", "max_prompt_tokens", "max_doc_chars")
# Only the chunk model splits documents, so only it has a document size bound.
_DOC_MODEL_KEYS = tuple(k for k in _MODEL_KEYS if k != "max_doc_chars")


def _model(raw: Any, where: str, new_tokens: int, prompt_tokens: int,
           check: bool) -> ModelConfig | None:
    if raw is None:
        return None
    section = _mapping(raw, where)
    _check_keys(section, _DOC_MODEL_KEYS if where == "doc_model" else _MODEL_KEYS, where)
    name = _typed(section, "model", str, where)
    if not name:
        raise ConfigError(f"{where}.model", "a model directory or hub id is required")
    resources = None
    if section.get("resources") is not None:
        res_raw = _mapping(section["resources"], f"{where}.resources")
        _check_keys(res_raw, ("gpus_per_task", "cpus_per_task"), f"{where}.resources")
        try:
            resources = TaskResources(**res_raw)
        except ValueError as exc:
            raise ConfigError(f"{where}.resources", str(exc)) from None
    # A null value means the default, as if the key were absent.
    given = {k: v for k, v in section.items() if v is not None}
    engine_keys = {f.name for f in fields(EngineConfig)}
    limits = {"max_new_tokens": new_tokens, "max_prompt_tokens": prompt_tokens,
              **{k: v for k, v in given.items() if k in _LIMIT_KEYS}}
    try:
        engine = EngineConfig(**{k: v for k, v in given.items() if k in engine_keys})
        model = ModelConfig(engine=engine, resources=resources, **limits)
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from None
    if check:
        check_model_available(name, f"{where}.model")
    return model


TOP_KEYS = ("input", "output", "metrics", "doc_model", "chunk_model", "policy", "spark",
            "limit", "stages", "commit_every", "commit_retries", "gpu_memory_fraction",
            "report", "cpu_sample", "max_attempts", "max_failed_fraction", "distill",
            "claim_lease_seconds")
_INPUT_KEYS = ("path", "table", "format", "id_column", "text_column", "cast_text",
               "on_duplicate_id", "change_feed", "on_source_delete")


def _duplicate_rule(value: Any) -> tuple[str, str | None]:
    """`error`, `first`, `last_by: COLUMN` (mapping) or "last_by:COLUMN" (string)."""
    where = "input.on_duplicate_id"
    if isinstance(value, Mapping) and list(value) == ["last_by"]:
        value = f"last_by:{value['last_by']}"
    if not isinstance(value, str):
        raise ConfigError(where, f"expected error, first or last_by: COLUMN, got {value!r}")
    if value.startswith("last_by:"):
        column = value.split(":", 1)[1].strip()
        if not _COLUMN.match(column):
            raise ConfigError(where, f"last_by needs a plain column name, got {column!r}")
        return "last_by", column
    if value not in ("error", "first"):
        raise ConfigError(where, f"{value!r} is not one of error, first, last_by: COLUMN")
    return value, None


def _stages(raw: Any, has_doc: bool, has_chunk: bool) -> tuple[StageConfig, ...]:
    """Validate `stages:` (names, or one-key mappings of name to parameters)
    against the stage registry."""
    from prox_spark.stages.registry import stage_spec

    if raw is None:
        return tuple(StageConfig(n) for n, on in zip(MODEL_STAGES, (has_doc, has_chunk),
                                                     strict=True) if on)
    if not isinstance(raw, list) or not raw:
        raise ConfigError("stages", "expected a non-empty list of stage names")
    stages = []
    sections = {"doc_model": has_doc, "chunk_model": has_chunk}
    for i, item in enumerate(raw):
        where = f"stages[{i}]"
        if isinstance(item, str):
            name, params = item, {}
        elif isinstance(item, Mapping) and len(item) == 1:
            name, params = next(iter(item.items()))
            params = _mapping(params, f"{where}.{name}")
        else:
            raise ConfigError(where, "expected a stage name or {name: {parameters}}")
        if not isinstance(name, str):
            raise ConfigError(where, f"a stage name is a string, got {name!r}")
        try:
            spec = stage_spec(name)
        except ValueError as exc:
            raise ConfigError(where, str(exc)) from None
        if spec.model is not None and not sections[spec.model]:
            raise ConfigError(where, f"{name} needs a {spec.model} section")
        try:
            spec.effective(params)
            if spec.model is None:
                spec.create(params)  # the stage's own range checks (threshold in (0, 1], ...)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}.{name}", str(exc)) from None
        stages.append(StageConfig(name, params))
    names = [s.name for s in stages]
    for name in MODEL_STAGES:
        if names.count(name) > 1:
            raise ConfigError("stages", f"{name} appears more than once")
    _warn_dedup_before_filters(names)
    return tuple(stages)


def _warn_dedup_before_filters(names: list[str]) -> None:
    """Log a warning when a dedup stage runs before a stage that can drop
    documents: a keeper chosen there may be dropped later, and then no copy
    of its text survives."""
    from prox_spark.schema import DOC_STATUS, STATUS
    from prox_spark.stages.registry import stage_spec

    for i, name in enumerate(names):
        if name not in DEDUP_STAGES:
            continue
        later = [n for n in names[i + 1:] if n not in DEDUP_STAGES and (
            stage_spec(n).model is not None or {STATUS, DOC_STATUS} & set(stage_spec(n).adds))]
        if later:
            log.warning("stages: %s runs before %s, which can drop documents: a copy kept by "
                        "dedup may be dropped later and then none survives; put dedup stages "
                        "after the filters", name, ", ".join(later))
            return


def _source_columns(stages: tuple[StageConfig, ...], inp: InputConfig) -> InputConfig:
    """The input with the extra columns stages read from the source (a dedup
    `priority`), which only typed sources carry."""
    from prox_spark.stages.registry import stage_spec

    extra: list[str] = []
    for i, stage in enumerate(stages):
        for column in stage_spec(stage.name).columns_from_source(stage.params):
            where = f"stages[{i}].{stage.name}"
            if not _COLUMN.match(column):
                raise ConfigError(where, f"{column!r} is not a plain column name")
            if inp.format == "jsonl" and inp.ref.table is None:
                raise ConfigError(where, f"column {column!r} must come from a Parquet or Delta "
                                  "source; a JSONL source carries only id and text")
            if column not in extra and column not in ("id", "text"):
                extra.append(column)
    return replace(inp, extra_columns=tuple(extra))


def _report(raw: Any) -> ReportConfig | None:
    """`report: false` turns the run report off; a mapping sets it up."""
    if raw is False:
        return None
    section = _mapping(raw, "report")
    _check_keys(section, ("sample", "seed", "path"), "report")
    sample = _typed(section, "sample", int, "report", 3)
    if sample < 0:
        raise ConfigError("report.sample", f"must be 0 or more, got {sample}")
    path = _typed(section, "path", str, "report")
    if path is not None and not _URI.match(path):
        path = str(Path(path).expanduser().resolve())
    return ReportConfig(sample, _typed(section, "seed", int, "report", 0), path)


def _gpu_budget(doc: ModelConfig | None, chunk: ModelConfig | None,
                stages: tuple[StageConfig, ...], fraction: float
                ) -> tuple[ModelConfig | None, ModelConfig | None]:
    """Give every engine that can be alive on one GPU its share of
    `gpu_memory_fraction` (explicit `gpu_memory_utilization` values are kept
    and checked); refuse a plan whose engines cannot fit."""
    names = {s.name for s in stages}
    running = [(where, m) for where, m, stage in (("doc_model", doc, "prox_doc"),
                                                  ("chunk_model", chunk, "prox_chunk"))
               if m is not None and stage in names]
    if not running:
        return doc, chunk
    try:
        split = shares([(where, m.resources, m.engine.gpu_memory_utilization)
                        for where, m in running], fraction)
    except ValueError as exc:
        field_name = "gpu_memory_fraction" if "gpu_memory_fraction must" in str(exc) else \
            ", ".join(f"{w}.gpu_memory_utilization" for w, _ in running)
        raise ConfigError(field_name, str(exc)) from None
    out = {where: replace(m, engine=replace(m.engine, gpu_memory_utilization=split[where]))
           for where, m in running}
    return out.get("doc_model", doc), out.get("chunk_model", chunk)


def _input(top: Mapping[str, Any]) -> InputConfig:
    """The `input:` section (its extra columns come from the stages, later)."""
    inp_raw = _mapping(top.get("input"), "input")
    _check_keys(inp_raw, _INPUT_KEYS, "input")
    fmt = _typed(inp_raw, "format", str, "input", "delta")
    if fmt not in FORMATS:
        raise ConfigError("input.format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    id_column = _typed(inp_raw, "id_column", str, "input", "id")
    text_column = _typed(inp_raw, "text_column", str, "input", "text")
    for key, col in (("id_column", id_column), ("text_column", text_column)):
        if col is not None and not _COLUMN.match(col):
            raise ConfigError(f"input.{key}", f"{col!r} is not a plain column name")
    rule, last_by = _duplicate_rule(inp_raw.get("on_duplicate_id", "error"))
    on_delete = _typed(inp_raw, "on_source_delete", str, "input", "delete")
    if on_delete not in SOURCE_DELETE_RULES:
        raise ConfigError("input.on_source_delete",
                          f"{on_delete!r} is not one of {', '.join(SOURCE_DELETE_RULES)}")
    change_feed = bool(_typed(inp_raw, "change_feed", bool, "input", False))
    if change_feed and fmt != "delta":
        raise ConfigError("input.change_feed", f"needs a Delta source, not {fmt}")
    return InputConfig(_table_ref(inp_raw, "input"), fmt, id_column, text_column,
                       bool(_typed(inp_raw, "cast_text", bool, "input", False)), rule, last_by,
                       change_feed, on_delete)


def _outputs(top: Mapping[str, Any]) -> tuple[TableRef, TableRef]:
    """The refined table and the metrics table (default: beside it, `_metrics`)."""
    out_raw = _mapping(top.get("output"), "output")
    _check_keys(out_raw, ("path", "table"), "output")
    output = _table_ref(out_raw, "output")
    if "metrics" in top:
        met_raw = _mapping(top.get("metrics"), "metrics")
        _check_keys(met_raw, ("path", "table"), "metrics")
        return output, _table_ref(met_raw, "metrics")
    if output.path is not None:
        return output, TableRef(path=output.path.rstrip("/") + "_metrics")
    return output, TableRef(table=f"{output.table}_metrics")


def _policy(top: Mapping[str, Any]) -> ChunkPolicy:
    pol_raw = _mapping(top.get("policy"), "policy")
    _check_keys(pol_raw, ("max_errors", "min_kept_ratio", "min_words"), "policy")
    try:
        return ChunkPolicy(**pol_raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError("policy", str(exc)) from None


def _spark(top: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
    """`spark.partitions` and `spark.conf` (discovery scripts made absolute)."""
    spark_raw = _mapping(top.get("spark"), "spark")
    _check_keys(spark_raw, ("partitions", "conf"), "spark")
    partitions = _positive(_typed(spark_raw, "partitions", int, "spark", 2), "spark.partitions")
    conf = {str(k): str(v) for k, v in _mapping(spark_raw.get("conf"), "spark.conf").items()}
    for key, value in conf.items():
        if key.endswith(".discoveryScript") and not _URI.match(value):
            # Spark runs it from other working directories (executors').
            conf[key] = str(Path(value).expanduser().resolve())
    return partitions, conf


def _share(top: Mapping[str, Any], key: str, default: float | None, *, zero_ok: bool
           ) -> float | None:
    """A share within [0, 1] (within (0, 1] unless `zero_ok`), None when unset."""
    value = _typed(top, key, (int, float), "config", default)
    if value is None and default is not None:
        raise ConfigError(key, "expected a number, got None")
    if value is None:
        return None
    if not zero_ok and not 0 < value <= 1:
        raise ConfigError(key, f"must be in (0, 1], got {value}")
    if zero_ok and not 0.0 <= value <= 1.0:
        raise ConfigError(key, f"must be within [0, 1], got {value}")
    return float(value)


def _lease(top: Mapping[str, Any]) -> float:
    lease = _typed(top, "claim_lease_seconds", (int, float), "config", 300.0)
    if lease is None or not 0 < lease < math.inf:
        # An infinite lease would pass here and overflow the claims' timestamps.
        raise ConfigError("claim_lease_seconds", f"must be a positive, finite number of "
                                                 f"seconds, got {lease}")
    return float(lease)


def parse_config(raw: Any, *, check_models: bool = True, check_paths: bool = True
                 ) -> PipelineConfig:
    """Validate a configuration mapping (as read from YAML)."""
    top = _mapping(raw, "config")
    _check_keys(top, TOP_KEYS, "")
    inp = _input(top)
    output, metrics = _outputs(top)
    policy = _policy(top)
    partitions, conf = _spark(top)
    limit = _positive(_typed(top, "limit", int, "config"), "limit")
    commit_every = _positive(_typed(top, "commit_every", int, "config", DEFAULT_COMMIT_EVERY),
                             "commit_every")
    retries = _typed(top, "commit_retries", int, "config", 3)
    if retries < 0:
        raise ConfigError("commit_retries", f"must be 0 or more, got {retries}")

    doc = _model(top.get("doc_model"), "doc_model", DOC_MAX_NEW_TOKENS, DOC_MAX_TOKENS,
                 check_models)
    chunk = _model(top.get("chunk_model"), "chunk_model", CHUNK_MAX_NEW_TOKENS,
                   CHUNK_MAX_TOKENS, check_models)
    stages = _stages(top.get("stages"), doc is not None, chunk is not None)
    if not stages:
        raise ConfigError("doc_model", "configure doc_model, chunk_model or a stages list")
    inp = _source_columns(stages, inp)
    fraction = _share(top, "gpu_memory_fraction", DEFAULT_GPU_MEMORY_FRACTION, zero_ok=False)
    doc, chunk = _gpu_budget(doc, chunk, stages, fraction or DEFAULT_GPU_MEMORY_FRACTION)
    if check_paths:
        _check_input(inp)
        _check_output(output, "output")
        _check_output(metrics, "metrics")
    max_attempts = _positive(_typed(top, "max_attempts", int, "config", 3), "max_attempts")
    failed_fraction = _share(top, "max_failed_fraction", None, zero_ok=True)
    lease = _lease(top)
    return PipelineConfig(inp, output, metrics, doc, chunk, policy, partitions,
                          conf, limit, stages,
                          commit_every, retries, fraction or DEFAULT_GPU_MEMORY_FRACTION,
                          _report(top.get("report")),
                          _positive(_typed(top, "cpu_sample", int, "config"), "cpu_sample"),
                          max_attempts, failed_fraction,
                          _distill(top.get("distill")), lease)


def _distill(raw: Any) -> DistillConfig | None:
    if raw is None:
        return None
    from prox_spark.distill.config import parse_distill

    return parse_distill(raw)


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Command-line overrides onto a raw config: input, input_format, output,
    doc_model, chunk_model, limit, commit_every, spark_conf (a mapping added
    to `spark.conf`); None values are ignored."""
    raw = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    if overrides.get("input") is not None:
        raw["input"] = {**_mapping(raw.get("input"), "input"), "path": overrides["input"]}
        raw["input"].pop("table", None)
    if overrides.get("input_format") is not None:
        raw["input"] = {**_mapping(raw.get("input"), "input"),
                        "format": overrides["input_format"]}
    if overrides.get("output") is not None:
        raw["output"] = {"path": overrides["output"]}
        raw.pop("metrics", None)
    for key in ("doc_model", "chunk_model"):
        if overrides.get(key) is not None:
            raw[key] = {**_mapping(raw.get(key), key), "model": overrides[key]}
    for key in ("limit", "commit_every"):
        if overrides.get(key) is not None:
            raw[key] = overrides[key]
    if overrides.get("all"):
        raw.pop("cpu_sample", None)
    if overrides.get("spark_conf"):
        spark = _mapping(raw.get("spark"), "spark")
        raw["spark"] = {**spark, "conf": {**_mapping(spark.get("conf"), "spark.conf"),
                                          **overrides["spark_conf"]}}
    return raw


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None,
                **checks: bool) -> PipelineConfig:
    """Read a YAML file, apply overrides, validate. Relative paths in the file
    are taken relative to the current directory."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError("config", f"{file} does not exist or is not a file")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"{file} is not valid YAML: {exc}") from None
    return parse_config(apply_overrides(_mapping(raw, "config"), overrides or {}), **checks)
