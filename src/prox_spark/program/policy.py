"""The thresholds that decide what happens to a chunk-level program's result.

Defaults are the reference pipeline's: a program with 2 or more errors is not
trusted; a refinement keeping 5% of the words or less, or 10 words or fewer,
drops the document.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChunkPolicy:
    """When to ignore a program and when to drop what is left.

    Example::

        ChunkPolicy(max_errors=0)   # ignore any program with an error
    """

    max_errors: int = 1
    min_kept_ratio: float = 0.05
    min_words: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.max_errors, bool) or not isinstance(self.max_errors, int):
            raise ValueError(f"max_errors must be an integer, got {self.max_errors!r}")
        if self.max_errors < 0:
            raise ValueError(f"max_errors must be >= 0, got {self.max_errors}")
        if isinstance(self.min_kept_ratio, bool) or not isinstance(
            self.min_kept_ratio, int | float
        ):
            raise ValueError(f"min_kept_ratio must be a number, got {self.min_kept_ratio!r}")
        if not 0.0 <= self.min_kept_ratio <= 1.0:
            raise ValueError(f"min_kept_ratio must be within [0, 1], got {self.min_kept_ratio}")
        if isinstance(self.min_words, bool) or not isinstance(self.min_words, int):
            raise ValueError(f"min_words must be an integer, got {self.min_words!r}")
        if self.min_words < 0:
            raise ValueError(f"min_words must be >= 0, got {self.min_words}")


DEFAULT_CHUNK_POLICY = ChunkPolicy()
