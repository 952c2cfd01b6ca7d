"""What applying a program to a document produced, with enough to audit it.

A document ends in one of five statuses. Four are decided by `decide_status`
alone; the fifth, "failed", means the document was not refined at all (the
engine did not start, generation failed, the prompt did not fit): its text
is stored as it was and it is retried on a later run.

    >>> decide_status(dropped=False, reverted=False, changed=True)
    'edited'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Status = Literal["kept", "edited", "dropped", "reverted", "failed"]
KEPT: Final = "kept"
EDITED: Final = "edited"
DROPPED: Final = "dropped"
REVERTED: Final = "reverted"
FAILED: Final = "failed"
STATUSES: tuple[Status, ...] = (KEPT, EDITED, DROPPED, REVERTED, FAILED)
# What a corpus consumer reads as the refined corpus: every other status
# (dropped, failed) is not part of it.
CORPUS_STATUSES: tuple[Status, ...] = (KEPT, EDITED, REVERTED)

# `drop_reason` codes of the model stages and the interpreter (rule stages
# use their rule's reason code, datatrove style: `gopher_short_doc`).
DOC_MODEL_REASON: Final = "doc_model"
EMPTY_TEXT_REASON: Final = "empty_text"
MIN_WORDS_REASON: Final = "chunk_policy:min_words"
MIN_KEPT_RATIO_REASON: Final = "chunk_policy:min_kept_ratio"
INVALID_RECORD_REASON: Final = "invalid_record"
FAILED_PREFIX: Final = "failed:"


def failed_reason(kind: str) -> str:
    """`failed:<kind>`, the drop reason of a row that was not refined."""
    return FAILED_PREFIX + kind


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

    `status` is "kept" (unchanged), "edited", "dropped" (`text` is ""),
    "reverted" (too many errors: the program was ignored, `text` is the
    original) or "failed" (not refined; `text` is the original). `reason`
    says why a dropped or failed document is not in the corpus (a
    `*_REASON` code or `failed:<kind>`), None otherwise.
    """

    text: str
    status: Status
    errors: int
    lines_removed: int = 0
    normalizations: int = 0
    words_before: int = 0
    words_after: int = 0
    error_messages: tuple[str, ...] = ()
    reason: str | None = None
