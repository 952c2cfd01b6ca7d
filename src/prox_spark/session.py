"""Get a SparkSession with Delta: the cluster's own, or a local one.

On Databricks or under `spark-submit` the running session is returned as it
is, its configuration untouched. Elsewhere a local session is built with
Delta's jars taken from disk (fetched once by `scripts/setup.sh`), so
starting a session never waits on a download.

    >>> spark = get_spark()                      # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JARS_DIR_ENV = "PROX_SPARK_JARS_DIR"
CACHE_ENV = "PROX_SPARK_CACHE"


class DeltaJarsNotFound(RuntimeError):
    """No Delta jars on disk for a local session."""


def on_cluster() -> bool:
    """True on Databricks, under spark-submit, or with a session already running."""
    from pyspark.sql import SparkSession

    return (
        "DATABRICKS_RUNTIME_VERSION" in os.environ
        or "PYSPARK_GATEWAY_PORT" in os.environ
        or SparkSession.getActiveSession() is not None
    )


def find_delta_jars(jars_dir: str | Path | None = None) -> list[Path]:
    """The Delta jars for a local session: from `jars_dir`, `$PROX_SPARK_JARS_DIR`,
    or the newest complete set in the set-up cache."""
    candidates: list[Path] = []
    if jars_dir is not None:
        candidates.append(Path(jars_dir))
    elif os.environ.get(JARS_DIR_ENV):
        candidates.append(Path(os.environ[JARS_DIR_ENV]))
    else:
        cache = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "prox-spark"))
        done = sorted(cache.glob("jars-*/.complete"), key=lambda p: p.stat().st_mtime)
        candidates.extend(p.parent for p in reversed(done))
    for folder in candidates:
        jars = sorted(folder.glob("*.jar"))
        if any(j.name.startswith("delta-spark") for j in jars):
            return jars
    where = ", ".join(str(c) for c in candidates) or "the set-up cache"
    raise DeltaJarsNotFound(
        f"no Delta jars found in {where}. Run `scripts/setup.sh` once (it fetches them from "
        f"Maven Central), or set {JARS_DIR_ENV} to a folder holding delta-spark and "
        "delta-storage jars."
    )


def local_conf(jars: list[Path], workdir: Path, cores: int) -> dict[str, str]:
    """The settings of a quiet, fast local session with Delta."""
    return {
        "spark.master": f"local[{cores}]",
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(cores),
        "spark.default.parallelism": str(cores),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.memory": "4g",
        "spark.sql.warehouse.dir": str(workdir / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={workdir / 'derby'}",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.python.worker.reuse": "true",
        "spark.databricks.delta.snapshotPartitions": "2",
    }


def get_spark(
    app_name: str = "prox-spark",
    *,
    cores: int = 2,
    jars_dir: str | Path | None = None,
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Return the running session on a cluster, else a local session with Delta.

    `conf` adds or overrides settings of a local session only; a cluster's
    session is never reconfigured.
    """
    from pyspark.sql import SparkSession

    if on_cluster():
        return SparkSession.builder.getOrCreate()
    jars = find_delta_jars(jars_dir)
    # Python workers must run this interpreter, not whatever `python3` is on PATH.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    workdir = Path(tempfile.mkdtemp(prefix="prox-spark-"))
    settings = {**local_conf(jars, workdir, cores), **(conf or {})}
    builder = SparkSession.builder.appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
