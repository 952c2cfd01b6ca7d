# Databricks notebook source
# MAGIC %md
# MAGIC # Refine a corpus with ProX on this cluster
# MAGIC A small model writes a program per document (`drop_doc()`,
# MAGIC `remove_lines(...)`, `normalize(...)`); a safe interpreter applies it.
# MAGIC Needs a GPU cluster with `spark.task.resource.gpu.amount=1` and
# MAGIC `%pip install prox-spark[vllm]`.

# COMMAND ----------

from prox_spark.engine import EngineConfig
from prox_spark.program import ChunkPolicy
from prox_spark.resources import TaskResources, shares
from prox_spark.stages import ChunkRefiner, DocRefiner

gpu = TaskResources(gpus_per_task=1)
# Both engines can be alive on one GPU at once: split its memory between them.
split = shares([("doc", gpu, None), ("chunk", gpu, None)], 0.9)
doc_engine = EngineConfig(model="gair-prox/web-doc-refining-lm", dtype="bfloat16",
                          gpu_memory_utilization=split["doc"])
chunk_engine = EngineConfig(model="gair-prox/web-chunk-refining-lm", dtype="bfloat16",
                            gpu_memory_utilization=split["chunk"])

# COMMAND ----------

raw = spark.read.table("main.corpus.raw_web").select("id", "text")  # noqa: F821
refined = (
    raw.repartition(64)
    .transform(DocRefiner(doc_engine, resources=gpu))
    .transform(ChunkRefiner(chunk_engine, ChunkPolicy(), resources=gpu))
)
# The model stages are expensive and non-deterministic: persist before more
# than one action.
refined = refined.persist()
display(refined.groupBy("status").count())  # noqa: F821

# COMMAND ----------

# MAGIC %md
# MAGIC Or run the whole job (Delta MERGE, metrics table, incremental re-runs)
# MAGIC from a YAML config:

# COMMAND ----------

from prox_spark.config import load_config
from prox_spark.pipeline import run_pipeline

summary = run_pipeline(load_config("/Workspace/prox-spark/conf/gpu_cluster.yaml"))
print(summary.render())
