"""Run a model over a DataFrame's Arrow batches: GPU only where a model runs.

A model stage is one `mapInArrow` that appends its columns to each batch
(other columns pass through untouched, never converted). With
`TaskResources`, it runs under a Spark stage-level `ResourceProfile`
asking for GPUs, between two shuffles, so the rule, dedup and interpreter
stages around it keep running on plain CPU task slots. Where the cluster
cannot honour a profile (local mode, dynamic allocation), that is logged
once and the stage runs without it.

Each model also gets its own pool of Python workers on every executor
(Spark keeps one pool per worker environment, and the pool name is put in
that environment), so a worker only ever holds the engine of its own
model, and a task never waits on a worker busy with another model.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from prox_spark.resources import TaskResources

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)
POOL_ENV = "PROX_SPARK_ENGINE_POOL"
_SAID: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _SAID:
        _SAID.add(message)
        log.warning(message)


def profile_support(spark: Any) -> str | None:
    """None if stage-level resource profiles work on this cluster, else why not."""
    try:
        conf = spark.sparkContext.getConf()
    except Exception:
        return "this session exposes no SparkContext (Spark Connect)"
    master = conf.get("spark.master", "")
    if master == "local" or master.startswith("local["):
        return f"local mode ({master}) cannot honour stage-level resource profiles"
    if conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        return "task resource profiles need spark.dynamicAllocation.enabled=false"
    return None


@functools.lru_cache(maxsize=16)
def task_profile(resources: TaskResources) -> Any:
    """A Spark `ResourceProfile` requesting `resources` for each task (one
    per distinct request: Spark keeps every profile it is given)."""
    from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests

    requests = TaskResourceRequests().cpus(resources.cpus_per_task)
    requests = requests.resource("gpu", float(resources.gpus_per_task))
    return ResourceProfileBuilder().require(requests).build


@contextmanager
def engine_pool(spark: Any, name: str) -> Iterator[None]:
    """Python UDFs created inside get their own worker pool, named `name`."""
    try:
        environment = spark.sparkContext.environment
    except Exception:
        yield
        return
    before = environment.get(POOL_ENV)
    environment[POOL_ENV] = name
    try:
        yield
    finally:
        if before is None:
            environment.pop(POOL_ENV, None)
        else:
            environment[POOL_ENV] = before


def append_columns(batch: pa.RecordBatch, columns: Mapping[str, tuple[list[Any], str]]
                   ) -> pa.RecordBatch:
    """`batch` with new columns (name -> (values, Spark type: "string" or
    "array<string>")) after its own."""
    import pyarrow as pa

    kinds = {"string": pa.string(), "array<string>": pa.list_(pa.string()),
             "boolean": pa.bool_(), "array<boolean>": pa.list_(pa.bool_())}
    arrays = list(batch.columns)
    names = list(batch.schema.names)
    for name, (values, kind) in columns.items():
        arrays.append(pa.array(values, type=kinds[kind]))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def map_batches(df: DataFrame, fn: Callable[[Iterator[pa.RecordBatch]], Iterator[Any]],
                added: Mapping[str, str], *, pool: str,
                resources: TaskResources | None = None) -> DataFrame:
    """`df` with the columns `added` (name -> "string", "boolean" or an array of either)
    computed by `fn` over Arrow batches, on GPUs if `resources` asks for them."""
    from pyspark.sql.types import ArrayType, BooleanType, StringType, StructType

    kinds = {"string": StringType(), "array<string>": ArrayType(StringType()),
             "boolean": BooleanType(), "array<boolean>": ArrayType(BooleanType())}
    schema = StructType(list(df.schema.fields))
    for name, kind in added.items():
        schema = schema.add(name, kinds[kind])
    spark = df.sparkSession
    profile = None
    if resources is not None:
        why_not = profile_support(spark)
        if why_not is None:
            profile = task_profile(resources)
        else:
            _say_once(f"model stages run without their GPU resource profile: {why_not}")
    if profile is not None:
        parts = _shuffle_partitions(spark)
        df = df.repartition(parts)
    with engine_pool(spark, pool):
        out = df.mapInArrow(fn, schema, profile=profile) if profile is not None \
            else df.mapInArrow(fn, schema)
    if profile is not None:
        # Whatever follows (interpreter, rules) goes back to CPU task slots.
        out = out.repartition(parts)
    return out


def _shuffle_partitions(spark: Any) -> int:
    """spark.sql.shuffle.partitions (asking the DataFrame for its partition
    count instead would run its plan, model included)."""
    try:
        return max(1, int(spark.conf.get("spark.sql.shuffle.partitions")))
    except (TypeError, ValueError):  # "auto" on some platforms
        return max(1, int(spark.sparkContext.defaultParallelism))


def task_info() -> dict[str, Any]:
    """Stage, partition and attempt of the running Spark task (for the engine log)."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None:
        return {}
    return {"stage": ctx.stageId(), "partition": ctx.partitionId(),
            "attempt": ctx.attemptNumber(), "task_attempt_id": ctx.taskAttemptId()}
