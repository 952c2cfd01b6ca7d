"""Pipeline configuration: YAML in, validated dataclasses out.

Every problem is reported as one `ConfigError` naming the field, before any
Spark work starts: unknown keys, wrong types, a model that cannot be found,
an unreadable input, an output that is not a Delta location.

`model` declares the dataclasses (each YAML key once, beside its field),
`keys` reads the allowed keys off them, `sections` holds the helpers every
section parser uses, `parse` validates a mapping, `load` reads the file and
applies the command line's overrides, `checks` looks at the machine (paths,
models, prompt budgets) and `gpu` splits the GPU memory between engines.

    >>> cfg = load_config("conf/local.yaml", {"limit": 20})  # doctest: +SKIP
"""

from __future__ import annotations

from prox_spark.config.checks import (
    check_input_readable,
    check_model_available,
    check_output_location,
)
from prox_spark.config.keys import TOP_KEYS
from prox_spark.config.load import OVERRIDES, apply_overrides, load_config, read_yaml
from prox_spark.config.model import (
    DEFAULT_COMMIT_EVERY,
    FORMATS,
    InputConfig,
    ModelConfig,
    PipelineConfig,
    ReportConfig,
    SourceFormat,
    StageConfig,
)
from prox_spark.config.parse import parse_config, parse_input
from prox_spark.config.sections import as_mapping, parse_table_ref, table_ref
from prox_spark.errors import ConfigError
from prox_spark.refs import TableRef
from prox_spark.stages.registry import DEDUP_STAGES, MODEL_STAGES

__all__ = [
    "DEDUP_STAGES", "DEFAULT_COMMIT_EVERY", "FORMATS", "MODEL_STAGES", "OVERRIDES", "TOP_KEYS",
    "ConfigError", "InputConfig", "ModelConfig", "PipelineConfig", "ReportConfig",
    "SourceFormat", "StageConfig", "TableRef", "apply_overrides", "as_mapping",
    "check_input_readable", "check_model_available", "check_output_location", "load_config",
    "parse_config", "parse_input", "parse_table_ref", "read_yaml", "table_ref",
]
