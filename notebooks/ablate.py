# Databricks notebook source
# MAGIC %md
# MAGIC # Does refining help? Proxy-model ablations
# MAGIC Train the same small Llama from scratch on each variant of a corpus (the
# MAGIC first is the baseline: raw text; the others e.g. a prox-spark refined table),
# MAGIC for the same number of tokens and seeds, and score every checkpoint with
# MAGIC lm-eval-harness (bits per byte on held-out clean text, multiple-choice
# MAGIC accuracy). Results land in a Delta table; the report shows curves, final
# MAGIC values with 95% intervals and the tokens each variant needs to match the
# MAGIC baseline. Run it again to resume: finished proxies are never trained twice.

# COMMAND ----------

# MAGIC %pip install prox-spark[ablate]

# COMMAND ----------

dbutils.widgets.text("variants", '[{"name": "raw", "input": {"table": "main.corpus.raw_web"}}, '  # noqa: F821
                     '{"name": "prox", "table": {"table": "main.corpus.refined_web"}}]',
                     "Variants (JSON list; the first is the baseline)")
dbutils.widgets.text("output", "main.corpus.ablation_results", "Results table or path")  # noqa: F821
dbutils.widgets.text("work_dir", "/Volumes/main/corpus/ablations/work",  # noqa: F821
                     "Work folder (checkpoints, samples)")
dbutils.widgets.text("tokens", "2000000", "Training tokens per variant")  # noqa: F821
dbutils.widgets.text("seeds", "0,1", "Seeds")  # noqa: F821
dbutils.widgets.text("tokenizer", "", "Tokenizer folder (empty: one trained on the samples)")  # noqa: F821
dbutils.widgets.text("model", '{"hidden_size": 256, "layers": 4, "heads": 4, "seq_len": 512}',  # noqa: F821
                     "Proxy shape (JSON)")
dbutils.widgets.text("train", '{"batch_size": 16, "learning_rate": 0.001, '  # noqa: F821
                     '"eval_every_tokens": 500000}', "Training recipe (JSON)")
dbutils.widgets.text("eval", '{"tasks": ["hellaswag", "arc_easy"], "limit": 1000}',  # noqa: F821
                     "Evaluation (JSON: reference, tasks, task_files, limit)")
dbutils.widgets.dropdown("plan_only", "true", ["true", "false"],  # noqa: F821
                         "Only plan (FLOPs, time; nothing written)")

# COMMAND ----------

import json

from prox_spark.ablate import parse_ablate, plan_ablation, run_ablation

w = dbutils.widgets.get  # noqa: F821


def where(value: str) -> dict:
    """A widget naming a catalog table or a path."""
    return {"path": value} if "/" in value else {"table": value}


section = {
    "output": where(w("output")),
    "variants": json.loads(w("variants")),
    "tokens": int(w("tokens")),
    "seeds": [int(s) for s in w("seeds").split(",") if s.strip()],
    "model": json.loads(w("model") or "{}"),
    "train": json.loads(w("train") or "{}"),
    "eval": json.loads(w("eval") or "{}"),
    **({"work_dir": w("work_dir")} if w("work_dir").strip() else {}),
    **({"tokenizer": w("tokenizer")} if w("tokenizer").strip() else {}),
}
config = parse_ablate({"ablate": section})
print(plan_ablation(config, spark).render())  # noqa: F821

# COMMAND ----------

# MAGIC %md
# MAGIC ## Train, score and report
# MAGIC Skipped while `plan_only` is true. The report is also written beside the
# MAGIC results table (or in the work folder for a catalog table).

# COMMAND ----------

if w("plan_only") == "false":
    summary = run_ablation(config, spark)  # noqa: F821
    print(summary.render())
    displayHTML(open(summary.report, encoding="utf-8").read())  # noqa: F821
