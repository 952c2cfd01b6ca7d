"""The `distill:` section of a loaded config, read in one place.

The three distill commands (`annotate`, `train`, `evaluate`) take the whole
`PipelineConfig` (its input, stages and model budgets matter too) and reach
their own section only through `distill_config`, so how the section is
stored can change here alone.
"""

from __future__ import annotations

from prox_spark.config import ConfigError, PipelineConfig
from prox_spark.distill.config import DistillConfig, parse_distill


def distill_config(config: PipelineConfig) -> DistillConfig:
    """The config's `distill:` section, parsed and checked (ConfigError
    naming the field at fault, or `distill` when the config has none)."""
    if config.distill is None:
        raise ConfigError("distill", "this config has no `distill:` section")
    return parse_distill(config.distill)
