"""One record whose id or text cannot be stored as UTF-8 (a lone surrogate
escape in JSONL, invalid bytes in Parquet or Delta) becomes an error row; the
job and every other row go on (issue 17). How one line parses:
tests/test_records.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prox_spark.config import load_config
from prox_spark.run.job import run_pipeline
from refresh_helpers import RULES_JOB, doc, table

LONE = b'{"id": "a", "text": "coffee \\ud83d and a quiet place"}'


@pytest.mark.spark
def test_a_surrogate_line_in_jsonl_does_not_fail_the_job(config_file, spark, tmp_path: Path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(b"\n".join([
        json.dumps({"id": "good", "text": doc(1)}).encode(), LONE,
        b'{"id": "bad\\ud800id", "text": "x"}',
        json.dumps({"id": "sort", "text": doc(2), "v": "\ud83d"}).encode(),
    ]) + b"\n")
    summary = run_pipeline(load_config(config_file(tmp_path, RULES_JOB, source=corpus)), spark)
    rows = table(spark, tmp_path / "refined")
    assert rows["good"].text == doc(1) and rows["good"].error is None
    assert rows["a"].text is None and rows["a"].status == "dropped"
    assert "lone surrogate" in rows["a"].error
    bad_id = [r for i, r in rows.items() if i.startswith("line:")]
    assert len(bad_id) == 1 and "id holds a lone surrogate" in bad_id[0].error
    assert summary.invalid_rows == 2
    # last_by on a column holding a lone surrogate still resolves.
    last = config_file(tmp_path, RULES_JOB, source=corpus, output=tmp_path / "last",
                        input={"on_duplicate_id": {"last_by": "v"}})
    run_pipeline(load_config(last), spark)
    assert table(spark, tmp_path / "last")["sort"].text == doc(2)


@pytest.mark.spark
@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_invalid_utf8_in_typed_sources_is_an_error_row(config_file, spark, tmp_path: Path, fmt):
    from pyspark.sql import functions as F

    source = str(tmp_path / "source")
    raw = spark.createDataFrame(
        [(b"good", doc(1).encode()), (b"t", b"coffee \xed\xa0\xbd and a quiet place"),
         (b"bad\xff", b"fine text"), (b"c", doc(2).encode())], "id binary, text binary")
    (raw.select(F.col("id").cast("string").alias("id"), F.col("text").cast("string")
                .alias("text")).write.format(fmt).save(source))
    summary = run_pipeline(load_config(config_file(tmp_path, RULES_JOB, source=source, fmt=fmt)),
                           spark)
    rows = table(spark, tmp_path / "refined")
    assert rows["good"].text == doc(1) and rows["c"].text == doc(2)
    assert rows["t"].text is None and "not valid UTF-8" in rows["t"].error
    derived = [r for i, r in rows.items() if i.startswith("row:")]
    assert len(derived) == 1 and "id is not valid UTF-8" in derived[0].error
    assert len(rows) == 4 and summary.invalid_rows == 2
