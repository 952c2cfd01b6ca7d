"""The ablation's statistics and report, on small rows worked out by hand."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from prox_spark.ablate.report import render_report, write_report
from prox_spark.ablate.stats import (
    AGGREGATE_METRIC,
    Point,
    aggregate_rows,
    centered,
    compare,
    curves,
    higher_is_better,
    tokens_to_match,
)
from prox_spark.report.svg import COLORS, line_chart

VARIANTS = ["base", "better", "same"]


def row(variant: str, seed: int, tokens: int, task: str, metric: str, value: float, *,
        stderr: float | None = None, chance: float | None = None, final: bool = False,
        examples: int = 100) -> dict[str, Any]:
    return {"variant": variant, "seed": seed, "fingerprint": f"fp-{variant}", "tokens": tokens,
            "step": tokens // 10, "final": final, "task": task, "metric": metric,
            "value": value, "stderr": stderr, "examples": examples, "chance": chance,
            "epochs": 2.0 if variant == "same" else 1.0, "parameters": 1000,
            "train_seconds": 1.0, "written_at": None}


def bpb_rows() -> list[dict[str, Any]]:
    """Bits per byte at 1000 and 2000 tokens (final) for two seeds.
    Final means: base 1.01, better 0.91, same 1.015."""
    values = {"base": ((1.2, 1.2), (1.00, 1.02)), "better": ((1.1, 1.1), (0.90, 0.92)),
              "same": ((1.3, 1.3), (1.00, 1.03))}
    out = []
    for variant, (first, last) in values.items():
        for seed in (0, 1):
            out.append(row(variant, seed, 2000, "reference", "bits_per_byte", last[seed],
                           stderr=0.001, final=True))
            out.append(row(variant, seed, 1000, "reference", "bits_per_byte", first[seed],
                           stderr=0.001))
    return out


def choice_rows() -> list[dict[str, Any]]:
    """Two multiple-choice tasks (chance 0.25 and 0.5), one seed, two points."""
    out = []
    for variant, shift in (("base", 0.0), ("better", 0.2), ("same", 0.01)):
        for tokens, final in ((1000, False), (2000, True)):
            grow = 0.1 if final else 0.0
            for task, chance, acc in (("hella", 0.25, 0.4), ("arc", 0.5, 0.6)):
                for metric in ("acc", "acc_norm"):
                    out.append(row(variant, 0, tokens, task, metric, acc + grow + shift,
                                   stderr=0.02, chance=chance, final=final))
    return out


def train_rows() -> list[dict[str, Any]]:
    return [row(v, 0, t, "train", "loss", 5.0 - t / 1000, final=t == 2000)
            for v in VARIANTS for t in (1000, 2000)]


def test_centered_accuracy_is_zero_at_chance_and_one_when_perfect() -> None:
    assert centered(0.25, 0.25) == 0
    assert centered(1.0, 0.5) == 1
    assert centered(0.4, 0.25) == pytest.approx(0.2)
    assert centered(0.2, 0.25) == pytest.approx(-1 / 15)


def test_higher_is_better_except_bits_per_byte_and_loss() -> None:
    assert not higher_is_better("bits_per_byte")
    assert not higher_is_better("loss")
    assert higher_is_better("acc") and higher_is_better("centered_acc")


def test_aggregate_averages_centered_acc_norm_over_complete_points() -> None:
    rows = [
        row("v", 0, 10, "hella", AGGREGATE_METRIC, 0.4, stderr=0.03, chance=0.25),
        row("v", 0, 10, "arc", AGGREGATE_METRIC, 0.6, stderr=0.02, chance=0.5, examples=200),
        row("v", 0, 10, "arc", "acc", 0.9, stderr=0.02, chance=0.5),  # not the aggregate metric
        row("v", 0, 20, "hella", AGGREGATE_METRIC, 0.5, stderr=0.03, chance=0.25),  # no arc
        row("v", 0, 30, "hella", AGGREGATE_METRIC, 0.25, stderr=None, chance=0.25),
        row("v", 0, 30, "arc", AGGREGATE_METRIC, 1.0, stderr=0.01, chance=0.5),
        row("v", 0, 10, "reference", "bits_per_byte", 1.0, stderr=0.01),
    ]
    out = {r["tokens"]: r for r in aggregate_rows(rows)}
    assert sorted(out) == [10, 30]
    first = out[10]
    assert (first["task"], first["metric"], first["chance"]) == ("aggregate", "centered_acc", None)
    assert first["value"] == pytest.approx(0.2)  # (0.2 + 0.2) / 2
    # sqrt((0.03 / 0.75)^2 + (0.02 / 0.5)^2) / 2 = 0.04 * sqrt(2) / 2
    assert first["stderr"] == pytest.approx(0.02 * math.sqrt(2))
    assert first["examples"] == 300
    assert (first["variant"], first["seed"], first["fingerprint"]) == ("v", 0, "fp-v")
    assert out[30]["value"] == pytest.approx(0.5)  # (0 + 1) / 2
    assert out[30]["stderr"] is None


def test_curves_average_seeds_per_token_count_in_token_order() -> None:
    lines = curves(bpb_rows(), "reference", "bits_per_byte")
    assert list(lines) == VARIANTS
    assert lines["base"] == [Point(1000, pytest.approx(1.2), 1.2, 1.2, 2),
                             Point(2000, pytest.approx(1.01), 1.00, 1.02, 2)]
    assert lines["same"][1].low == 1.00 and lines["same"][1].high == 1.03


def test_compare_pairs_seeds_and_adds_sampling_variance() -> None:
    rows = [*bpb_rows(), row("better", 0, 1500, "reference", "bits_per_byte", 9.0)]
    base, better, same = compare(rows, VARIANTS, "reference", "bits_per_byte")
    assert (base.variant, base.diff, base.within_noise, base.better) == ("base", None, None, None)
    assert base.mean == pytest.approx(1.01) and base.seeds == 2
    # Paired by seed: differences -0.10, -0.10 (variance 0) plus the sampling
    # term mean(se_v^2 + se_b^2) = 2e-6, over n = 2 seeds; Student's t, 1 df.
    half = 12.706 * math.sqrt((0 + 2e-6) / 2)
    assert better.diff == pytest.approx(-0.1)
    assert (better.low, better.high) == (pytest.approx(-0.1 - half), pytest.approx(-0.1 + half))
    assert better.within_noise is False and better.better is True
    # same: differences 0.00, 0.01 (variance 0.00005); diff 0.005 is within noise.
    half = 12.706 * math.sqrt((0.00005 + 2e-6) / 2)
    assert same.diff == pytest.approx(0.005)
    assert same.high == pytest.approx(0.005 + half)
    assert same.within_noise is True and same.better is False


def test_compare_without_shared_seeds_adds_both_variances() -> None:
    rows = [r for r in bpb_rows() if not (r["variant"] == "better" and r["seed"] == 1)]
    rows.append({**row("better", 7, 2000, "reference", "bits_per_byte", 0.92, stderr=0.001,
                       final=True)})
    _, better, _ = compare(rows, VARIANTS, "reference", "bits_per_byte")
    # Unpaired: each mean's variance s^2/n + mean(se^2)/n; both 0.0002/2 + 1e-6/2.
    half = 12.706 * math.sqrt(2 * (0.0002 / 2 + 1e-6 / 2))
    assert (better.low, better.high) == (pytest.approx(-0.1 - half), pytest.approx(-0.1 + half))
    assert better.within_noise is True  # two seeds that do not pair: too few to tell


def test_student_t_quantiles() -> None:
    from prox_spark.ablate.stats import t95

    assert [t95(n - 1) for n in (1, 2, 3, 5, 40)] == [1.96, 12.706, 4.303, 2.776, 1.96]


def test_compare_single_seed_without_stderr_has_a_zero_width_interval() -> None:
    rows = [row("a", 0, 10, "t", "acc", 0.5, final=True), row("b", 0, 10, "t", "acc", 0.4,
                                                             final=True)]
    _, worse = compare(rows, ["a", "b", "missing"], "t", "acc")
    assert worse.low == worse.high == pytest.approx(-0.1)
    assert worse.within_noise is False and worse.better is False


def test_tokens_to_match_interpolates_the_crossing() -> None:
    match = tokens_to_match(bpb_rows(), VARIANTS, "reference", "bits_per_byte")
    # better falls from 1.1 to 0.91 between 1000 and 2000 tokens: 1.01 is
    # reached 0.09 / 0.19 of the way.
    assert match == {"base": 2000, "better": round(1000 + 1000 * 0.09 / 0.19), "same": None}
    assert match["better"] == 1474


def test_tokens_to_match_at_the_first_point_and_higher_is_better() -> None:
    rows = [row("a", 0, 10, "t", "acc", 0.3), row("a", 0, 20, "t", "acc", 0.5, final=True),
            row("b", 0, 10, "t", "acc", 0.6), row("b", 0, 20, "t", "acc", 0.7, final=True),
            row("c", 0, 10, "t", "acc", 0.2), row("c", 0, 20, "t", "acc", 0.6, final=True)]
    assert tokens_to_match(rows, ["a", "b", "c", "d"], "t", "acc") == \
        {"a": 20, "b": 10, "c": 18, "d": None}
    assert tokens_to_match(rows, ["nobody", "a"], "t", "acc") == {"nobody": None, "a": None}


def _table(page: str, table_id: str) -> dict[str, list[str]]:
    """A table of the page as variant -> its cells' text."""
    body = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S)
    assert body, table_id
    rows = re.findall(r"<tr><td>(.*?)</td>(.*?)</tr>", body.group(1), re.S)
    return {name: re.findall(r"<td[^>]*>(.*?)</td>", cells) for name, cells in rows}


def meta() -> dict[str, Any]:
    return {"title": "Ablation <rules>", "output": "output/ablate", "tokens": 2000,
            "seeds": [0, 1], "model": {"n_layer": 2}, "parameters": 1000,
            "epochs": {"base": 1.0, "better": 1.0, "same": 2.0},
            "notes": ["A CPU-sized proxy shows large effects only."],
            "settings": {"learning_rate": 0.003}}


@pytest.fixture(scope="module")
def page() -> str:
    return render_report([*bpb_rows(), *choice_rows(), *train_rows()], VARIANTS, meta())


def test_report_final_tables_say_better_worse_and_within_noise(page: str) -> None:
    bpb = _table(page, "final-reference-bits_per_byte")
    assert bpb["base"] == ["1.0100 (2 seeds)", "", "baseline"]
    assert bpb["better"][1] == "-0.1000 [-0.1127, -0.0873]"
    assert bpb["better"][2] == "better"
    assert bpb["same"][2].startswith("within noise")
    assert "repeated 2.0 times" in bpb["same"][2] and "repeated" not in bpb["better"][2]
    aggregate = _table(page, "final-aggregate-centered_acc")
    # base at 2000: hella (0.5 - 0.25) / 0.75 = 1/3, arc (0.7 - 0.5) / 0.5 = 0.4.
    assert aggregate["base"][0] == f"{(1 / 3 + 0.4) / 2:.4f} (1 seed)"
    assert aggregate["better"][2] == "better"
    assert aggregate["same"][2].startswith("within noise")
    for table in ("final-hella-acc", "final-hella-acc_norm", "final-arc-acc", "final-arc-acc_norm"):
        assert _table(page, table)["better"][2] == "better"
    assert 'id="final-train-loss"' not in page


def test_report_tokens_to_match_as_number_and_share(page: str) -> None:
    match = _table(page, "match")
    assert match["base"][1] == "2,000 (1.00x)"
    assert match["better"][1] == "1,474 (0.74x)"
    assert match["same"][1] == "not reached"
    # better's aggregate is above the baseline's final value from its first point.
    assert match["better"][0] == "1,000 (0.50x)"


def test_report_head_notes_charts_and_settings(page: str) -> None:
    assert "<h1>Ablation &lt;rules&gt;</h1>" in page
    assert "output/ablate" in page and "2,000 training tokens per variant" in page
    assert "<li>A CPU-sized proxy shows large effects only.</li>" in page
    assert re.search(r'id="repeated">[^<]*same \(2\.00 epochs\)', page)
    assert "better (" not in page.split('id="repeated"')[1].split("</p>")[0]
    for chart in ("aggregate-centered_acc", "reference-bits_per_byte", "hella-acc_norm",
                  "train-loss"):
        svg = re.search(rf'<svg[^>]*id="curve-{chart}"(.*?)</svg>', page, re.S)
        assert svg and svg.group(1).count('class="line"') == 3, chart
    assert "lower is better" in page.split('id="curve-reference-bits_per_byte"')[1][:400]
    assert "&quot;learning_rate&quot;: 0.003" in page
    assert "<script" not in page and "<link" not in page


def test_report_without_rows_says_no_results(tmp_path: Path) -> None:
    path = write_report(tmp_path / "deep" / "report.html", [], ["base"], {})
    page = path.read_text(encoding="utf-8")
    assert 'id="empty"' in page and "No results yet" in page
    assert "<table" not in page and "<svg" not in page


def test_line_chart_handles_one_point_and_a_flat_series() -> None:
    svg = line_chart("One <point>", {"a": [(500_000, 1.0, 1.0, 1.0)],
                                     "b": [(0, 0.0, 0.0, 0.0), (10, 0.0, 0.0, 0.0)]},
                     chart_id="c")
    assert "nan" not in svg and "inf" not in svg
    assert svg.count('class="point"') == 3 and 'class="band"' not in svg
    assert "One &lt;point&gt;" in svg


def test_line_chart_draws_bands_legend_and_short_ticks() -> None:
    svg = line_chart("Accuracy", {"first": [(0, 0.2, 0.1, 0.3), (500_000, 0.4, 0.4, 0.4)],
                                  "second": [(0, 0.1, 0.1, 0.1), (500_000, 0.3, 0.3, 0.3)]})
    assert svg.count('class="band"') == 1
    assert re.findall(r'stroke="(#\w+)" stroke-width="2"/><text[^>]*class="tick legend">(\w+)',
                      svg) == [(COLORS[0], "first"), (COLORS[1], "second")]
    ticks = re.findall(r'text-anchor="middle" class="tick">([^<]*)<', svg)
    assert ticks[:-1] == ["0", "100k", "200k", "300k", "400k", "500k"]
    # Higher values are drawn higher up (smaller y).
    cy = [float(y) for y in re.findall(
        r'<circle class="point" cx="[\d.]+" cy="([\d.]+)"[^>]*data-series="first"', svg)]
    assert len(cy) == 2 and cy[1] < cy[0]


def test_report_says_worse_and_tolerates_missing_meta() -> None:
    rows = [row("a", 0, 10, "t", "acc", 0.5, stderr=0.01, final=True),
            row("b", 0, 10, "t", "acc", 0.4, stderr=0.01, final=True)]
    page = render_report(rows, ["a", "b"], {})
    assert _table(page, "final-t-acc")["b"][2] == "worse"
    assert "Neither the aggregate nor bits per byte" in page
    assert 'id="curve-t-acc"' in page and 'id="repeated"' not in page
