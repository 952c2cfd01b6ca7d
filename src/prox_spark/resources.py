"""What a model stage asks the cluster for, and the GPU memory each engine may take.

Plain Python. Spark runs engines like this: each model stage has its own pool
of Python workers on an executor (see `stages.model_map`), a worker holds at
most one engine, and every task slot that shares a GPU has its own worker.
So at most `tasks_per_gpu` engines of each model are alive on one GPU, and
every engine must fit beside the others: vLLM's `gpu_memory_utilization` is
a share of the whole device *per engine*.

    >>> res = TaskResources(gpus_per_task=0.5)
    >>> res.tasks_per_gpu
    2
    >>> shares([("doc_model", res, None), ("chunk_model", res, None)], 0.9)
    {'doc_model': 0.225, 'chunk_model': 0.225}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from prox_spark.params import Doc, Range, check_fields

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_GPU_MEMORY_FRACTION = 0.9


@dataclass(frozen=True)
class TaskResources:
    """A model stage's task request: GPUs (fractions allowed, as Spark allows:
    0.5 puts two tasks on one GPU) and CPU cores per task."""

    gpus_per_task: Annotated[float, Range(0, open_low=True), Doc(
        "GPUs per task: a whole number, or 1/n to put n tasks on one GPU")] = 1.0
    cpus_per_task: Annotated[int, Range(1), Doc("CPU cores per task")] = 1

    def __post_init__(self) -> None:
        check_fields(self)
        gpus = self.gpus_per_task
        if gpus > 1 and gpus != int(gpus):
            raise ValueError(f"gpus_per_task above 1 must be a whole number, got {gpus}")
        if gpus < 1 and not math.isclose(1 / gpus, round(1 / gpus)):
            raise ValueError(f"gpus_per_task below 1 must be 1/n (0.5, 0.25, ...), got {gpus}")

    @property
    def tasks_per_gpu(self) -> int:
        """How many tasks of this stage Spark may run on one GPU at once."""
        return max(1, round(1 / self.gpus_per_task)) if self.gpus_per_task < 1 else 1


def shares(models: Sequence[tuple[str, TaskResources | None, float | None]],
           fraction: float = DEFAULT_GPU_MEMORY_FRACTION) -> dict[str, float]:
    """Each model's `gpu_memory_utilization`, so that all engines that can be
    alive on one GPU together take at most `fraction` of it.

    `models` are (name, resources, explicit utilization or None). Explicit
    values are kept and checked; the rest split what is left evenly. Raises
    ValueError naming the fields when the engines cannot fit.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"gpu_memory_fraction must be in (0, 1], got {fraction}")
    slots = {name: (res or TaskResources()).tasks_per_gpu for name, res, _ in models}
    fixed = sum(util * slots[name] for name, _, util in models if util is not None)
    free = [name for name, _, util in models if util is None]
    left = fraction - fixed
    if fixed > fraction + 1e-9 or (free and left <= 1e-9):
        parts = " + ".join(f"{name}.gpu_memory_utilization {util} x {slots[name]} task(s)"
                           for name, _, util in models if util is not None)
        rest = f", with nothing left for {', '.join(free)}" if free else ""
        raise ValueError(f"engines on one GPU would take {fixed:.3g} of it ({parts}), more "
                         f"than gpu_memory_fraction {fraction}{rest}")
    out = {name: float(util) for name, _, util in models if util is not None}
    engines = sum(slots[name] for name in free)
    for name in free:
        out[name] = math.floor(left / engines * 1000) / 1000
    return {name: out[name] for name, _, _ in models}


def has_gpus(spark: SparkSession) -> bool:
    """True when this driver or the cluster's executors have GPUs (Spark's
    GPU resource settings, or an NVIDIA device on this machine)."""
    import os

    conf = spark.sparkContext.getConf()
    for key in ("spark.executor.resource.gpu.amount", "spark.task.resource.gpu.amount"):
        try:
            if float(conf.get(key, "0")) > 0:
                return True
        except ValueError:
            continue
    return os.path.exists("/dev/nvidia0")
