"""Judging data: token-matched proxy models trained on each variant of a
corpus (raw, refined, rules only, ...), scored along training with
lm-eval-harness and bits per byte, compared in a Delta table and a report.

    >>> from prox_spark.ablate import run_ablation  # doctest: +SKIP
    >>> print(run_ablation("conf/ablate.yaml").render())  # doctest: +SKIP
"""

from __future__ import annotations

from prox_spark.ablate.config import AblateConfig, load_ablate_config, parse_ablate
from prox_spark.ablate.run import AblationPlan, AblationSummary, plan_ablation, run_ablation

__all__ = ["AblateConfig", "AblationPlan", "AblationSummary", "load_ablate_config",
           "parse_ablate", "plan_ablation", "run_ablation"]
