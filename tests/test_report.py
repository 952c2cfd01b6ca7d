"""The run report as a data engineer reads it (issue 17): full-width plots
with value labels and whole, wrapped category labels that never overlap;
stages in the order they ran and only those; every kind of drop and failure
among the reasons and the samples; normalize edits shown old -> new; document
boxes printed whole."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest

from prox_spark.report.diff import highlight
from prox_spark.report.page import ReportData, render
from prox_spark.report.svg import bar_chart, wrap
from report_browser import overlapping_labels

LONG = "chunk_policy:min_kept_ratio (the refined text kept under five percent of its words)"
PROSE = "\n".join(
    f"The river number {i} runs past the market and the old mill, with boats that carry "
    "bread to the town." for i in range(6)
)


def _labels(svg: str) -> list[str]:
    """Each category label of a chart, its wrapped lines joined again."""
    return ["".join(unescape(t) for t in re.findall(r"<tspan[^>]*>(.*?)</tspan>", text))
            for text in re.findall(r'<text[^>]*class="tick label">(.*?)</text>', svg)]


def test_labels_wrap_whole_and_bars_carry_their_values():
    labels = ["kept", LONG, "x" * 90]
    svg = bar_chart("Reasons", labels, {"documents": [12345, 7, 0]}, chart_id="r")
    assert [label.replace(" ", "") for label in _labels(svg)] == \
        [label.replace(" ", "") for label in labels]
    assert all(len(line) <= 34 for line in wrap(LONG, 34))
    assert re.findall(r'class="value">([^<]*)<', svg) == ["12.3k", "7", "0"]
    assert 'width="100%"' in svg


def sample_data() -> ReportData:
    run = {"run_at": datetime(2026, 11, 30, 3, 0, tzinfo=UTC), "run_id": "r1",
           "fingerprint": "f", "source_version": 3, "settings": "{}", "versions": "{}",
           "refined": 6, "kept": 1}
    text = "Home | About\nPrice 40 dollars today only.\nA real line of prose."
    data = ReportData(run, None, 1)
    data.statuses = {"kept": 1, "edited": 1, "dropped": 3, "reverted": 0, "failed": 1}
    data.stages = [("gopher_quality", 900.0, 800.0), ("prox_doc", 800.0, 500.0),
                   ("prox_chunk", 500.0, 420.0)]
    data.kept_share = [3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    data.reasons = {"gopher_short_doc": 1, "invalid_record": 1, LONG: 1,
                    "failed (not refined)": 1}
    data.samples = [
        {"id": "edited-1", "status": "edited", "reason": None, "error": None,
         "doc_program": "keep_doc()", "rule_programs": [],
         "chunk_programs": ['remove_lines(0, 0)\nnormalize("40 dollars", "$40")'],
         "html": highlight(text, "keep_doc()", ['remove_lines(0, 0)\nnormalize("40 dollars", '
                                                '"$40")'], "edited")},
        {"id": "failed-1", "status": "failed", "reason": "engine_failed",
         "error": "engine failed to start: out of memory", "doc_program": None,
         "rule_programs": [], "chunk_programs": [],
         "html": highlight(text * 40, None, None, "failed")},
    ]
    return data


def test_render_shows_failures_edits_and_whole_documents():
    page = render(sample_data())
    charts = dict(re.findall(r'<svg[^>]*id="([\w-]+)"(.*?)</svg>', page, re.S))
    assert _labels(charts["statuses"]) == ["kept", "edited", "dropped", "reverted", "failed"]
    assert _labels(charts["stages"]) == ["gopher_quality", "prox_doc", "prox_chunk"]
    assert _labels(charts["kept-share"])[0] == "dropped"
    assert 'data-label="dropped" data-series="documents" data-value="3"' in charts["kept-share"]
    assert {"invalid_record", "failed (not refined)"} <= set(_labels(charts["reasons"]))
    assert '<del class="normalized">40 dollars</del><ins class="normalized">$40</ins>' in page
    assert '<div class="sample" data-status="failed">' in page
    assert "engine failed to start: out of memory" in page
    assert "max-height" not in page and "overflow:auto" not in page


@pytest.mark.parametrize("width", [1200, 700])
def test_no_two_labels_overlap_in_a_browser(tmp_path, width):
    page = tmp_path / "report.html"
    page.write_text(render(sample_data()))
    assert overlapping_labels(page, tmp_path, width) == []


@pytest.mark.spark
def test_stages_in_run_order_and_every_drop_has_a_reason(config_file, spark, tmp_path):
    from prox_spark.config import load_config
    from prox_spark.report.page import gather
    from prox_spark.run.job import run_pipeline

    corpus = tmp_path / "corpus.jsonl"
    rows = [{"id": "a", "text": PROSE}, {"id": "b", "text": PROSE.upper()},
            {"id": "c", "text": "Home | About\n" + PROSE.replace("river", "road")},
            {"id": "d", "text": "Too short."}]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"id": "e", "text": 5}\n')
    stages = [{"gopher_quality": {"min_doc_words": 20}}, "c4_quality", "exact_dedup"]
    config = config_file(tmp_path, source=corpus, stages=stages, spark={"partitions": 1})
    cfg = load_config(config)
    run_pipeline(cfg, spark)
    data = gather(spark, cfg.output, cfg.metrics, sample=5)
    assert [s[0] for s in data.stages] == ["gopher_quality", "c4_quality", "exact_dedup"]
    dropped = data.statuses["dropped"]
    assert data.kept_share[0] == dropped and dropped >= 2
    assert sum(data.reasons.values()) >= dropped
    errors = [s for s in data.samples if s["error"]]
    statuses = {s["status"] for s in data.samples}
    assert {"dropped", "edited"} <= statuses
    page = Path(tmp_path / "report.html")
    page.write_text(render(data))
    assert overlapping_labels(page, tmp_path) == []
    assert errors or data.run.get("invalid_rows") == 0
