"""The Databricks notebooks run end to end as plain Python, with a stand-in
`dbutils.widgets`, local Spark and the tiny trained model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prox_spark.testing.databricks import StandInWidgets, run_notebook
from refiner_cases import GOOD, NOISY, SPAM, training_pairs

pytestmark = [pytest.mark.spark, pytest.mark.vllm]
ROOT = Path(__file__).resolve().parents[1]


def test_stand_in_widgets_return_defaults_or_the_values_given():
    widgets = StandInWidgets({"limit": 5})
    widgets.text("limit", "", "Documents")
    widgets.dropdown("fmt", "delta", ["delta", "jsonl"], "Format")
    assert (widgets.get("limit"), widgets.get("fmt")) == ("5", "delta")
    with pytest.raises(KeyError, match="no widget named 'other'"):
        widgets.get("other")


def test_refine_then_inspect_notebooks_run_end_to_end(spark, trained_model, tmp_path):
    model = str(trained_model(training_pairs()))
    source = tmp_path / "corpus.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n"
                              for i, t in (("spam", SPAM), ("good", GOOD), ("noisy", NOISY))))
    out = str(tmp_path / "refined")
    engine = {"dtype": "float32", "kv_cache_gib": 0.25, "enforce_eager": True,
              "max_num_seqs": 32, "max_new_tokens": 64,
              # One setting for both models: prompt + answer within the context.
              "max_prompt_tokens": 1800}
    ran = run_notebook(ROOT / "notebooks" / "refine_corpus.py", spark, input=str(source),
                       input_format="jsonl", output=out, doc_model=model, chunk_model=model,
                       gpus_per_task=0, engine=json.dumps(engine))
    assert (ran["summary"].refined, ran["summary"].dropped, ran["summary"].edited) == (3, 1, 1)
    report = ran["shown"][-1]
    assert report.startswith("<!DOCTYPE html>") and report.count('class="bar"') >= 20

    seen = run_notebook(ROOT / "notebooks" / "inspect_refined.py", spark, output=out)
    statuses, reasons, page = seen["shown"]
    assert {r.status: r["count"] for r in statuses.collect()} == {
        "kept": 1, "edited": 1, "dropped": 1}
    assert [(r.stage, r.reason, r["count"]) for r in reasons.collect()] == [
        ("prox_doc", "drop_doc()", 1)]
    assert '<del class="dropped"' in page and '<del class="removed"' in page
