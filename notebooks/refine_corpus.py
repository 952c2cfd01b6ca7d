# Databricks notebook source
# MAGIC %md
# MAGIC # Refine a corpus with ProX
# MAGIC A small model writes a program per document (`drop_doc()`,
# MAGIC `remove_lines(...)`, `normalize(...)`); a safe interpreter applies it, and
# MAGIC the result is MERGEd into a Delta table, batch by batch. Set the widgets
# MAGIC above, then run all. On a GPU cluster the model stages ask Spark for a GPU
# MAGIC per task; the two engines split each GPU's memory.

# COMMAND ----------

# MAGIC %pip install prox-spark[vllm]

# COMMAND ----------

dbutils.widgets.text("input", "main.corpus.raw_web", "Input table or path")  # noqa: F821
dbutils.widgets.dropdown("input_format", "delta", ["delta", "parquet", "jsonl"],  # noqa: F821
                         "Input format")
dbutils.widgets.text("output", "main.corpus.refined_web", "Output table or path")  # noqa: F821
dbutils.widgets.text("doc_model", "gair-prox/web-doc-refining-lm", "Doc model")  # noqa: F821
dbutils.widgets.text("chunk_model", "gair-prox/web-chunk-refining-lm",  # noqa: F821
                     "Chunk model")
dbutils.widgets.text("limit", "", "Documents to refine (empty: all pending)")  # noqa: F821
dbutils.widgets.text("stages", "prox_doc,prox_chunk", "Stages, in order")  # noqa: F821
dbutils.widgets.text("gpus_per_task", "1", "GPUs per model task (0: none)")  # noqa: F821
dbutils.widgets.text("engine", "{}", "Extra engine settings (JSON)")  # noqa: F821

# COMMAND ----------

import json

from prox_spark.config import parse_config
from prox_spark.report.page import gather, render
from prox_spark.run.job import run_pipeline

w = dbutils.widgets.get  # noqa: F821


def where(value: str) -> dict:
    """A widget naming a catalog table or a path."""
    return {"path": value} if "/" in value else {"table": value}


gpus = float(w("gpus_per_task") or 0)
engine = {"dtype": "bfloat16" if gpus else "float32", **json.loads(w("engine") or "{}")}
if gpus:
    engine["resources"] = {"gpus_per_task": gpus, "cpus_per_task": 1}
raw = {
    "input": {**where(w("input")), "format": w("input_format")},
    "output": where(w("output")),
    "doc_model": {"model": w("doc_model"), **engine},
    "chunk_model": {"model": w("chunk_model"), **engine},
    "stages": [s.strip() for s in w("stages").split(",") if s.strip()],
    **({"limit": int(w("limit"))} if w("limit").strip() else {}),
}
config = parse_config(raw)
summary = run_pipeline(config, spark)  # noqa: F821
print(summary.render())

# COMMAND ----------

# MAGIC %md
# MAGIC ## This run's report
# MAGIC Plots, a sample of documents per status with removed lines struck through,
# MAGIC and the settings. `prox-spark report OUTPUT --run N` writes any past run's.

# COMMAND ----------

displayHTML(render(gather(spark, config.output, config.metrics)))  # noqa: F821
