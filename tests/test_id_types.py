"""Ids are canonical across types (issue 35, item 2): an integer id column that
turns into `double` (a pandas integer column once it holds a NaN) and back
refines nothing again and deletes nothing; a non-integral float id, or a type
change that would change stored ids, is an error naming the column (exit 2),
with nothing written. Parquet and Delta sources, the run and the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from prox_spark.cli import main as cli_main
from prox_spark.config import load_config
from prox_spark.errors import SourceError
from prox_spark.io.delta import table_version
from prox_spark.io.records import parse_line
from prox_spark.run.job import run_pipeline
from refresh_helpers import RULES_JOB, doc, table

pytestmark = pytest.mark.spark

DOCS = [doc(i) for i in range(1, 5)]


def _write(spark, path: Path, fmt: str, ids: list, schema: str) -> None:
    rows = [(i, DOCS[n % len(DOCS)] if i is not None else f"orphan {n}")
            for n, i in enumerate(ids)]
    df = spark.createDataFrame(rows, schema)
    df.write.format(fmt).mode("overwrite").option("overwriteSchema", "true").save(str(path))


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_int_then_double_with_nan_then_int_refines_nothing_again(config_file, spark, tmp_path, fmt):
    source, out = tmp_path / "src", tmp_path / "refined"
    _write(spark, source, fmt, [1, 2, 3, 4], "id long, text string")
    config = load_config(config_file(tmp_path, RULES_JOB, source=source, fmt=fmt, output=out))
    first = run_pipeline(config, spark)
    assert first.refined == 4 and sorted(table(spark, out)) == ["1", "2", "3", "4"]

    _write(spark, source, fmt, [1.0, 2.0, 3.0, 4.0, float("nan")], "id double, text string")
    second = run_pipeline(config, spark)
    rows = table(spark, out)
    assert second.deleted == 0
    assert second.refined == 1  # only the NaN row, an error row: NaN is no id
    assert {"1", "2", "3", "4"} <= set(rows) and not any("." in i for i in rows)
    (orphan,) = [i for i in rows if i.startswith("row:")]
    assert "record has no id" in rows[orphan].error

    _write(spark, source, fmt, [1, 2, 3, 4], "id long, text string")
    third = run_pipeline(config, spark)
    assert third.refined == 0
    assert third.deleted == 1  # the NaN row left the source; no document was re-keyed
    assert sorted(table(spark, out)) == ["1", "2", "3", "4"]


def test_a_non_integral_float_id_is_an_error_naming_the_column(config_file, spark, tmp_path,
                                                               capsys):
    source, out = tmp_path / "src", tmp_path / "refined"
    _write(spark, source, "parquet", [1.0, 1.5], "doc_id double, text string")
    path = config_file(tmp_path, RULES_JOB, source=source, fmt="parquet", output=out,
                        input={"id_column": "doc_id"})
    with pytest.raises(SourceError, match=r"'doc_id'.*double.*1\.5.*Cast the column") as err:
        run_pipeline(load_config(path), spark)
    assert err.value.field == "input.id_column"
    assert not out.exists()
    assert cli_main(["plan", str(path)]) == 2
    assert "1.5" in capsys.readouterr().err
    assert not out.exists()


def test_a_type_change_that_changes_stored_ids_is_refused(config_file, spark, tmp_path, capsys):
    source, out = tmp_path / "src", tmp_path / "refined"
    path = config_file(tmp_path, RULES_JOB, source=source, fmt="delta", output=out)
    _write(spark, source, "delta", [1, 2], "id long, text string")
    run_pipeline(load_config(path), spark)
    before = table_version(spark, load_config(path).output)

    # The same documents, their ids now strings written another way.
    _write(spark, source, "delta", ["001", "002"], "id string, text string")
    with pytest.raises(SourceError, match=r"from bigint to string.*'1'.*Cast the column"):
        run_pipeline(load_config(path), spark)
    assert table_version(spark, load_config(path).output) == before
    assert cli_main(["plan", str(path)]) == 2
    assert "changed type from bigint to string" in capsys.readouterr().err

    # A string column holding the same ids changes none: accepted, 0 refined.
    _write(spark, source, "delta", ["1", "2"], "id string, text string")
    again = run_pipeline(load_config(path), spark)
    assert (again.refined, again.deleted) == (0, 0)


def test_jsonl_integral_float_ids_are_the_integer():
    assert parse_line(b'{"id": 7.0, "text": "a"}', "id", "text").id == "7"
    half = parse_line(b'{"id": 7.5, "text": "a"}', "id", "text")
    assert half.text is None and "7.5" in half.error


def test_a_float_id_beyond_38_digits_is_no_id_not_a_fraction(config_file, spark, tmp_path):
    source, out = tmp_path / "src", tmp_path / "refined"
    _write(spark, source, "parquet", [1.0, 1e300], "id double, text string")
    summary = run_pipeline(load_config(config_file(tmp_path, RULES_JOB, source=source,
                                                   fmt="parquet", output=out)), spark)
    rows = table(spark, out)
    assert summary.refined == 2 and "1" in rows
    (big,) = [r for i, r in rows.items() if i.startswith("row:")]
    assert "record has no id" in big.error
    assert parse_line(b'{"id": 1e300, "text": "a"}', "id", "text").text is None
