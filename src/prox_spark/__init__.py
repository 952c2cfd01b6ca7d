"""prox-spark: refine LLM pretraining corpora on Spark the ProX way."""

from __future__ import annotations

__version__ = "0.1.0"
