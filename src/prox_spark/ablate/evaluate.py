"""Score a proxy checkpoint with lm-eval-harness: bits per byte on the
reference set and multiple-choice accuracy (`acc`, `acc_norm`).

Everything goes through lm-eval's `simple_evaluate` with its `HFLM` model
(a `loglikelihood_rolling` task over the reference JSONL for bits per byte;
`multiple_choice` tasks for accuracy). Local task files become lm-eval task
configs over local JSON data, which is how a machine without the Hugging Face
hub runs it; built-in tasks (hellaswag, ...) load their data from the hub.

Values are taken from lm-eval's per-example results (`log_samples`): the
mean and its standard error over examples for accuracy; for bits per byte
the ratio of summed bits to summed UTF-8 bytes (lm-eval's own definition)
with a delta-method standard error. The chance accuracy of a task is the
mean of 1 / choices over its examples.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prox_spark.ablate.config import ProxyEval
from prox_spark.errors import ConfigError

REFERENCE_TASK = "reference"
_HUB = ("huggingface.co", 443)


@dataclass(frozen=True)
class Score:
    """One metric of one task at one evaluation point."""

    task: str
    metric: str
    value: float
    stderr: float | None
    examples: int
    chance: float | None = None


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when offline mode is on (`HF_HUB_OFFLINE`) or huggingface.co
    cannot be reached within `timeout` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    try:
        with socket.create_connection(_HUB, timeout=timeout):
            return True
    except OSError:
        return False


def _quiet() -> None:
    """lm-eval and datasets report every step at INFO/WARNING with progress
    bars; an ablation prints its own progress."""
    for name in ("lm_eval", "lm-eval", "datasets", "evaluate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - lm-eval depends on datasets
        pass


def require_lm_eval() -> None:
    """ConfigError when lm-eval is not installed (it is the `ablate` extra)."""
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise ConfigError("ablate.eval", "lm-eval-harness is not installed: pip install "
                                         "'prox-spark[ablate]' (the lm-eval package)") from None


class Suite:
    """The lm-eval tasks of an ablation, built once: hub task names checked
    against lm-eval's registry, local task files and the reference as task
    configs. Raises ConfigError naming an unknown task, or hub tasks when the
    hub cannot be reached (never a silent skip)."""

    def __init__(self, settings: ProxyEval, reference_path: str | None) -> None:
        require_lm_eval()
        _quiet()
        from lm_eval.tasks import TaskManager

        self.settings = settings
        hub_tasks = list(settings.tasks)
        self.skipped_tasks: tuple[str, ...] = ()
        if hub_tasks and settings.tasks_defaulted and not hub_reachable():
            self.skipped_tasks = tuple(hub_tasks)
            logging.getLogger(__name__).warning(
                "the Hugging Face hub cannot be reached: the default early-signal tasks (%s) "
                "are not run; scoring %s only", ", ".join(hub_tasks),
                "the reference and task files" if settings.task_files or reference_path
                else "nothing")
            hub_tasks = []
        if hub_tasks:
            self.manager = TaskManager()
            unknown = [t for t in hub_tasks if t not in self.manager.all_tasks]
            if unknown:
                raise ConfigError("ablate.eval.tasks", f"unknown lm-eval task(s): "
                                  f"{', '.join(unknown)}")
            if not hub_reachable():
                raise ConfigError("ablate.eval.tasks", f"{', '.join(hub_tasks)} load their data "
                                  "from the Hugging Face hub, which cannot be reached (offline "
                                  "mode or no network); use ablate.eval.task_files for local "
                                  "tasks, or give tasks: []")
        else:
            self.manager = TaskManager(include_defaults=False)
        self.hub_tasks = tuple(hub_tasks)
        self.configs: list[Any] = [*self.hub_tasks]
        self.configs += [multiple_choice_task(f.name, f.path) for f in settings.task_files]
        if reference_path is not None:
            self.configs.append(reference_task(reference_path))
        if not self.configs:
            raise ConfigError("ablate.eval", "nothing to evaluate: give a reference, "
                                             "task_files or (with the hub) tasks")
        self.names = (*self.hub_tasks, *(f.name for f in settings.task_files),
                      *((REFERENCE_TASK,) if reference_path is not None else ()))

    def score(self, model: Any, tokenizer: Any, max_length: int) -> list[Score]:
        """Evaluate a loaded causal LM on every task of the suite (each
        context after one BOS, as the proxies saw each document)."""
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=self.settings.batch_size,
                  device="cpu" if not _on_gpu(model) else str(model.device),
                  max_length=max_length, add_bos_token=True)
        with captured_stderr():
            out = simple_evaluate(model=lm, tasks=list(self.configs), limit=self.settings.limit,
                                  bootstrap_iters=0, log_samples=True, task_manager=self.manager,
                                  verbosity="ERROR")
        if out is None:  # pragma: no cover - only for non-zero ranks of lm-eval's own DDP
            raise RuntimeError("lm-eval returned no results")
        return scores_from_samples(out["samples"], groups(out), self.names)


@contextlib.contextmanager
def captured_stderr() -> Iterator[None]:
    """Keep what is written to file descriptor 2 (lm-eval's progress bars,
    a `git describe` it runs for its environment record) off the console;
    when the block raises, the last lines captured are logged at ERROR."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            sink.seek(0)
            tail = sink.read().decode("utf-8", "replace").splitlines()[-20:]
            if tail:
                logging.getLogger(__name__).error("lm-eval's output before the failure:\n%s",
                                                  "\n".join(tail))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _on_gpu(model: Any) -> bool:
    return str(getattr(model, "device", "cpu")).startswith("cuda")


def groups(results: Mapping[str, Any]) -> dict[str, str]:
    """Each logged subtask's requested name (a group like mmlu is scored as
    one task over all its examples)."""
    owner: dict[str, str] = {}
    for group, members in (results.get("group_subtasks") or {}).items():
        for member in members:
            owner[member] = group
    return owner


def multiple_choice_task(name: str, path: str) -> dict[str, Any]:
    """An lm-eval task config over a local JSONL of {"query", "choices", "gold"}."""
    return {
        "task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": path}},
        "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "{{query}}",
        "doc_to_choice": "{{choices}}", "doc_to_target": "{{gold}}", "target_delimiter": " ",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean",
                         "higher_is_better": True}],
    }


def reference_task(path: str) -> dict[str, Any]:
    """An lm-eval `loglikelihood_rolling` task over a local JSONL of {"text"}:
    the whole document scored in windows of the model's length."""
    return {
        "task": REFERENCE_TASK, "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": path}}, "test_split": "test",
        "output_type": "loglikelihood_rolling", "doc_to_text": "", "doc_to_target": "{{text}}",
        "metric_list": [{"metric": "bits_per_byte", "aggregation": "bits_per_byte",
                         "higher_is_better": False}],
    }


def _mean_stderr(values: Sequence[float]) -> tuple[float, float | None]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def bits_per_byte(pairs: Sequence[tuple[float, int]]) -> tuple[float, float | None]:
    """Bits per byte of (log-likelihood in nats, UTF-8 bytes) pairs, and its
    delta-method standard error (a ratio of sums over documents).

    >>> round(bits_per_byte([(-math.log(2) * 8, 4), (-math.log(2) * 4, 4)])[0], 6)
    1.5
    """
    bits = [-ll / math.log(2) for ll, _ in pairs]
    size = [float(b) for _, b in pairs]
    n, total = len(pairs), sum(size)
    ratio = sum(bits) / total
    if n < 2:
        return ratio, None
    mean_size = total / n
    residual = [x - ratio * y for x, y in zip(bits, size, strict=True)]
    var = sum(r * r for r in residual) / (n - 1) / n / (mean_size ** 2)
    return ratio, math.sqrt(var)


def scores_from_samples(samples: Mapping[str, Sequence[Mapping[str, Any]]],
                        owner: Mapping[str, str], names: Sequence[str]) -> list[Score]:
    """Scores of each requested task from lm-eval's logged samples."""
    by_task: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for task, rows in samples.items():
        by_task[owner.get(task, task)].extend(rows)
    out: list[Score] = []
    for name in names:
        rows = by_task.get(name, [])
        if not rows:
            raise RuntimeError(f"lm-eval scored no example of task {name!r}")
        if name == REFERENCE_TASK:
            value, err = bits_per_byte([tuple(r["bits_per_byte"]) for r in rows])
            out.append(Score(name, "bits_per_byte", value, err, len(rows)))
            continue
        chance = sum(1 / len(r["arguments"]) for r in rows) / len(rows)
        for metric in ("acc", "acc_norm"):
            value, err = _mean_stderr([float(r[metric]) for r in rows])
            out.append(Score(name, metric, value, err, len(rows), chance))
    return out
