"""The errors prox-spark raises, in one place, and how one ends a command.

Every error of ours derives from `ProxSparkError`, whose `exit_code` is what
the CLI exits with: 2 for a problem the user fixes in the configuration
(`ConfigError` and its kin, found when the config is loaded or the input
read), 3 when concurrent writers kept winning (`CommitConflict`: run again),
1 for anything else. `exit_code` and `describe` are the one mapping the CLI
uses.
"""

from __future__ import annotations


class ProxSparkError(Exception):
    """Base of every error prox-spark raises; `exit_code` is the CLI's."""

    exit_code = 1


class ConfigError(ProxSparkError, ValueError):
    """A configuration problem, with the dotted name of the field at fault."""

    exit_code = 2

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


class NoRunError(ProxSparkError, ValueError):
    """The metrics table holds no such run (a wrong `--run`: exit 2)."""

    exit_code = 2


class CommitConflict(ProxSparkError, RuntimeError):
    """Concurrent writers kept winning: the batch could not be committed
    (exit 3: nothing is wrong, run again)."""

    exit_code = 3


class CommitFailed(ProxSparkError, RuntimeError):
    """A batch's MERGE failed for a reason other than a concurrent writer
    (e.g. a Delta CHECK constraint, a lost storage path); the run stops and
    no later batch is committed (batches committed before stay)."""


class TooManyFailed(ProxSparkError, RuntimeError):
    """More than `max_failed_fraction` of a batch could not be refined; the
    run stops before committing that batch (batches committed before stay)."""


class DeltaJarsNotFound(ProxSparkError, RuntimeError):
    """No Delta jars on disk for a local session."""


class DeltaMissing(ProxSparkError, RuntimeError):
    """The Spark session cannot read or write Delta tables."""


class EngineStartError(ProxSparkError, RuntimeError):
    """An engine could not be built (bad model files, no memory, wrong GPU)."""


class LabelError(ProxSparkError, ValueError):
    """A teacher answer that gives no usable label; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingColumnError(ProxSparkError, ValueError):
    """A stage was given a DataFrame without a column it reads."""


class StageContractError(ProxSparkError, RuntimeError):
    """A stage's output lacks a column its declaration says it adds."""


def exit_code(exc: BaseException) -> int:
    """The CLI's exit code for `exc`: its `exit_code` when it is one of
    ours, else 1.

    >>> exit_code(ConfigError("input.path", "missing")), exit_code(OSError("x"))
    (2, 1)
    """
    return exc.exit_code if isinstance(exc, ProxSparkError) else 1


def describe(command: str, exc: BaseException) -> str:
    """The one line the CLI prints for a failed `command`.

    >>> describe("run", ConfigError("limit", "must be positive"))
    'prox-spark: configuration error: limit: must be positive'
    """
    if exit_code(exc) == 2:
        return f"prox-spark: configuration error: {exc}"
    if isinstance(exc, CommitConflict):
        return f"prox-spark: {exc}"
    return f"prox-spark: {command} failed: {type(exc).__name__}: {first_line(exc, 500)}"


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
