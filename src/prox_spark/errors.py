"""The errors prox-spark raises, in one place, and how one is shown in a line.

`ConfigError` is a problem the user fixes in the configuration (the CLI
exits 2); `SourceError`, one of them, is found only when the input is read
(a column or a table that is not there). `CommitConflict` says concurrent
writers kept winning; the others name what a stage, a report or a session
lacked.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem, with the dotted name of the field at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class SourceError(ConfigError):
    """The configured input, once read, lacks what the configuration names
    (a column, a Delta table, a change feed): a configuration problem found
    by the reader."""


class CheckpointMismatch(ConfigError):
    """A model directory holds training checkpoints of other examples or
    settings than the run asked for (resuming them would claim data the
    weights never saw)."""


class CommitConflict(RuntimeError):
    """Concurrent writers kept winning: the batch could not be committed."""


class MissingColumnError(ValueError):
    """A stage was given a DataFrame without a column it reads."""


class StageContractError(RuntimeError):
    """A stage's output lacks a column its declaration says it adds."""


class NoRunError(ValueError):
    """The metrics table holds no such run."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (Spark's run to pages). For
    a py4j error, whose first line only names the call ("An error occurred
    while calling o123.execute."), the first line of the Java exception.

    >>> first_line(ValueError("bad\\n  at org.apache.spark..."))
    'bad'
    >>> first_line(RuntimeError("CHECK constraint c violated by row with values:\\n - id : k09"))
    'CHECK constraint c violated by row with values: - id : k09'
    >>> first_line(KeyError())
    'KeyError'
    >>> first_line(RuntimeError("An error occurred while calling o9.execute.\\n"
    ...                         ": io.delta.exceptions.ConcurrentAppendException: x\\n"))
    'io.delta.exceptions.ConcurrentAppendException: x'
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("An error occurred while calling"):
        lines = [lines[1].lstrip(": "), *lines[2:]]
    if not lines:
        return type(exc).__name__
    # A first line that announces what follows ("... violated by row with
    # values:") takes the next line with it.
    head = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return head[:limit]
