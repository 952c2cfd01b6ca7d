"""prox-spark: refine LLM pretraining corpora on Spark the ProX way."""

from __future__ import annotations

from prox_spark._moved import install as _install_moved

__version__ = "0.1.0"

# Old top-level module paths (`prox_spark.delta`, `prox_spark.engine`, ...)
# keep importing the modules that moved into packages; see `_moved`.
_install_moved()
