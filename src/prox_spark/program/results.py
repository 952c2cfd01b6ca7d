"""What applying a program to a document produced, with enough to audit it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["kept", "edited", "dropped", "reverted"]
STATUSES: tuple[Status, ...] = ("kept", "edited", "dropped", "reverted")


@dataclass(frozen=True, slots=True)
class ProgramResult:
    """The refined document and how it came to be.

    `status` is "kept" (unchanged), "edited", "dropped" (`text` is ""), or
    "reverted" (too many errors: the program was ignored, `text` is the
    original).
    """

    text: str
    status: Status
    errors: int
    lines_removed: int = 0
    normalizations: int = 0
    words_before: int = 0
    words_after: int = 0
    error_messages: tuple[str, ...] = ()
