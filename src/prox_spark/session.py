"""Get a SparkSession with Delta: the cluster's own, or a local one.

On Databricks or under `spark-submit` the running session is returned as it
is, its configuration untouched. Elsewhere a local session is built with
Delta's jars taken from disk (fetched once by `scripts/setup.sh`), so
starting a session never waits on a download.

    >>> spark = get_spark()                      # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prox_spark.errors import DeltaJarsNotFound, DeltaMissing
from prox_spark.generation.logs import verbose

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
JARS_DIR_ENV = "PROX_SPARK_JARS_DIR"
CACHE_ENV = "PROX_SPARK_CACHE"


LOCAL_WAREHOUSE = "spark-warehouse"
# Errors only on the console from the JVM's start (see the file).
QUIET_LOG4J = Path(__file__).with_name("log4j2.properties")
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


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


_workdir: Path | None = None


def session_workdir() -> Path:
    """The temporary folder of this process's local sessions (warehouse,
    Derby files): made on first use, shared by every later local session of
    the process, and removed when the process exits, also after a failed or
    interrupted run (issue 17: one folder per run was left behind)."""
    global _workdir
    if _workdir is None or not _workdir.is_dir():
        _workdir = Path(tempfile.mkdtemp(prefix="prox-spark-"))
        atexit.register(shutil.rmtree, _workdir, ignore_errors=True)
    return _workdir


def local_conf(jars: list[Path], workdir: Path, cores: int) -> dict[str, str]:
    """The settings of a quiet, fast local session with Delta."""
    return {
        "spark.master": f"local[{cores}]",
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.shuffle.partitions": str(cores),
        "spark.default.parallelism": str(cores),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.memory": "4g",
        "spark.sql.warehouse.dir": str(workdir / "warehouse"),
        "spark.driver.extraJavaOptions": " ".join(
            [f"-Dderby.system.home={workdir / 'derby'}"]
            + ([] if verbose() else [f"-Dlog4j2.configurationFile={QUIET_LOG4J}"])),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.python.worker.reuse": "true",
        # Batch claims are renewed by Spark jobs in a pool of their own
        # (io.claims.CLAIMS_POOL), which FAIR mode serves between model tasks.
        "spark.scheduler.mode": "FAIR",
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
    workdir = session_workdir()
    settings = {**local_conf(jars, workdir, cores), **(conf or {})}
    builder = SparkSession.builder.appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    _quiet_merge_conflicts(spark)
    return spark


def job_session(app_name: str, partitions: int, spark_conf: Mapping[str, str]) -> SparkSession:
    """The session of a prox-spark job (refine, annotate, train, evaluate):
    the cluster's, or a local one with `partitions` shuffle partitions, no
    console progress bar and the config's `spark_conf` on top."""
    return get_spark(app_name, conf={"spark.sql.shuffle.partitions": str(partitions),
                                     "spark.ui.showConsoleProgress": "false", **spark_conf})


# Delta's MERGE logs a commit it lost to a concurrent writer as an ERROR
# with the whole stack trace (about 175 lines), then raises the exception,
# which prox-spark retries or reports itself (claims, batch commits).
_MERGE_LOGGER = "org.apache.spark.sql.delta.commands.MergeIntoCommand"


def _quiet_merge_conflicts(spark: SparkSession) -> None:
    """Turn off the MERGE command's own error log in a local session (the
    error still reaches the caller as an exception)."""
    try:
        jvm = spark.sparkContext._jvm
        level = jvm.org.apache.logging.log4j.Level.OFF
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(_MERGE_LOGGER, level)
    except Exception as exc:  # another logging backend: the traces stay
        log.debug("could not quiet %s: %s", _MERGE_LOGGER, exc)


def require_delta(spark: SparkSession) -> None:
    """Raise `DeltaMissing`, saying how to add Delta, when the session has no
    Delta classes or no Delta SQL extension (e.g. a bare `spark-submit`).

    Databricks runtimes ship Delta built in and are trusted as they are; a
    Spark Connect session is checked by the server when it runs a query.
    """
    if "DATABRICKS_RUNTIME_VERSION" in os.environ:
        return
    try:
        jvm = spark.sparkContext._jvm
    except Exception:  # Spark Connect: no JVM here
        return
    if jvm is None:
        return
    from py4j.java_gateway import JavaClass

    missing = []
    if not isinstance(jvm.org.apache.spark.sql.delta.DeltaLog, JavaClass):
        missing.append("the Delta jars are not on the classpath")
    if DELTA_EXTENSION not in (spark.conf.get("spark.sql.extensions", "") or ""):
        missing.append(f"spark.sql.extensions does not name {DELTA_EXTENSION}")
    if not missing:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        delta = version("delta-spark")  # the Python API's version names the matching jars
    except PackageNotFoundError:
        delta = "4.0.0"
    raise DeltaMissing(
        "Delta Lake is missing from this Spark session (" + "; ".join(missing) + "). Add it "
        f"to the spark-submit command: --packages io.delta:delta-spark_2.13:{delta} (or --jars "
        "with the delta-spark and delta-storage jars that scripts/setup.sh fetched into "
        f"$PROX_SPARK_CACHE/jars-*) --conf spark.sql.extensions={DELTA_EXTENSION} "
        f"--conf spark.sql.catalog.spark_catalog={DELTA_CATALOG}"
    )


def persistent_ref(spark: SparkSession, ref: Any) -> Any:
    """`ref` itself, or for a catalog table in a session whose catalog lives
    in memory only (a local session: no metastore), the Delta folder
    `./spark-warehouse/<name>` under the working directory, so the table
    outlives the session and the next run finds it."""
    if ref.table is None:
        return ref
    if spark.conf.get("spark.sql.catalogImplementation", "in-memory") != "in-memory":
        return ref
    try:
        if spark.catalog.tableExists(ref.table):  # this session's own (e.g. a notebook's)
            return ref
    except Exception:  # a catalog name this session does not have
        pass
    folder = Path.cwd() / LOCAL_WAREHOUSE / Path(*ref.table.split("."))
    return type(ref)(path=str(folder))
