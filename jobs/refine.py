"""spark-submit entry point: the same job as `prox-spark run`.

    spark-submit jobs/refine.py conf/gpu_cluster.yaml [--limit 1000 ...]

On a cluster, the cluster's session (with its Delta setup) is used as is.
"""

from __future__ import annotations

import sys

from prox_spark.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", *sys.argv[1:]]))
