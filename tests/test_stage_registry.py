"""One stage registry: YAML validated from it, stages built from it, the
user's own rule functions and datatrove filters beside ours."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from prox_spark.config import ConfigError, parse_config
from prox_spark.program import run_chunk_program
from prox_spark.rules import QUALITY_RULES, gopher_quality
from prox_spark.stages import ExactDedup
from prox_spark.stages.base import MissingColumnError
from prox_spark.stages.registry import stage_names, stage_spec

PROSE = ("The river runs through the old town and past the market square, where people "
         "have met to trade bread and cheese with their neighbours for as long as anyone "
         "can remember.")
USER_MODULE = '''
from typing import Annotated

from prox_spark.params import Doc, Range


def no_tables(text: str, *,
              max_ratio: Annotated[float, Range(0, 1),
                                   Doc('largest share of lines that may start with "|".')] = 0.2
              ) -> object:
    """Drop pages where table rows make up more than `max_ratio` of the lines."""
    if "EXPLODE" in text:
        raise RuntimeError("cannot read this page")
    lines = text.split("\\n")
    ratio = sum(line.startswith("|") for line in lines) / len(lines)
    return (False, "too_many_tables") if ratio > max_ratio else True
'''


def readme_tables(*names):
    """Names from `scripts/stage_table.py`, which renders the README's tables."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "stage_table.py"
    spec = importlib.util.spec_from_file_location("stage_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(getattr(module, name) for name in names)


def config(stages, **input_section):
    raw = {"input": {"path": "in.jsonl", "format": "jsonl", **input_section},
           "output": {"path": "out"}, "stages": stages}
    return parse_config(raw, check_models=False, check_paths=False)


def test_every_builtin_parameter_is_typed_documented_and_defaulted():
    assert set(QUALITY_RULES) < set(stage_names())
    for name in stage_names():
        spec = stage_spec(name)
        assert spec.doc, name
        for p in spec.params:
            assert p.doc and p.hint is not None and not p.required, (name, p.name)
    gopher = {p.name: p for p in stage_spec("gopher_quality").params}
    assert gopher["min_doc_words"].default == 50
    assert "fewest words" in gopher["min_doc_words"].doc


@pytest.mark.parametrize(("stage", "field", "message"), [
    ({"gopher_quality": {"min_doc_words": "50"}}, "stages[0].gopher_quality",
     "min_doc_words: expected int or None, got '50'"),
    ({"near_dedup": {"bands": 2.5}}, "stages[0].near_dedup", "bands: expected int, got 2.5"),
    ({"c4_quality": {"filter_no_terminal_punct": "no"}}, "stages[0].c4_quality",
     "filter_no_terminal_punct: expected bool, got 'no'"),
    ({"near_dedup": {"threshold": "0.8"}}, "stages[0].near_dedup",
     "threshold: expected float, got '0.8'"),
    ({"near_dedup": {"threshold": 2}}, "stages[0].near_dedup", "threshold must be"),
    ({"gopher_quality": {"min_words": 3}}, "stages[0].gopher_quality",
     "unknown parameter 'min_words'"),
    ("gopher", "stages[0]", "unknown stage 'gopher'; expected one of prox_doc"),
    ("no_such_pkg.mod:fn", "stages[0]", "cannot import 'no_such_pkg.mod'"),
    ("prox_spark.rules:nothing_here", "stages[0]", "has no 'nothing_here'"),
    ("prox_spark.rules:QUALITY_RULES", "stages[0]", "neither a rule function"),
    ({"exact_dedup": {"priority": "url"}}, "stages[0].exact_dedup",
     "must come from a Parquet or Delta source"),
    ({"exact_dedup": {"priority": "bad name"}}, "stages[0].exact_dedup",
     "not a plain column name"),
    ("prox_doc", "stages[0]", "prox_doc needs a doc_model section"),
    ([], "stages", "expected a non-empty list"),  # the whole list
])
def test_wrong_stage_entries_are_refused_naming_the_field(stage, field, message):
    with pytest.raises(ConfigError) as err:
        config(stage if isinstance(stage, list) else [stage])
    assert err.value.field == field
    assert message in str(err.value)


def test_user_rule_by_import_path_is_validated_like_ours(tmp_path, monkeypatch):
    (tmp_path / "my_filters.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    ok = config([{"my_filters:no_tables": {"max_ratio": 0.5}}])
    assert ok.stages[0].name == "my_filters:no_tables"
    spec = stage_spec("my_filters:no_tables")
    assert [(p.name, p.default, p.doc) for p in spec.params] == [
        ("max_ratio", 0.2, 'largest share of lines that may start with "|".')]
    with pytest.raises(ConfigError, match=r"max_ratio: expected float, got 'high'"):
        config([{"my_filters:no_tables": {"max_ratio": "high"}}])
    with pytest.raises(ConfigError, match="unknown parameter 'ratio'"):
        config([{"my_filters:no_tables": {"ratio": 0.5}}])
    with pytest.raises(ConfigError, match=r"max_ratio must be between 0 and 1, got 1\.5"):
        config([{"my_filters:no_tables": {"max_ratio": 1.5}}])


USER_STAGE = '''
from dataclasses import dataclass
from typing import Annotated, ClassVar

from pyspark.sql import functions as F

from prox_spark.params import Doc, Range
from prox_spark.stages import Stage


@dataclass
class ShortDocs(Stage):
    """Flag documents of at most `max_words` words."""

    max_words: Annotated[int, Range(1), Doc("most words of a short document")] = 50
    adds: ClassVar[tuple[str, ...]] = ("is_short",)
    output_version: ClassVar[int] = 3

    def _transform(self, df):
        return df.withColumn("is_short", F.size(F.split("text", " ")) <= self.max_words)


@dataclass
class Forgetful(ShortDocs):
    """Says it adds is_short, and does not."""

    def _transform(self, df):
        return df
'''


def test_a_users_stage_class_is_one_declaration(tmp_path, monkeypatch):
    (tmp_path / "my_stages.py").write_text(USER_STAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = stage_spec("my_stages:ShortDocs")
    assert [(p.name, p.default, p.doc) for p in spec.params] == [
        ("max_words", 50, "most words of a short document")]
    assert (spec.adds, spec.output_version, spec.doc) == (
        ("is_short",), 3, "Flag documents of at most `max_words` words.")
    assert config([{"my_stages:ShortDocs": {"max_words": 5}}]).stages[0].params == {
        "max_words": 5}
    with pytest.raises(ConfigError, match="max_words must be at least 1, got 0"):
        config([{"my_stages:ShortDocs": {"max_words": 0}}])


def test_the_readme_parameter_table_is_the_declarations():
    TABLE_START, TABLE_END, parameter_table = readme_tables(
        "TABLE_START", "TABLE_END", "parameter_table")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start, end = readme.index(TABLE_START), readme.index(TABLE_END) + len(TABLE_END)
    assert readme[start:end] == parameter_table(), "run python scripts/stage_table.py"
    assert "| `near_dedup` | `threshold` | float | `0.8` | > 0, <= 1 |" in parameter_table()


def test_a_priority_column_is_carried_from_a_typed_source():
    cfg = config([{"exact_dedup": {"priority": "rank"}}, "gopher_quality"], format="parquet")
    assert cfg.input.extra_columns == ("rank",)
    assert config(["exact_dedup"], format="parquet").input.extra_columns == ()


def test_datatrove_filters_through_the_adapter_decide_as_datatrove_does():
    pytest.importorskip("datatrove")
    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter

    from prox_spark.stages.datatrove_filter import DatatroveRule

    gopher = DatatroveRule(GopherQualityFilter())
    for text in ("Too short.", "\n".join([PROSE] * 5), "# # # # " * 40):
        assert gopher(text).reason == gopher_quality(text).reason
    c4 = DatatroveRule(C4QualityFilter(filter_no_terminal_punct=True))
    page = "\n".join(["Home | About", *[f"Sentence {i} of the page is here." for i in range(6)],
                      "Enable javascript to see this."])
    result = c4(page)
    assert result.program == ("remove_lines(line_start=0, line_end=0)\n"
                              "remove_lines(line_start=7, line_end=7)")
    assert run_chunk_program(page, result.program, max_errors=99, min_kept_ratio=0,
                             min_words=0).text == "\n".join(page.split("\n")[1:7])


@pytest.mark.spark
def test_user_and_datatrove_stages_run_from_yaml_and_a_failing_row_is_an_error(
        spark, tmp_path, monkeypatch):
    pytest.importorskip("datatrove")
    from prox_spark.run.refine import refine

    module = tmp_path / "my_filters.py"
    module.write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    spark.sparkContext.addPyFile(str(module))  # how a user ships a module to executors
    cfg = config([
        {"my_filters:no_tables": {"max_ratio": 0.3}},
        {"datatrove.pipeline.filters:GopherQualityFilter": {"min_doc_words": 10}},
    ])
    table = "\n".join(["| a | b |"] * 4 + [PROSE])
    rows = [("prose", PROSE), ("table", table), ("short", "Only a few words here."),
            ("boom", f"EXPLODE {PROSE}"), ("null", None)]
    out = {r.id: r for r in refine(spark.createDataFrame(rows, "id string, text string"),
                                   cfg).collect()}
    assert sorted(out) == sorted(r[0] for r in rows)
    assert out["prose"].status == "kept" and out["prose"].error is None
    assert [(e.stage, e.reason) for e in out["table"].rule_edits] == [
        ("my_filters:no_tables", "too_many_tables")]
    assert out["table"].rule_edits[0].program == "drop_doc()  # too_many_tables"
    assert [(e.stage, e.reason) for e in out["short"].rule_edits] == [
        ("datatrove.pipeline.filters:GopherQualityFilter", "gopher_short_doc")]
    assert out["short"].status == "dropped" and out["short"].text is None
    boom = out["boom"]
    assert boom.status == "kept" and boom.text == f"EXPLODE {PROSE}"
    assert boom.error == ("my_filters:no_tables failed: RuntimeError: cannot read this page")


@pytest.mark.spark
def test_needed_columns_are_checked_before_any_udf_and_priority_decides(spark):
    df = spark.createDataFrame([("a", PROSE, 2), ("b", PROSE, 1), ("c", "Other text.", 3)],
                               "id string, text string, rank int")
    with pytest.raises(MissingColumnError, match="ExactDedup needs a column 'url'"):
        ExactDedup(priority="url").transform(df)
    with pytest.raises(MissingColumnError, match="needs a column 'text'"):
        stage_spec("c4_quality").create({}).transform(df.select("id"))
    out = {r.id: r for r in df.transform(ExactDedup(priority="rank")).collect()}
    assert out["b"].status == "kept" and out["b"].duplicate_of is None
    assert out["a"].status == "dropped" and out["a"].duplicate_of == "b"
    assert out["c"].status == "kept"


@pytest.mark.spark
def test_a_stage_is_held_to_the_columns_it_declares(spark, tmp_path, monkeypatch):
    from prox_spark.errors import StageContractError

    (tmp_path / "my_stages.py").write_text(USER_STAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    df = spark.createDataFrame([("a", "two words")], "id string, text string")
    short = stage_spec("my_stages:ShortDocs").create({"max_words": 2})
    assert df.transform(short).first().is_short is True
    with pytest.raises(StageContractError, match="Forgetful declares that it adds is_short"):
        df.transform(stage_spec("my_stages:Forgetful").create({}))
    with pytest.raises(MissingColumnError, match="ShortDocs needs a column 'text'"):
        df.select("id").transform(short)



def test_sequence_parameters_are_checked_element_by_element():
    ok = config([{"gopher_repetition": {"top_n_grams": [[2, 0.25], [3, 0.2]]}}])
    assert ok.stages[0].params["top_n_grams"] == [[2, 0.25], [3, 0.2]]
    with pytest.raises(ConfigError, match=r"top_n_grams: expected a list of a list \[int, "
                                          r"float\], got \[\[2, 'x'\]\]"):
        config([{"gopher_repetition": {"top_n_grams": [[2, "x"]]}}])
    assert stage_spec("gopher_repetition").create({}).params["top_n_grams"][0] == (2, 0.2)


def test_datatrove_spellings_of_our_parameters_are_accepted():
    gopher = stage_spec("gopher_quality")
    assert gopher.effective({"max_non_alpha_words_ratio": 0.7})["min_alpha_words_ratio"] == 0.7
    with pytest.raises(ValueError, match="give only one of them"):
        gopher.effective({"max_non_alpha_words_ratio": 0.7, "min_alpha_words_ratio": 0.7})
    c4 = stage_spec("c4_quality").effective({"min_num_sentences": -1, "max_word_length": -1})
    assert c4["min_num_sentences"] is None and c4["max_word_length"] is None
    with pytest.raises(ValueError, match="min_words_per_line must be at least 0"):
        stage_spec("c4_quality").effective({"min_words_per_line": -2})


def test_the_readme_settings_table_is_the_declarations():
    SETTINGS_START, SETTINGS_END, settings_table = readme_tables(
        "SETTINGS_START", "SETTINGS_END", "settings_table")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start, end = readme.index(SETTINGS_START), readme.index(SETTINGS_END) + len(SETTINGS_END)
    assert readme[start:end] == settings_table(), "run python scripts/stage_table.py"
    table = settings_table()
    assert "| `commit_every` | int | `50000` | > 0 |" in table
    assert "| `input.format` | one of delta, parquet, jsonl | `\"delta\"` |" in table
