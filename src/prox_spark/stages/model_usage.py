"""What the model stages sent to their engines: prompt tokens and seconds
inside vLLM's `generate`, per model stage, summed over a job's Spark tasks
with an accumulator.

A run records the difference per batch in its metrics (`doc_prompt_tokens`,
`doc_generate_seconds`, `chunk_prompt_tokens`, `chunk_generate_seconds`), so
the prompt tokens a plan predicted can be compared with the ones sent, and
`prox-spark plan` turns prompt tokens into GPU-hours at the throughput
earlier runs reached (tokens per second of one engine, i.e. of one GPU).
Tasks that Spark runs twice (a retry, a lost executor) are counted twice.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

__all__ = ["ModelUsage", "model_usage", "usage_accumulator"]


@dataclass(frozen=True)
class ModelUsage:
    """Prompt tokens sent and seconds spent generating, per model stage."""

    doc_prompt_tokens: int = 0
    doc_generate_seconds: float = 0.0
    chunk_prompt_tokens: int = 0
    chunk_generate_seconds: float = 0.0

    def __sub__(self, other: ModelUsage) -> ModelUsage:
        a, b = astuple(self), astuple(other)
        return ModelUsage(int(a[0] - b[0]), a[1] - b[1], int(a[2] - b[2]), a[3] - b[3])


class _Sum4:
    """Accumulator parameter of a 4-vector (duck-typed `AccumulatorParam`)."""

    def zero(self, value: list[float]) -> list[float]:
        return [0.0] * 4

    def addInPlace(self, a: list[float], b: list[float]) -> list[float]:
        return [x + y for x, y in zip(a, b, strict=True)]


_ACCUMULATORS: dict[str, Any] = {}


def usage_accumulator(spark: Any) -> Any | None:
    """The driver's accumulator of `ModelUsage` for this Spark application
    (created once), or None where the session has no SparkContext (Spark
    Connect): usage is then not measured."""
    try:
        sc = spark.sparkContext
        key = sc.applicationId
    except Exception:
        return None
    if key not in _ACCUMULATORS:
        _ACCUMULATORS[key] = sc.accumulator([0.0] * 4, _Sum4())
    return _ACCUMULATORS[key]


def model_usage(spark: Any) -> ModelUsage:
    """What the model stages of this application have sent so far (subtract
    two readings for a batch)."""
    acc = usage_accumulator(spark)
    if acc is None:
        return ModelUsage()
    v = acc.value
    return ModelUsage(int(v[0]), float(v[1]), int(v[2]), float(v[3]))
