"""The thresholds that decide what happens to a chunk-level program's result.

Defaults are the reference pipeline's: a program with 2 or more errors is not
trusted; a refinement keeping 5% of the words or less, or 10 words or fewer,
drops the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from prox_spark.params import Doc, Range, check_fields


@dataclass(frozen=True, slots=True)
class ChunkPolicy:
    """When to ignore a program and when to drop what is left.

    Example::

        ChunkPolicy(max_errors=0)   # ignore any program with an error
    """

    max_errors: Annotated[int, Range(0), Doc(
        "most errors a chunk program may have and still be applied")] = 1
    min_kept_ratio: Annotated[float, Range(0, 1), Doc(
        "a refinement keeping this share of the words or less drops the document")] = 0.05
    min_words: Annotated[int, Range(0), Doc(
        "a refinement keeping this many words or fewer drops the document")] = 10

    def __post_init__(self) -> None:
        check_fields(self)


DEFAULT_CHUNK_POLICY = ChunkPolicy()
