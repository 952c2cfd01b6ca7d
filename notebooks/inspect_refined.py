# Databricks notebook source
# MAGIC %md
# MAGIC # Inspect a refined table
# MAGIC What the refinement did: documents by status, why documents were dropped,
# MAGIC and a few documents with their edits marked.

# COMMAND ----------

dbutils.widgets.text("output", "main.corpus.refined_web", "Refined table or path")  # noqa: F821
dbutils.widgets.text("sample", "3", "Documents shown per status")  # noqa: F821

# COMMAND ----------

from pyspark.sql import functions as F

from prox_spark.config import TableRef
from prox_spark.io.delta import read_table
from prox_spark.report.page import gather, render

value = dbutils.widgets.get("output")  # noqa: F821
output = TableRef(path=value) if "/" in value else TableRef(table=value)
metrics = TableRef(path=f"{value}_metrics") if output.path else TableRef(table=f"{value}_metrics")
refined = read_table(spark, output)  # noqa: F821

# COMMAND ----------

statuses = refined.groupBy("status").count().orderBy(F.desc("count"))
display(statuses)  # noqa: F821

# COMMAND ----------

reasons = (refined.select(F.explode("rule_edits").alias("e")).where(F.col("e.reason").isNotNull())
           .groupBy(F.col("e.stage").alias("stage"), F.col("e.reason").alias("reason")).count()
           .unionByName(refined.where((F.col("status") == "dropped")
                                      & F.col("doc_program").contains("drop_doc("))
                        .select(F.lit("prox_doc").alias("stage"),
                                F.lit("drop_doc()").alias("reason")).groupBy("stage", "reason")
                        .count())
           .orderBy(F.desc("count")))
display(reasons)  # noqa: F821

# COMMAND ----------

# MAGIC %md
# MAGIC ## Documents of the last run, with their edits
# MAGIC Struck-through lines were removed; highlighted strings were normalized.

# COMMAND ----------

displayHTML(render(gather(spark, output, metrics,  # noqa: F821
                          sample=int(dbutils.widgets.get("sample")))))  # noqa: F821
