"""A configuration file read: YAML (a key given twice refused), the command
line's overrides applied, then validated by `parse_config`.

    >>> cfg = load_config("conf/local.yaml", {"limit": 20})  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from prox_spark.config.model import PipelineConfig
from prox_spark.config.parse import parse_config
from prox_spark.config.sections import as_mapping
from prox_spark.errors import ConfigError

OVERRIDES = ("input", "input_format", "output", "doc_model", "chunk_model", "limit",
             "commit_every", "all")
"""The overrides `prox-spark run` and `plan` take as flags (`spark_conf` besides)."""


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Command-line overrides onto a raw config: input, input_format, output,
    doc_model, chunk_model, limit, commit_every, all (drop `cpu_sample`),
    spark_conf (a mapping added to `spark.conf`); None values are ignored."""
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


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain
    `safe_load` keeps the last silently: a setting edited in one place and
    overridden further down)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise ConfigError("config", f"line {key_node.start_mark.line + 1}: "
                                  f"{key!r} is given twice in one mapping")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: Exception) -> str:
    """One line for a YAML parser error: its problem and where (PyYAML's own
    message spans several lines, quoting the file)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML configuration file as a mapping (a key given twice in one
    mapping is refused). Raises ConfigError (field `config`) when the file is
    missing, not YAML, or not a mapping."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError("config", f"{file} does not exist or is not a file")
    try:
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"{file} is not valid YAML: {_yaml_problem(exc)}") from None
    return as_mapping(raw, "config")


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None,
                **checks: bool) -> PipelineConfig:
    """Read a YAML file, apply overrides, validate. Relative paths in the file
    are taken relative to the current directory."""
    return parse_config(apply_overrides(read_yaml(path), overrides or {}), **checks)
