"""Progress of a long Spark action as plain log lines, every so often.

Spark's console bar redraws one terminal line with carriage returns, which
reads badly in a notebook cell and worse in a job log. While a batch is
being refined, this logs one line per interval instead:

    batch 2 of 5: 38 of 64 tasks done in the running stage(s), 3m10s so far
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)
EVERY_SECONDS = 60.0


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s" if seconds >= 60 \
        else f"{seconds:.0f}s"


def stage_progress(spark: Any) -> tuple[int, int] | None:
    """(tasks done, tasks) over the stages running now, or None if none run."""
    try:
        tracker = spark.sparkContext.statusTracker()
        infos = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
    except Exception:  # Spark Connect: no status tracker
        return None
    infos = [i for i in infos if i is not None]
    if not infos:
        return None
    return sum(i.numCompletedTasks for i in infos), sum(i.numTasks for i in infos)


@contextmanager
def progress(spark: Any, label: str, every: float = EVERY_SECONDS) -> Iterator[None]:
    """Log `label` with the running stages' task counts every `every` seconds
    until the block ends."""
    done = threading.Event()
    started = time.monotonic()

    def report() -> None:
        while not done.wait(every):
            tasks = stage_progress(spark)
            state = (f"{tasks[0]:,} of {tasks[1]:,} tasks done in the running stage(s)"
                     if tasks else "between stages")
            log.info("%s: %s, %s so far", label, state, _clock(time.monotonic() - started))

    thread = threading.Thread(target=report, name="prox-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)
