"""Pipeline configuration: YAML in, validated dataclasses out.

Every problem is reported as one `ConfigError` naming the field, before any
Spark work starts: unknown keys, wrong types, a model that cannot be found,
an unreadable input, an output that is not a Delta location.

    >>> cfg = load_config("conf/local.yaml", {"limit": 20})  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from prox_spark.errors import ConfigError
from prox_spark.generation.engine import CHUNK_MAX_NEW_TOKENS, DOC_MAX_NEW_TOKENS, EngineConfig
from prox_spark.generation.prompts import CHUNK_MAX_TOKENS, DEFAULT_MAX_DOC_CHARS, DOC_MAX_TOKENS
from prox_spark.params import Doc, Range, check_fields, value_problem
from prox_spark.program import ChunkPolicy
from prox_spark.refs import TableRef, is_delta_dir
from prox_spark.resources import DEFAULT_GPU_MEMORY_FRACTION, TaskResources, shares
from prox_spark.stages.registry import DEDUP_STAGES, MODEL_STAGES

if TYPE_CHECKING:
    from prox_spark.distill.config import DistillConfig

SourceFormat = Literal["delta", "parquet", "jsonl"]
FORMATS: tuple[str, ...] = typing.get_args(SourceFormat)
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:/")
log = logging.getLogger(__name__)


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
    format: Annotated[SourceFormat, Doc("how the source is stored")] = "delta"
    id_column: Annotated[str | None, Doc(
        "the source's id column (null: ids are derived from the text)")] = "id"
    text_column: Annotated[str, Doc("the source's text column")] = "text"
    cast_text: Annotated[bool, Doc("read a non-string text column as text")] = False
    on_duplicate_id: Annotated[Literal["error", "first", "last_by"], Doc(
        "what records sharing an id become: `error` stops the run, `first` keeps the "
        "first one read, `{last_by: COLUMN}` the one with the largest COLUMN")] = "error"
    last_by: str | None = None
    change_feed: Annotated[bool, Doc("read the Delta source's change data feed")] = False
    on_source_delete: Annotated[Literal["delete", "keep"], Doc(
        "what a document that left the source does to its refined row")] = "delete"
    extra_columns: tuple[str, ...] = ()


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
    max_doc_chars: Annotated[int, Range(0, open_low=True), Doc(
        "longest document the chunk model reads, in characters")] = DEFAULT_MAX_DOC_CHARS
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
    range and doc, and checked against these declarations."""

    input: InputConfig
    output: TableRef
    metrics: TableRef
    doc_model: ModelConfig | None
    chunk_model: ModelConfig | None
    policy: ChunkPolicy = field(default_factory=ChunkPolicy)
    partitions: Annotated[int, Range(0, 100_000, open_low=True), Doc(
        "Spark partitions the source is read into")] = 2
    spark_conf: Mapping[str, str] = field(default_factory=dict)
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
    distill: DistillConfig | None = None
    claim_lease_seconds: Annotated[float, Range(0, open_low=True), Doc(
        "how long a run's claim on a batch holds without renewal (see `claims`)")] = 300.0


def _hints(cls: type) -> dict[str, Any]:
    """The declared field types (with their `Range` and `Doc`) of a config
    dataclass."""
    return typing.get_type_hints(cls, include_extras=True, localns={"DistillConfig": Any})


def _declared(cls: type, section: Mapping[str, Any], where: str,
              names: tuple[str, ...]) -> dict[str, Any]:
    """The values of `names` given in `section` (null means absent, so the
    field's default), each checked against the type and range `cls`
    declares for it; a `ConfigError` names the first that does not fit."""
    hints = _hints(cls)
    out = {}
    for name in names:
        value = section.get(name)
        if value is None:
            continue
        why = value_problem(value, hints[name])
        if why is not None:
            raise ConfigError(f"{where}.{name}" if where else name, why)
        out[name] = value
    return out


def as_mapping(value: Any, where: str) -> dict[str, Any]:
    """A YAML section as a dict (null: empty); ConfigError naming `where`
    when it is not a mapping."""
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


def _table_ref(section: Mapping[str, Any], where: str) -> TableRef:
    """`path` or `table` (exactly one), validated; a local path made absolute."""
    given = _declared(TableRef, section, where, ("path", "table"))
    path, table = given.get("path"), given.get("table")
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


_LIMIT_KEYS = ("max_new_tokens", "max_prompt_tokens", "max_doc_chars")
_MODEL_KEYS = (*(f.name for f in fields(EngineConfig)), *_LIMIT_KEYS, "resources")
# Only the chunk model splits documents, so only it has a document size bound.
_DOC_MODEL_KEYS = tuple(k for k in _MODEL_KEYS if k != "max_doc_chars")


def _model(raw: Any, where: str, new_tokens: int, prompt_tokens: int,
           check: bool) -> ModelConfig | None:
    if raw is None:
        return None
    section = as_mapping(raw, where)
    _check_keys(section, _DOC_MODEL_KEYS if where == "doc_model" else _MODEL_KEYS, where)
    name = section.get("model")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.model", "a model directory or hub id is required")
    resources = None
    if section.get("resources") is not None:
        res_raw = as_mapping(section["resources"], f"{where}.resources")
        _check_keys(res_raw, tuple(f.name for f in fields(TaskResources)),
                    f"{where}.resources")
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
    _check_budget(model, where, 0)
    if check:
        check_model_available(name, f"{where}.model")
        _check_budget(model, where, _frame(model, where))
    return model


def _frame(model: ModelConfig, where: str) -> int:
    """The prompt frame of the section's level, measured with the model's own
    tokenizer (`generation.prompts.frame_tokens`); 0, with a warning, when
    the tokenizer cannot be loaded here (the engine will say why when it
    starts)."""
    from prox_spark.generation.engine import get_tokenizer
    from prox_spark.generation.prompts import frame_tokens

    name = model.engine.tokenizer_name
    try:
        tokenizer = get_tokenizer(name)
    except Exception as exc:
        log.warning("%s: cannot load the tokenizer of %r to measure the prompt frame (%s); "
                    "the prompt budget is checked without it", where, name,
                    type(exc).__name__)
        return 0
    return frame_tokens("doc" if where == "doc_model" else "chunk", tokenizer)


def _check_budget(model: ModelConfig, where: str, frame: int) -> None:
    """Every prompt the budgets allow, plus `max_new_tokens`, fits the
    engine's context. A doc prompt's `max_prompt_tokens` is the whole prompt
    (it must also hold the frame); a chunk's is its numbered lines' budget,
    to which the frame is added. `frame` 0: not measured yet (no tokenizer
    loaded), so only what holds for any frame is checked."""
    context, new = model.engine.max_model_len, model.max_new_tokens
    if where == "doc_model":
        if frame and model.max_prompt_tokens <= frame:
            raise ConfigError(f"{where}.max_prompt_tokens", (
                f"{model.max_prompt_tokens} cannot hold the prompt frame ({frame} tokens "
                "with this tokenizer) and any of the document"))
        longest, what = model.max_prompt_tokens, f"max_prompt_tokens ({model.max_prompt_tokens})"
    else:
        # A line shortened to the whole budget can take one token more after
        # "[doc]\n" than counted alone (the seam), hence the 1.
        longest = model.max_prompt_tokens + frame + (1 if frame else 0)
        what = (f"the lines' budget max_prompt_tokens ({model.max_prompt_tokens})"
                + (f" + the prompt frame ({frame} tokens with this tokenizer, plus 1 at the "
                   "seam)" if frame else ""))
    if longest + new > context:
        raise ConfigError(where, (
            f"{what} + max_new_tokens ({new}) = {longest + new} exceeds max_model_len "
            f"({context}), the engine's context: the longest prompts would be refused or "
            "their answers cut. Lower a budget or raise max_model_len"))


TOP_KEYS = ("input", "output", "metrics", "doc_model", "chunk_model", "policy", "spark",
            "limit", "stages", "commit_every", "commit_retries", "gpu_memory_fraction",
            "report", "cpu_sample", "max_attempts", "max_failed_fraction", "distill",
            "claim_lease_seconds", "ablate")
_INPUT_KEYS = ("path", "table", "format", "id_column", "text_column", "cast_text",
               "on_duplicate_id", "change_feed", "on_source_delete")
# The top-level numbers (and `spark.partitions`), declared on PipelineConfig.
_SCALARS = ("limit", "commit_every", "commit_retries", "gpu_memory_fraction", "cpu_sample",
            "max_attempts", "max_failed_fraction", "claim_lease_seconds")


def _duplicate_rule(value: Any, where: str = "input.on_duplicate_id") -> tuple[str, str | None]:
    """`error`, `first`, `last_by: COLUMN` (mapping) or "last_by:COLUMN" (string)."""
    if isinstance(value, Mapping) and list(value) == ["last_by"]:
        if not isinstance(value["last_by"], str):
            raise ConfigError(where, f"last_by needs a column name, got {value['last_by']!r}")
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
            params = as_mapping(params, f"{where}.{name}")
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
    for name in (*MODEL_STAGES, *DEDUP_STAGES):
        if names.count(name) > 1:
            raise ConfigError("stages", f"{name} appears more than once")
    if set(MODEL_STAGES) <= set(names) and names.index("prox_chunk") < names.index("prox_doc"):
        raise ConfigError("stages", "prox_chunk comes before prox_doc: ProX refines the "
                          "document, then the chunks of the documents it keeps (its two passes "
                          "run in this order); put prox_doc first")
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
    section = as_mapping(raw, "report")
    _check_keys(section, tuple(f.name for f in fields(ReportConfig)), "report")
    given = _declared(ReportConfig, section, "report", ("sample", "seed", "path"))
    path = given.get("path")
    if path is not None and not _URI.match(path):
        given["path"] = str(Path(path).expanduser().resolve())
    return ReportConfig(**given)


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
    return parse_input(top.get("input"), "input")


def parse_input(raw: Any, where: str) -> InputConfig:
    """A section with the keys of `input:` (path or table, format, columns,
    duplicate rule), validated; `where` is its dotted name in messages (other
    commands read sources the way `input:` does, e.g. `ablate.variants[0].input`)."""
    inp_raw = as_mapping(raw, where)
    _check_keys(inp_raw, _INPUT_KEYS, where)
    given = _declared(InputConfig, inp_raw, where, ("format", "id_column", "text_column",
                                                   "cast_text", "change_feed",
                                                   "on_source_delete"))
    if "id_column" in inp_raw and inp_raw["id_column"] is None:
        given["id_column"] = None  # here null is not the default: ids come from the text
    for key in ("id_column", "text_column"):
        if given.get(key) is not None and not _COLUMN.match(given[key]):
            raise ConfigError(f"{where}.{key}", f"{given[key]!r} is not a plain column name")
    if given.get("text_column", "text") == given.get("id_column", "id"):
        raise ConfigError(f"{where}.text_column", f"is {where}.id_column too: the id and the "
                          "text are two columns of the source")
    rule, last_by = _duplicate_rule(inp_raw.get("on_duplicate_id", "error"),
                                    f"{where}.on_duplicate_id")
    fmt = given.get("format", "delta")
    if given.get("change_feed") and fmt != "delta":
        raise ConfigError(f"{where}.change_feed", f"needs a Delta source, not {fmt}")
    return InputConfig(_table_ref(inp_raw, where), on_duplicate_id=rule, last_by=last_by,
                       **given)


def parse_table_ref(raw: Any, where: str) -> TableRef:
    """A `{path: ...}` or `{table: ...}` section (exactly one), validated."""
    section = as_mapping(raw, where)
    _check_keys(section, ("path", "table"), where)
    return _table_ref(section, where)


def check_input_readable(inp: InputConfig, where: str) -> None:
    """A local source path that does not exist, is unreadable, or (for
    format delta) is not a Delta table: ConfigError naming `where`.path."""
    try:
        _check_input(inp)
    except ConfigError as exc:
        raise ConfigError(f"{where}.path", str(exc).split(": ", 1)[1]) from None


def check_output_location(ref: TableRef, where: str) -> None:
    """An output path that is a file, a non-empty non-Delta folder, or under
    an unwritable folder: ConfigError naming `where`.path."""
    _check_output(ref, where)


def _outputs(top: Mapping[str, Any]) -> tuple[TableRef, TableRef]:
    """The refined table and the metrics table (default: beside it, `_metrics`)."""
    out_raw = as_mapping(top.get("output"), "output")
    _check_keys(out_raw, ("path", "table"), "output")
    output = _table_ref(out_raw, "output")
    if "metrics" in top:
        met_raw = as_mapping(top.get("metrics"), "metrics")
        _check_keys(met_raw, ("path", "table"), "metrics")
        return output, _table_ref(met_raw, "metrics")
    return output, output.sibling("_metrics")


def _policy(top: Mapping[str, Any]) -> ChunkPolicy:
    pol_raw = as_mapping(top.get("policy"), "policy")
    _check_keys(pol_raw, ("max_errors", "min_kept_ratio", "min_words"), "policy")
    try:
        return ChunkPolicy(**pol_raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError("policy", str(exc)) from None


def _spark(top: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
    """`spark.partitions` and `spark.conf` (discovery scripts made absolute)."""
    spark_raw = as_mapping(top.get("spark"), "spark")
    _check_keys(spark_raw, ("partitions", "conf"), "spark")
    partitions = _declared(PipelineConfig, spark_raw, "spark", ("partitions",)).get(
        "partitions", 2)
    conf = {str(k): str(v) for k, v in as_mapping(spark_raw.get("conf"), "spark.conf").items()}
    for key, value in conf.items():
        if key.endswith(".discoveryScript") and not _URI.match(value):
            # Spark runs it from other working directories (executors').
            conf[key] = str(Path(value).expanduser().resolve())
    return partitions, conf


def parse_config(raw: Any, *, check_models: bool = True, check_paths: bool = True
                 ) -> PipelineConfig:
    """Validate a configuration mapping (as read from YAML)."""
    top = as_mapping(raw, "config")
    _check_keys(top, TOP_KEYS, "")
    inp = _input(top)
    output, metrics = _outputs(top)
    policy = _policy(top)
    partitions, conf = _spark(top)
    numbers = _declared(PipelineConfig, top, "", _SCALARS)
    doc = _model(top.get("doc_model"), "doc_model", DOC_MAX_NEW_TOKENS, DOC_MAX_TOKENS,
                 check_models)
    chunk = _model(top.get("chunk_model"), "chunk_model", CHUNK_MAX_NEW_TOKENS,
                   CHUNK_MAX_TOKENS, check_models)
    stages = _stages(top.get("stages"), doc is not None, chunk is not None)
    if not stages:
        raise ConfigError("doc_model", "configure doc_model, chunk_model or a stages list")
    inp = _source_columns(stages, inp)
    fraction = float(numbers.pop("gpu_memory_fraction", DEFAULT_GPU_MEMORY_FRACTION))
    doc, chunk = _gpu_budget(doc, chunk, stages, fraction)
    report = _report(top.get("report"))
    _check_locations(inp.ref, output, metrics, report)
    if check_paths:
        _check_input(inp)
        _check_output(output, "output")
        _check_output(metrics, "metrics")
        if report is not None and report.path is not None and _is_local(report.path) \
                and _local(report.path).exists() and not _local(report.path).is_dir():
            raise ConfigError("report.path", f"{report.path} is a file, not a folder")
    return PipelineConfig(inp, output, metrics, doc, chunk, policy, partitions, conf,
                          stages=stages, gpu_memory_fraction=fraction,
                          report=report, distill=_distill(top.get("distill")),
                          **numbers)


def _check_locations(source: TableRef, output: TableRef, metrics: TableRef,
                     report: ReportConfig | None) -> None:
    """Refuse a configuration whose tables or report folder share a location
    or lie inside one another: a Delta table in another's folder corrupts
    neither at once but breaks both (the outer table's reads see stray files,
    a later VACUUM deletes the inner one's)."""
    places = [("input", source), ("output", output), ("metrics", metrics),
              ("the output's claims table", output.sibling("_claims"))]
    if report is not None and report.path is not None:
        places.append(("report.path", TableRef(path=report.path)))
    for i, (name, ref) in enumerate(places):
        for other, ref2 in places[:i]:
            if ref.table is not None and ref.table == ref2.table:
                raise ConfigError(name, f"is the same table as {other} ({ref.table})")
            if ref.path is None or ref2.path is None:
                continue
            a, b = ref.path.rstrip("/") + "/", ref2.path.rstrip("/") + "/"
            if a == b:
                raise ConfigError(name, f"is the same location as {other} ({ref.path})")
            if a.startswith(b) or b.startswith(a):
                inner, outer = (name, other) if a.startswith(b) else (other, name)
                raise ConfigError(name, f"{inner} lies inside {outer} ({ref.path}, "
                                  f"{ref2.path}): give each table a folder of its own")


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
        raw["input"] = {**as_mapping(raw.get("input"), "input"), "path": overrides["input"]}
        raw["input"].pop("table", None)
    if overrides.get("input_format") is not None:
        raw["input"] = {**as_mapping(raw.get("input"), "input"),
                        "format": overrides["input_format"]}
    if overrides.get("output") is not None:
        raw["output"] = {"path": overrides["output"]}
        raw.pop("metrics", None)
    for key in ("doc_model", "chunk_model"):
        if overrides.get(key) is not None:
            raw[key] = {**as_mapping(raw.get(key), key), "model": overrides[key]}
    for key in ("limit", "commit_every"):
        if overrides.get(key) is not None:
            raw[key] = overrides[key]
    if overrides.get("all"):
        raw.pop("cpu_sample", None)
    if overrides.get("spark_conf"):
        spark = as_mapping(raw.get("spark"), "spark")
        raw["spark"] = {**spark, "conf": {**as_mapping(spark.get("conf"), "spark.conf"),
                                          **overrides["spark_conf"]}}
    return raw


def _unique_keys_loader() -> type:
    """YAML's safe loader, refusing a key given twice in one mapping (plain
    `safe_load` keeps the last silently: a setting edited in one place and
    overridden further down)."""
    import yaml

    class UniqueKeys(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise ConfigError("config", f"line {key_node.start_mark.line + 1}: "
                                      f"{key!r} is given twice in one mapping")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeys


def _yaml_problem(exc: Exception) -> str:
    """One line for a YAML parser error: its problem and where (PyYAML's own
    message spans several lines, quoting the file)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None,
                **checks: bool) -> PipelineConfig:
    """Read a YAML file, apply overrides, validate. Relative paths in the file
    are taken relative to the current directory."""
    return parse_config(apply_overrides(read_yaml(path), overrides or {}), **checks)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML configuration file as a mapping (a key given twice in one
    mapping is refused). Raises ConfigError (field `config`) when the file is
    missing, not YAML, or not a mapping."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError("config", f"{file} does not exist or is not a file")
    try:
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=_unique_keys_loader())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"{file} is not valid YAML: {_yaml_problem(exc)}") from None
    return as_mapping(raw, "config")


SETTINGS_START = "<!-- run settings: written by scripts/stage_table.py; do not edit -->"
SETTINGS_END = "<!-- end of run settings -->"


def settings_table() -> str:
    """The YAML settings declared with a type, range and doc (top level,
    `spark`, `input`, `report`, `policy`, the model sections) as a Markdown
    table: the README's list between `SETTINGS_START` and `SETTINGS_END`,
    read from the same declarations `parse_config` checks against."""
    import json

    from prox_spark.params import describe_hint, doc_of

    per_model = {"max_new_tokens": (DOC_MAX_NEW_TOKENS, CHUNK_MAX_NEW_TOKENS),
                 "max_prompt_tokens": (DOC_MAX_TOKENS, CHUNK_MAX_TOKENS)}
    rows = [SETTINGS_START, "", "| setting | type | default | range | meaning |",
            "|---|---|---|---|---|"]

    def add(prefix: str, cls: type, names: tuple[str, ...] | None = None) -> None:
        hints = _hints(cls)
        defaults = {f.name: f.default for f in fields(cls)}
        for name in names or tuple(defaults):
            kind, bounds = describe_hint(hints[name])
            if name in per_model:
                default = "`{}` (doc), `{}` (chunk)".format(*per_model[name])
            elif name == "model" or defaults[name] is dataclasses.MISSING:
                default = "required"
            else:
                default = f"`{json.dumps(defaults[name])}`"
            rows.append(f"| `{prefix}{name}` | {kind} | {default} | {bounds} | "
                        f"{doc_of(hints[name])} |")

    add("", PipelineConfig, _SCALARS)
    add("spark.", PipelineConfig, ("partitions",))
    add("input.", InputConfig, ("format", "id_column", "text_column", "cast_text",
                                "change_feed", "on_duplicate_id", "on_source_delete"))
    add("report.", ReportConfig)
    add("policy.", ChunkPolicy)
    add("<model>.", ModelConfig, (*_LIMIT_KEYS,))
    add("<model>.", EngineConfig)
    add("<model>.resources.", TaskResources)
    return "\n".join([*rows, "", SETTINGS_END])
