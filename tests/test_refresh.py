"""Scheduled refreshes in one process: bad records, duplicate ids, source changes
(JSONL and a Delta change feed), dedup against the table, stale dedup
decisions, --limit, empty input, schema upgrades, exactly-once metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prox_spark.config import load_config
from prox_spark.errors import CommitFailed
from prox_spark.io.delta import merge_batch, read_table, table_version
from prox_spark.refs import TableRef
from prox_spark.run.dry_run import dry_run
from prox_spark.run.job import plan_work, run_pipeline
from prox_spark.run.refined_table import RefinedTable
from refresh_helpers import RULES_JOB, doc, table, write_jsonl

pytestmark = pytest.mark.spark


def run(spark, config_path: Path, **overrides):
    return run_pipeline(load_config(config_path, overrides), spark)


def test_bad_records_become_error_rows_and_nothing_collapses(config_file, spark, tmp_path):
    lines = [
        json.dumps({"id": "a", "text": doc(1)}).encode(),
        json.dumps({"id": "b", "text": doc(2)}).encode(),
        b'{"id": "broken", "text": "no closing quote}',
        b'{"id": "u1", "text": "caf\xe9"}',
        json.dumps({"text": doc(3)}).encode(),                 # no id
        json.dumps({"id": None, "text": doc(4)}).encode(),     # null id
        json.dumps({"id": "num", "text": 12345}).encode(),
        json.dumps({"id": "list", "text": ["x", "y"]}).encode(),
        json.dumps({"id": "d", "text": doc(5)}).encode(),      # same id, other text
        json.dumps({"id": "d", "text": doc(6)}).encode(),
        json.dumps({"id": "e", "text": doc(7)}).encode(),      # same id, same text
        json.dumps({"id": "e", "text": doc(7)}).encode(),
        b"",
        json.dumps({"id": "c", "text": doc(8)}).encode(),
    ]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(b"\n".join(lines) + b"\n")
    config = config_file(tmp_path, RULES_JOB, source=corpus)
    summary = run(spark, config)
    rows = table(spark, tmp_path / "refined")
    good = {"a", "b", "c", "e"}
    assert good <= set(rows)
    for i in good:
        assert rows[i].text is not None and rows[i].error is None
    assert rows["u1"].text is None and "UTF-8" in rows["u1"].error
    assert "not a string" in rows["num"].error and "not a string" in rows["list"].error
    assert rows["d"].text is None and "2 records with 2 different texts" in rows["d"].error
    line_rows = [r for i, r in rows.items() if i.startswith("line:")]
    assert sorted(r.error.split(":")[0].split(" (")[0] for r in line_rows) == [
        "line is not valid JSON", "record has no id", "record has no id"]
    assert all(r.status == "dropped" for r in line_rows)
    assert len(rows) == 11
    assert summary.invalid_rows == 7
    assert (summary.duplicate_records, summary.conflicting_ids) == (2, 1)
    assert "invalid records" in summary.render() and "duplicate ids" in summary.render()

    version = table_version(spark, TableRef(path=str(tmp_path / "refined")))
    again = run(spark, config)
    assert again.refined == 0
    assert table_version(spark, TableRef(path=str(tmp_path / "refined"))) == version
    assert len(table(spark, tmp_path / "refined")) == 11


@pytest.mark.parametrize("rule, expected", [("first", 5), ({"last_by": "v"}, 4)])
def test_duplicate_ids_resolved_by_the_configured_rule(config_file, spark, tmp_path, rule,
                                                       expected):
    corpus = write_jsonl(tmp_path / "c.jsonl", [
        {"id": "d", "text": doc(5), "v": 1},
        {"id": "d", "text": doc(4), "v": 9},
        {"id": "d", "text": doc(6), "v": 3},
    ])
    summary = run(spark, config_file(tmp_path, RULES_JOB, source=corpus,
                                     input={"on_duplicate_id": rule}))
    rows = table(spark, tmp_path / "refined")
    assert rows["d"].text == doc(expected)
    assert (summary.duplicate_records, summary.conflicting_ids) == (2, 1)


def test_source_changes_refine_and_delete_exactly_those_rows(config_file, spark, tmp_path):
    base = [{"id": f"k{i:02d}", "text": doc(i)} for i in range(20)]
    corpus = write_jsonl(tmp_path / "c.jsonl", base)
    config = config_file(tmp_path, RULES_JOB, source=corpus, commit_every=7)
    first = run(spark, config)
    assert (first.refined, first.batches) == (20, 3)
    assert (first.new_documents, first.changed_documents) == (20, 0)
    before = table(spark, tmp_path / "refined")

    changed = [dict(r) for r in base[5:]]                     # k00..k04 deleted
    for r in changed[:5]:                                       # k05..k09 modified
        r["text"] = doc(int(r["id"][1:]), variant=1)
    changed += [{"id": f"n{i:02d}", "text": doc(100 + i)} for i in range(10)]
    write_jsonl(corpus, changed)
    plan = dry_run(load_config(config), spark)
    assert (plan.new, plan.changed, plan.refreshed, plan.deleted) == (10, 5, 0, 5)
    same_plan = plan_work(spark, load_config(config))
    second = run(spark, config)
    after = table(spark, tmp_path / "refined")
    assert (second.refined, second.deleted) == (15, 5)
    assert (second.new_documents, second.changed_documents, second.refreshed_documents) == (
        10, 5, 0)
    assert "of which        10 new, 5 changed, 0 refreshed" in second.render()
    batches = [r for r in read_table(spark, TableRef(path=str(tmp_path / "refined_metrics")))
               .collect() if r.kind == "batch" and r.run_id == second.run_id]
    assert [sum(getattr(r, c) for r in batches) for c in (
        "new_documents", "changed_documents", "refreshed_documents")] == [10, 5, 0]
    assert sorted(after) == sorted(r["id"] for r in changed)
    for i in range(5, 10):
        assert after[f"k{i:02d}"].text == doc(i, variant=1)
    for i in range(10, 20):
        assert after[f"k{i:02d}"].refined_at == before[f"k{i:02d}"].refined_at
    # A second run with the same plan deletes (and counts) nothing more.
    version = table_version(spark, TableRef(path=str(tmp_path / "refined")))
    cfg, fp, work = same_plan
    assert RefinedTable(spark, cfg.output).delete_gone(
        work.deleted, run_id="other-run", fp=fp, id_type=work.id_type,
        retries=cfg.commit_retries) == 0
    assert table_version(spark, TableRef(path=str(tmp_path / "refined"))) == version
    assert run(spark, config).refined == 0


def test_keep_leaves_rows_of_deleted_documents(config_file, spark, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": doc(1)},
                                                {"id": "b", "text": doc(2)}])
    config = config_file(tmp_path, RULES_JOB, source=corpus, input={"on_source_delete": "keep"})
    run(spark, config)
    write_jsonl(corpus, [{"id": "a", "text": doc(1)}])
    assert run(spark, config).deleted == 0
    assert sorted(table(spark, tmp_path / "refined")) == ["a", "b"]


def test_change_feed_source_reads_only_what_changed(config_file, spark, tmp_path):
    from delta.tables import DeltaTable

    source = str(tmp_path / "source")
    rows = [(f"k{i:02d}", doc(i)) for i in range(20)]
    (spark.createDataFrame(rows, "id string, text string").write.format("delta")
     .option("delta.enableChangeDataFeed", "true").save(source))
    config = config_file(tmp_path, RULES_JOB, source=source, fmt="delta",
                         input={"change_feed": True})
    first = run(spark, config)
    assert (first.documents_in, first.refined) == (20, 20)
    before = table(spark, tmp_path / "refined")

    target = DeltaTable.forPath(spark, source)
    target.delete("id < 'k05'")
    for i in range(5, 10):
        target.update(f"id = 'k{i:02d}'", {"text": f"'{doc(i, variant=1)}'"})
    new = spark.createDataFrame([(f"n{i:02d}", doc(100 + i)) for i in range(10)],
                                "id string, text string")
    new.write.format("delta").mode("append").save(source)
    second = run(spark, config)
    after = table(spark, tmp_path / "refined")
    # Only the 15 changed rows were read, and the 5 deletes applied.
    assert (second.documents_in, second.refined, second.deleted) == (15, 15, 5)
    assert len(after) == 25 and not any(i < "k05" for i in after if i.startswith("k"))
    for i in range(5, 10):
        assert after[f"k{i:02d}"].text == doc(i, variant=1)
    for i in range(10, 20):
        assert after[f"k{i:02d}"].refined_at == before[f"k{i:02d}"].refined_at
    third = run(spark, config)
    assert (third.documents_in, third.refined, third.deleted) == (0, 0, 0)


def test_change_feed_must_be_enabled_on_the_source(config_file, spark, tmp_path):
    from prox_spark.config import ConfigError

    source = str(tmp_path / "plain")
    spark.createDataFrame([("a", doc(1))], "id string, text string").write.format(
        "delta").save(source)
    with pytest.raises(ConfigError, match="enableChangeDataFeed"):
        run(spark, config_file(tmp_path, RULES_JOB, source=source, fmt="delta",
                               input={"change_feed": True}))


def test_new_copies_of_refined_documents_are_the_ones_dropped(config_file, spark, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "m-old", "text": doc(1)},
                                                {"id": "z-other", "text": doc(2)}])
    config = config_file(tmp_path, RULES_JOB, source=corpus, stages=["exact_dedup", "near_dedup"])
    run(spark, config)
    before = table(spark, tmp_path / "refined")
    near = doc(1).replace("line 3:", "line three:")
    write_jsonl(corpus, [{"id": "m-old", "text": doc(1)}, {"id": "z-other", "text": doc(2)},
                         {"id": "a-exact", "text": doc(1).upper()},
                         {"id": "a-near", "text": near}])
    summary = run(spark, config)
    after = table(spark, tmp_path / "refined")
    assert summary.refined == 2
    assert (after["a-exact"].status, after["a-exact"].duplicate_of) == ("dropped", "m-old")
    assert (after["a-near"].status, after["a-near"].duplicate_of) == ("dropped", "m-old")
    assert [e.stage for e in after["a-near"].rule_edits] == ["near_duplicate"]
    assert after["m-old"] == before["m-old"]


def test_duplicate_of_survives_exact_then_near_dedup(config_file, spark, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": doc(1)},
                                                {"id": "b", "text": doc(1)}])
    run(spark, config_file(tmp_path, RULES_JOB, source=corpus,
                           stages=["exact_dedup", "near_dedup"]))
    assert table(spark, tmp_path / "refined")["b"].duplicate_of == "a"


def test_stale_dedup_decisions_are_taken_again(config_file, spark, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": doc(1)},
                                                {"id": "b", "text": doc(1)},
                                                {"id": "c", "text": doc(1)}])
    config = config_file(tmp_path, RULES_JOB, source=corpus)
    run(spark, config)
    rows = table(spark, tmp_path / "refined")
    assert (rows["b"].duplicate_of, rows["c"].duplicate_of) == ("a", "a")
    # The keeper changes: b and c are decided again (b keeps the text, c is its copy).
    write_jsonl(corpus, [{"id": "a", "text": doc(2)}, {"id": "b", "text": doc(1)},
                         {"id": "c", "text": doc(1)}])
    summary = run(spark, config)
    rows = table(spark, tmp_path / "refined")
    assert summary.refined == 3
    assert (rows["a"].text, rows["b"].text, rows["b"].duplicate_of) == (doc(2), doc(1), None)
    assert (rows["c"].text, rows["c"].duplicate_of) == (None, "b")
    # The keeper leaves the source: its copy is decided again and kept.
    write_jsonl(corpus, [{"id": "a", "text": doc(2)}, {"id": "c", "text": doc(1)}])
    summary = run(spark, config)
    rows = table(spark, tmp_path / "refined")
    assert summary.deleted == 1 and sorted(rows) == ["a", "c"]
    assert (rows["c"].text, rows["c"].duplicate_of) == (doc(1), None)


def test_limit_takes_pending_documents_so_a_schedule_moves_forward(config_file, spark, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl",
                         [{"id": f"k{i}", "text": doc(i)} for i in range(10)])
    config = config_file(tmp_path, RULES_JOB, source=corpus)
    runs = [run(spark, config, limit=4) for _ in range(4)]
    assert [r.refined for r in runs] == [4, 4, 2, 0]
    assert [r.already_refined for r in runs] == [0, 4, 8, 10]
    assert "6 more documents wait beyond --limit 4" in runs[0].render()
    assert len(table(spark, tmp_path / "refined")) == 10


def test_empty_input_is_a_successful_run(config_file, spark, tmp_path):
    corpus = tmp_path / "empty.jsonl"
    corpus.write_text("")
    summary = run(spark, config_file(tmp_path, RULES_JOB, source=corpus))
    assert (summary.documents_in, summary.refined) == (0, 0)
    assert "holds no documents" in summary.render()


def test_rules_only_runs_count_words(config_file, spark, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": doc(1)},
                                                {"id": "b", "text": doc(1)}])
    summary = run(spark, config_file(tmp_path, RULES_JOB, source=corpus))
    words = len(doc(1).split())
    assert (summary.words_before, summary.words_after) == (2 * words, words)


def test_an_older_table_gains_new_columns_without_a_rewrite(config_file, spark, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": doc(1)},
                                                {"id": "b", "text": doc(2)}])
    config = config_file(tmp_path, RULES_JOB, source=corpus)
    run(spark, config)
    out = str(tmp_path / "refined")
    old = read_table(spark, TableRef(path=out)).drop("dedup_hash", "minhash")
    older = str(tmp_path / "older")
    old.write.format("delta").save(older)
    files = set(spark.read.format("delta").load(older).inputFiles())
    write_jsonl(corpus, [{"id": "a", "text": doc(1)}, {"id": "b", "text": doc(2)},
                         {"id": "c", "text": doc(3)}])
    summary = run(spark, config, output=older)
    assert summary.refined == 1
    upgraded = spark.read.format("delta").load(older)
    assert {"dedup_hash", "minhash"} <= set(upgraded.columns)
    assert len(table(spark, older)) == 3
    history = spark.sql(f"DESCRIBE HISTORY delta.`{older}`").collect()
    assert "ADD COLUMNS" in {h.operation for h in history}
    assert files <= set(upgraded.inputFiles())  # the old rows' files were not rewritten


def test_metrics_come_from_the_commits_exactly_once(config_file, spark, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl",
                         [{"id": f"k{i}", "text": doc(i)} for i in range(9)])
    config = config_file(tmp_path, RULES_JOB, source=corpus, commit_every=4)
    summary = run(spark, config)
    metrics = str(tmp_path / "refined_metrics")
    rows = spark.read.format("delta").load(metrics).collect()
    batches = sorted((r.batch, r.refined) for r in rows if r.kind == "batch")
    assert batches == [(1, 4), (2, 4), (3, 1)]
    assert [(r.batches, r.refined) for r in rows if r.kind == "run"] == [(3, 9)]
    assert summary.batches == 3
    # Lose the metrics table entirely (a kill before it was written): the
    # next run rebuilds the batch rows from the refined table's history.
    shutil.rmtree(metrics)
    assert run(spark, config).refined == 0
    rows = spark.read.format("delta").load(metrics).collect()
    assert sorted((r.batch, r.refined) for r in rows if r.kind == "batch") == batches
    run(spark, config)
    rows = spark.read.format("delta").load(metrics).collect()
    assert len([r for r in rows if r.kind == "batch"]) == 3


def test_a_batch_merge_is_applied_once_per_app_id_and_version(config_file, spark, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": doc(1)}])
    run(spark, config_file(tmp_path, RULES_JOB, source=corpus))
    ref = TableRef(path=str(tmp_path / "refined"))
    row = read_table(spark, ref)
    from pyspark.sql import functions as F

    first = row.withColumn("text", F.lit("first"))
    second = row.withColumn("text", F.lit("second"))
    merge_batch(spark, first, ref, app_id="test-app", txn_version=1, metadata={})
    version = table_version(spark, ref)
    merge_batch(spark, second, ref, app_id="test-app", txn_version=1, metadata={})
    assert table_version(spark, ref) == version
    assert read_table(spark, ref).collect()[0].text == "first"
    merge_batch(spark, second, ref, app_id="test-app", txn_version=2, metadata={})
    assert read_table(spark, ref).collect()[0].text == "second"


def test_typed_sources_check_ids_and_text_types_per_row(config_file, spark, tmp_path):
    ints = str(tmp_path / "ints.parquet")
    spark.createDataFrame([(1, 12345), (2, 678)], "id long, text long").write.parquet(ints)
    summary = run(spark, config_file(tmp_path, RULES_JOB, source=ints, fmt="parquet"))
    rows = table(spark, tmp_path / "refined")
    assert sorted(rows) == ["1", "2"] and summary.invalid_rows == 2
    assert "text is a bigint, not a string" in rows["1"].error
    cast = run(spark, config_file(tmp_path, RULES_JOB, source=ints, fmt="parquet",
                                  input={"cast_text": True},
                                   output=tmp_path / "cast"))
    assert cast.invalid_rows == 0
    assert table(spark, tmp_path / "cast")["1"].text == "12345"

    nulls = str(tmp_path / "nulls.parquet")
    spark.createDataFrame([(None, doc(1)), ("", doc(2)), ("ok", doc(3))],
                          "id string, text string").write.parquet(nulls)
    run(spark, config_file(tmp_path, RULES_JOB, source=nulls, fmt="parquet", output=tmp_path / "n"))
    rows = table(spark, tmp_path / "n")
    derived = sorted(i for i in rows if i.startswith("row:"))
    assert len(rows) == 3 and len(derived) == 2 and rows["ok"].error is None
    assert all("record has no id" in rows[i].error for i in derived)


def test_copies_in_the_batch_after_one_being_committed_are_found(config_file, spark, tmp_path):
    """Batch k is committed in the background while batch k+1 is refined;
    k+1's dedup must count k's rows as committed (exact and near copies of
    them, and of a batch two back, are dropped as in one batch)."""
    rows = [{"id": f"k{i:02d}", "text": doc(i)} for i in range(12)]
    rows[5]["text"] = doc(2).upper()                              # exact copy, batch before
    rows[9]["text"] = doc(6).replace("line 3:", "line three:")   # near copy, batch before
    rows[10]["text"] = doc(1)                                     # two batches back
    corpus = write_jsonl(tmp_path / "c.jsonl", rows)
    stages = ["exact_dedup", "near_dedup"]
    batched = run(spark, config_file(tmp_path, RULES_JOB, source=corpus, stages=stages,
                                     commit_every=4))
    one = run(spark, config_file(tmp_path, RULES_JOB, source=corpus, stages=stages,
                                  output=tmp_path / "one", name="one.yaml"))
    assert (batched.batches, one.batches) == (3, 1)
    got, want = table(spark, tmp_path / "refined"), table(spark, tmp_path / "one")
    assert {i: (r.status, r.duplicate_of) for i, r in got.items()} == {
        i: (r.status, r.duplicate_of) for i, r in want.items()}
    assert {i: r.duplicate_of for i, r in got.items() if r.duplicate_of} == {
        "k05": "k02", "k09": "k06", "k10": "k01"}


def test_a_failed_commit_stops_the_run_before_the_batches_after_it(config_file, spark, tmp_path):
    """A batch whose MERGE fails (here Delta refuses rows against a CHECK
    constraint) stops the run: the batch refined meanwhile is not committed,
    nothing is lost, and a run after the cause is fixed refines the rest."""
    corpus = write_jsonl(tmp_path / "c.jsonl",
                         [{"id": f"k{i:02d}", "text": doc(i)} for i in range(4)])
    config = config_file(tmp_path, RULES_JOB, source=corpus, commit_every=4)
    run(spark, config)
    out = tmp_path / "refined"
    spark.sql(f"ALTER TABLE delta.`{out}` ADD CONSTRAINT before_k08 CHECK (id < 'k08')")
    write_jsonl(corpus, [{"id": f"k{i:02d}", "text": doc(i)} for i in range(16)])
    with pytest.raises(CommitFailed, match=r"batch 2 of 3 .*before_k08.*k08"):
        run(spark, config)
    assert sorted(table(spark, out)) == [f"k{i:02d}" for i in range(8)]
    spark.sql(f"ALTER TABLE delta.`{out}` DROP CONSTRAINT before_k08")
    assert run(spark, config).refined == 8
    assert sorted(table(spark, out)) == [f"k{i:02d}" for i in range(16)]
