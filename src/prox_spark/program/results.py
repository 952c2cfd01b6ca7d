"""What applying a program to a document produced, with enough to audit it.

A document ends in one of four statuses, decided by `decide_status` alone:

    >>> decide_status(dropped=False, reverted=False, changed=True)
    'edited'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Status = Literal["kept", "edited", "dropped", "reverted"]
KEPT: Final = "kept"
EDITED: Final = "edited"
DROPPED: Final = "dropped"
REVERTED: Final = "reverted"
STATUSES: tuple[Status, ...] = (KEPT, EDITED, DROPPED, REVERTED)


def decide_status(*, dropped: bool, reverted: bool = False, changed: bool = False) -> Status:
    """The one precedence every stage follows: a drop wins over a revert (the
    program was ignored), which wins over an edit; otherwise the document is kept."""
    if dropped:
        return DROPPED
    if reverted:
        return REVERTED
    return EDITED if changed else KEPT


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
