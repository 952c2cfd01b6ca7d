"""The keys each YAML section allows, read off the dataclass fields.

A key's name is written once, beside its field (see `config.model`); these
tuples keep the fields' order, which is the order messages list them in.

    >>> INPUT_KEYS[:3], SPARK_KEYS
    (('path', 'table', 'format'), ('partitions', 'conf'))
    >>> "max_doc_chars" in MODEL_KEYS, "max_doc_chars" in DOC_MODEL_KEYS
    (True, False)
"""

from __future__ import annotations

from dataclasses import fields

from prox_spark.config.model import (
    CHUNK_ONLY,
    YAML_KEY,
    InputConfig,
    ModelConfig,
    PipelineConfig,
    ReportConfig,
    hints,
)
from prox_spark.generation.engine import EngineConfig
from prox_spark.params import doc_of
from prox_spark.program import ChunkPolicy
from prox_spark.refs import TableRef
from prox_spark.resources import TaskResources

OTHER_SECTIONS = ("ablate",)
"""Top-level sections other commands read from the same file (`prox-spark ablate`)."""


def names(cls: type) -> tuple[str, ...]:
    """The field names of a dataclass, in order."""
    return tuple(f.name for f in fields(cls))


def documented(cls: type) -> tuple[str, ...]:
    """The fields of `cls` declared with a `Doc`: the settings a section sets
    as they are (the other fields are sections, or derived)."""
    declared = hints(cls)
    return tuple(f.name for f in fields(cls) if doc_of(declared[f.name]))


def _yaml_keys(cls: type) -> dict[str, str]:
    """Field name to its dotted YAML key."""
    return {f.name: f.metadata.get(YAML_KEY, f.name) for f in fields(cls)}


TOP_KEYS = (*dict.fromkeys(k.split(".")[0] for k in _yaml_keys(PipelineConfig).values()),
            *OTHER_SECTIONS)
"""Every key a configuration file may have at its top level."""
SPARK_KEYS = tuple(k.split(".", 1)[1] for k in _yaml_keys(PipelineConfig).values()
                   if k.startswith("spark."))
SPARK_SETTINGS = tuple(n for n, k in _yaml_keys(PipelineConfig).items()
                       if k.startswith("spark.") and n in documented(PipelineConfig))
"""The `spark.` keys declared with a range and doc on `PipelineConfig`."""
SCALARS = tuple(n for n in documented(PipelineConfig) if "." not in _yaml_keys(PipelineConfig)[n])
"""The top-level numbers, declared with a range and doc on `PipelineConfig`."""
TABLE_KEYS = names(TableRef)
INPUT_KEYS = (*TABLE_KEYS, *documented(InputConfig))
POLICY_KEYS = names(ChunkPolicy)
REPORT_KEYS = names(ReportConfig)
RESOURCE_KEYS = names(TaskResources)
ENGINE_KEYS = names(EngineConfig)
LIMIT_KEYS = documented(ModelConfig)
"""A model section's generation limits (the rest of it is the engine's settings)."""
MODEL_KEYS = (*ENGINE_KEYS, *(n for n in names(ModelConfig) if n != "engine"))
DOC_MODEL_KEYS = tuple(k for k in MODEL_KEYS if not any(
    f.name == k and f.metadata.get(CHUNK_ONLY) for f in fields(ModelConfig)))
