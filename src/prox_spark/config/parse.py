"""A configuration mapping (as read from YAML) validated into a
`PipelineConfig`, section by section; each problem is one `ConfigError`
naming the field.

    >>> parse_config({"input": {"table": "docs"}, "output": {"table": "refined"},
    ...               "stages": ["gopher_quality"]}).metrics
    TableRef(path=None, table='refined_metrics')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from prox_spark.config.checks import (
    check_input_readable,
    check_locations,
    check_model_available,
    check_output_location,
    check_prompt_budget,
    check_report_folder,
    prompt_frame,
)
from prox_spark.config.gpu import fit_gpu_budget
from prox_spark.config.keys import (
    DOC_MODEL_KEYS,
    ENGINE_KEYS,
    INPUT_KEYS,
    LIMIT_KEYS,
    MODEL_KEYS,
    POLICY_KEYS,
    REPORT_KEYS,
    RESOURCE_KEYS,
    SCALARS,
    SPARK_KEYS,
    SPARK_SETTINGS,
    TABLE_KEYS,
    TOP_KEYS,
    documented,
)
from prox_spark.config.model import (
    InputConfig,
    ModelConfig,
    PipelineConfig,
    ReportConfig,
    StageConfig,
)
from prox_spark.config.sections import (
    COLUMN,
    URI,
    absolute,
    as_mapping,
    check_keys,
    declared,
    table_ref,
)
from prox_spark.errors import ConfigError
from prox_spark.generation.engine import CHUNK_MAX_NEW_TOKENS, DOC_MAX_NEW_TOKENS, EngineConfig
from prox_spark.generation.prompts import CHUNK_MAX_TOKENS, DOC_MAX_TOKENS
from prox_spark.program import ChunkPolicy
from prox_spark.refs import TableRef
from prox_spark.resources import DEFAULT_GPU_MEMORY_FRACTION, TaskResources
from prox_spark.stages.registry import check_stage, check_stage_order, default_stages, stage_spec


def parse_config(raw: Any, *, check_models: bool = True, check_paths: bool = True
                 ) -> PipelineConfig:
    """Validate a configuration mapping (as read from YAML)."""
    top = as_mapping(raw, "config")
    check_keys(top, TOP_KEYS, "")
    inp = parse_input(top.get("input"), "input")
    output, metrics = _outputs(top)
    policy = _policy(top)
    partitions, conf = _spark(top)
    numbers = declared(PipelineConfig, top, "", SCALARS)
    doc = _model(top.get("doc_model"), "doc_model", DOC_MAX_NEW_TOKENS, DOC_MAX_TOKENS,
                 check_models)
    chunk = _model(top.get("chunk_model"), "chunk_model", CHUNK_MAX_NEW_TOKENS,
                   CHUNK_MAX_TOKENS, check_models)
    stages = _stages(top.get("stages"), doc is not None, chunk is not None)
    if not stages:
        raise ConfigError("doc_model", "configure doc_model, chunk_model or a stages list")
    inp = _source_columns(stages, inp)
    fraction = float(numbers.pop("gpu_memory_fraction", DEFAULT_GPU_MEMORY_FRACTION))
    doc, chunk = fit_gpu_budget(doc, chunk, {s.name for s in stages}, fraction)
    report = _report(top.get("report"))
    check_locations(inp.ref, output, metrics, report)
    if check_paths:
        check_input_readable(inp)
        check_output_location(output, "output")
        check_output_location(metrics, "metrics")
        check_report_folder(report)
    return PipelineConfig(inp, output, metrics, doc, chunk, policy, partitions, conf,
                          stages=stages, gpu_memory_fraction=fraction,
                          report=report, distill=distill_section(top.get("distill")),
                          **numbers)


def distill_section(raw: Any) -> Mapping[str, Any] | None:
    """The `distill:` section as written (None when absent): a mapping, whose
    keys `distill.section.distill_config` checks (distill/ reads its own
    section, as ablate/ does)."""
    return None if raw is None else dict(as_mapping(raw, "distill"))


def parse_input(raw: Any, where: str) -> InputConfig:
    """A section with the keys of `input:` (path or table, format, columns,
    duplicate rule), validated; `where` is its dotted name in messages (other
    commands read sources the way `input:` does, e.g. `ablate.variants[0].input`).
    Its extra columns come from the stages, later (see `parse_config`)."""
    inp_raw = as_mapping(raw, where)
    check_keys(inp_raw, INPUT_KEYS, where)
    plain = tuple(k for k in documented(InputConfig) if k != "on_duplicate_id")
    given = declared(InputConfig, inp_raw, where, plain)
    if "id_column" in inp_raw and inp_raw["id_column"] is None:
        given["id_column"] = None  # here null is not the default: ids come from the text
    for key in ("id_column", "text_column"):
        if given.get(key) is not None and not COLUMN.match(given[key]):
            raise ConfigError(f"{where}.{key}", f"{given[key]!r} is not a plain column name")
    if given.get("text_column", "text") == given.get("id_column", "id"):
        raise ConfigError(f"{where}.text_column", f"is {where}.id_column too: the id and the "
                          "text are two columns of the source")
    rule, last_by = duplicate_rule(inp_raw.get("on_duplicate_id", "error"),
                                   f"{where}.on_duplicate_id")
    fmt = given.get("format", "delta")
    if given.get("change_feed") and fmt != "delta":
        raise ConfigError(f"{where}.change_feed", f"needs a Delta source, not {fmt}")
    return InputConfig(table_ref(inp_raw, where), on_duplicate_id=rule, last_by=last_by,
                       **given)


def duplicate_rule(value: Any, where: str = "input.on_duplicate_id"
                   ) -> tuple[str, str | None]:
    """(rule, last_by column) of `on_duplicate_id`: `error`, `first`,
    `last_by: COLUMN` (a mapping) or "last_by:COLUMN" (a string)."""
    if isinstance(value, Mapping) and list(value) == ["last_by"]:
        if not isinstance(value["last_by"], str):
            raise ConfigError(where, f"last_by needs a column name, got {value['last_by']!r}")
        value = f"last_by:{value['last_by']}"
    if not isinstance(value, str):
        raise ConfigError(where, f"expected error, first or last_by: COLUMN, got {value!r}")
    if value.startswith("last_by:"):
        column = value.split(":", 1)[1].strip()
        if not COLUMN.match(column):
            raise ConfigError(where, f"last_by needs a plain column name, got {column!r}")
        return "last_by", column
    if value not in ("error", "first"):
        raise ConfigError(where, f"{value!r} is not one of error, first, last_by: COLUMN")
    return value, None


def _outputs(top: Mapping[str, Any]) -> tuple[TableRef, TableRef]:
    """The refined table and the metrics table (default: beside it, `_metrics`)."""
    out_raw = as_mapping(top.get("output"), "output")
    check_keys(out_raw, TABLE_KEYS, "output")
    output = table_ref(out_raw, "output")
    if "metrics" in top:
        met_raw = as_mapping(top.get("metrics"), "metrics")
        check_keys(met_raw, TABLE_KEYS, "metrics")
        return output, table_ref(met_raw, "metrics")
    return output, output.sibling("_metrics")


def _policy(top: Mapping[str, Any]) -> ChunkPolicy:
    pol_raw = as_mapping(top.get("policy"), "policy")
    check_keys(pol_raw, POLICY_KEYS, "policy")
    try:
        return ChunkPolicy(**pol_raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError("policy", str(exc)) from None


def _spark(top: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
    """`spark.partitions` and `spark.conf` (discovery scripts made absolute)."""
    spark_raw = as_mapping(top.get("spark"), "spark")
    check_keys(spark_raw, SPARK_KEYS, "spark")
    partitions = declared(PipelineConfig, spark_raw, "spark", SPARK_SETTINGS).get(
        "partitions", 2)
    conf = {str(k): str(v) for k, v in as_mapping(spark_raw.get("conf"), "spark.conf").items()}
    for key, value in conf.items():
        if key.endswith(".discoveryScript") and not URI.match(value):
            # Spark runs it from other working directories (executors').
            conf[key] = str(Path(value).expanduser().resolve())
    return partitions, conf


def _resources(section: Mapping[str, Any], where: str) -> TaskResources | None:
    """A model section's `resources:` (None when absent)."""
    if section.get("resources") is None:
        return None
    res_raw = as_mapping(section["resources"], f"{where}.resources")
    check_keys(res_raw, RESOURCE_KEYS, f"{where}.resources")
    try:
        return TaskResources(**res_raw)
    except ValueError as exc:
        raise ConfigError(f"{where}.resources", str(exc)) from None


def _model(raw: Any, where: str, new_tokens: int, prompt_tokens: int,
           check: bool) -> ModelConfig | None:
    """A model section (`doc_model`, `chunk_model`); with `check`, its model
    is found and its prompt budget measured with its own tokenizer."""
    if raw is None:
        return None
    section = as_mapping(raw, where)
    check_keys(section, DOC_MODEL_KEYS if where == "doc_model" else MODEL_KEYS, where)
    name = section.get("model")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.model", "a model directory or hub id is required")
    resources = _resources(section, where)
    # A null value means the default, as if the key were absent.
    given = {k: v for k, v in section.items() if v is not None}
    limits = {"max_new_tokens": new_tokens, "max_prompt_tokens": prompt_tokens,
              **{k: v for k, v in given.items() if k in LIMIT_KEYS}}
    try:
        engine = EngineConfig(**{k: v for k, v in given.items() if k in ENGINE_KEYS})
        model = ModelConfig(engine=engine, resources=resources, **limits)
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from None
    check_prompt_budget(model, where, 0)
    if check:
        check_model_available(name, f"{where}.model")
        check_prompt_budget(model, where, prompt_frame(model, where))
    return model


def _stage_entry(item: Any, where: str) -> tuple[Any, dict[str, Any]]:
    """(name, parameters) of one `stages:` entry: a name, or a one-key
    mapping of a name to its parameters."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, Mapping) and len(item) == 1:
        name, params = next(iter(item.items()))
        return name, as_mapping(params, f"{where}.{name}")
    raise ConfigError(where, "expected a stage name or {name: {parameters}}")


def _stages(raw: Any, has_doc: bool, has_chunk: bool) -> tuple[StageConfig, ...]:
    """Validate `stages:` against the stage registry (without it: the model
    stages whose sections are configured)."""
    if raw is None:
        return tuple(StageConfig(n) for n in default_stages(has_doc, has_chunk))
    if not isinstance(raw, list) or not raw:
        raise ConfigError("stages", "expected a non-empty list of stage names")
    sections = {"doc_model": has_doc, "chunk_model": has_chunk}
    stages = []
    for i, item in enumerate(raw):
        name, params = _stage_entry(item, f"stages[{i}]")
        check_stage(name, params, sections, f"stages[{i}]")
        stages.append(StageConfig(name, params))
    check_stage_order([s.name for s in stages])
    return tuple(stages)


def _source_columns(stages: tuple[StageConfig, ...], inp: InputConfig) -> InputConfig:
    """The input with the extra columns stages read from the source (a dedup
    `priority`), which only typed sources carry."""
    extra: list[str] = []
    for i, stage in enumerate(stages):
        for column in stage_spec(stage.name).columns_from_source(stage.params):
            where = f"stages[{i}].{stage.name}"
            if not COLUMN.match(column):
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
    check_keys(section, REPORT_KEYS, "report")
    given = declared(ReportConfig, section, "report", REPORT_KEYS)
    if given.get("path") is not None:
        given["path"] = absolute(given["path"])
    return ReportConfig(**given)
