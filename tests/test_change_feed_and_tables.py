"""The change feed never strands documents, and a local `output: {table: NAME}`
outlives its session (issue 17)."""

from __future__ import annotations

import json

import pytest

from prox_spark.config import load_config
from prox_spark.io.records import content_id
from prox_spark.run.job import run_pipeline
from refresh_helpers import RULES_JOB, doc, table

pytestmark = pytest.mark.spark


def run(spark, config_path, **overrides):
    return run_pipeline(load_config(config_path, overrides), spark)


def _cdf_source(spark, path, rows, schema="id string, text string"):
    (spark.createDataFrame(rows, schema).write.format("delta")
     .option("delta.enableChangeDataFeed", "true").save(path))


def test_limit_with_change_feed_leaves_no_document_behind(config_file, spark, tmp_path):
    source = str(tmp_path / "source")
    _cdf_source(spark, source, [(f"k{i}", doc(i)) for i in range(6)])
    config = config_file(tmp_path, RULES_JOB, source=source, fmt="delta",
                         input={"change_feed": True})
    first = run(spark, config, limit=2)
    assert first.refined == 2 and "stays before source version" in first.render()
    second = run(spark, config)
    assert second.refined == 4
    assert sorted(table(spark, tmp_path / "refined")) == [f"k{i}" for i in range(6)]

    from delta.tables import DeltaTable

    spark.createDataFrame([(f"n{i}", doc(50 + i)) for i in range(3)],
                          "id string, text string").write.format("delta").mode(
        "append").save(source)
    DeltaTable.forPath(spark, source).update("id = 'k0'", {"text": f"'{doc(0, 1)}'"})
    assert run(spark, config, limit=1).refined == 1
    assert run(spark, config, limit=1).refined == 1
    last = run(spark, config)
    assert (last.refined, last.documents_in) == (2, 4)  # 4 changes read, 2 already done
    rows = table(spark, tmp_path / "refined")
    assert len(rows) == 9 and rows["k0"].text == doc(0, 1)
    assert run(spark, config).documents_in == 0


def test_content_ids_follow_updates_through_the_change_feed(config_file, spark, tmp_path):
    from delta.tables import DeltaTable

    source = str(tmp_path / "source")
    _cdf_source(spark, source, [("r1", doc(1)), ("r2", doc(2)), ("r3", doc(3)),
                                ("r4", doc(3))], "key string, text string")
    config = config_file(tmp_path, RULES_JOB, source=source, fmt="delta",
                          input={"change_feed": True, "id_column": None})
    run(spark, config)
    assert sorted(table(spark, tmp_path / "refined")) == sorted(
        content_id(doc(i)) for i in (1, 2, 3))
    target = DeltaTable.forPath(spark, source)
    target.update("key = 'r1'", {"text": f"'{doc(1, 1)}'"})
    target.update("key = 'r3'", {"text": f"'{doc(4)}'"})  # r4 still holds doc(3)
    second = run(spark, config)
    assert second.deleted == 1
    assert sorted(table(spark, tmp_path / "refined")) == sorted(
        content_id(t) for t in (doc(1, 1), doc(2), doc(3), doc(4)))


def test_a_local_output_table_outlives_the_run(config_file, spark, tmp_path, monkeypatch):
    from prox_spark.io.delta import table_exists
    from prox_spark.refs import TableRef

    monkeypatch.chdir(tmp_path)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"k{i}", "text": doc(i)}) + "\n"
                              for i in range(3)))
    path = config_file(tmp_path, source=corpus, output={"table": "corpus_refined"},
                       stages=["exact_dedup"], spark={"partitions": 1})
    first = run(spark, path)
    assert first.refined == 3
    folder = tmp_path / "spark-warehouse" / "corpus_refined"
    assert table_exists(spark, TableRef(path=str(folder)))
    assert (tmp_path / "spark-warehouse" / "corpus_refined_metrics" / "_delta_log").is_dir()
    second = run(spark, path)
    assert (second.refined, second.already_refined) == (0, 3)
    assert sorted(table(spark, folder)) == ["k0", "k1", "k2"]
