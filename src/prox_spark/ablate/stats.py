"""Statistics over an ablation's result rows: curves, final comparisons, tokens to match.

An ablation trains one small proxy model per data variant (and seed) and
evaluates it at several points; each evaluation is one row of the results
table (`variant`, `seed`, `tokens`, `final`, `task`, `metric`, `value`,
`stderr`, `chance`, ...). This module turns those rows into what a reader
needs to judge the variants against the first one (the baseline): mean
curves over seeds, final differences with an interval that says when a
difference is within noise, and the training tokens a variant needs to reach
the baseline's final value. Pure Python, so the report and its tests need
neither Spark nor torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]

AGGREGATE_METRIC = "acc_norm"
AGGREGATE_TASK = "aggregate"
AGGREGATE_NAME = "centered_acc"
REFERENCE_TASK = "reference"
TRAIN_TASK = "train"
# Not multiple-choice tasks: every other task name is one.
OTHER_TASKS = frozenset({REFERENCE_TASK, TRAIN_TASK, AGGREGATE_TASK})
LOWER_IS_BETTER = frozenset({"bits_per_byte", "loss"})
Z95 = 1.96  # two-sided 95% quantile of the standard normal
# Two-sided 95% quantiles of Student's t for 1-10 degrees of freedom (any
# statistics table); from 30 on, the normal's 1.96 is within 3%.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def t95(df: int) -> float:
    """The two-sided 95% quantile of Student's t with `df` degrees of
    freedom (seeds - 1); the normal's 1.96 for df <= 0 (no seed spread is
    estimated: only the sampling error over examples is in the interval).

    >>> t95(1), t95(0), t95(100)
    (12.706, 1.96, 1.96)
    """
    if df <= 0:
        return Z95
    if df <= len(_T95):
        return _T95[df - 1]
    return 2.201 if df < 30 else Z95  # t at 11 df, the largest of 11-29


@dataclass(frozen=True)
class Point:
    """One evaluation point of a variant's curve: the mean over seeds at
    `tokens` training tokens, and the lowest and highest seed's value."""

    tokens: int
    mean: float
    low: float
    high: float
    seeds: int


@dataclass(frozen=True)
class Comparison:
    """A variant's final value beside the baseline's. `diff` is the variant's
    mean minus the baseline's; `low`/`high` bound its 95% interval. All four
    judgement fields are None for the baseline itself (or with no baseline)."""

    variant: str
    task: str
    metric: str
    mean: float
    seeds: int
    diff: float | None
    low: float | None
    high: float | None
    within_noise: bool | None
    better: bool | None


def is_choice_task(task: str) -> bool:
    """Whether `task` is a multiple-choice task (any but reference, train, aggregate)."""
    return task not in OTHER_TASKS


def higher_is_better(metric: str) -> bool:
    """False for bits per byte and loss (lower is better), True otherwise."""
    return metric not in LOWER_IS_BETTER


def centered(value: float, chance: float) -> float:
    """Accuracy above chance on a 0 (chance) to 1 (perfect) scale:
    `(acc - chance) / (1 - chance)`, DCLM's "centered accuracy" (Li et al.
    2024, DataComp-LM, section on the core evaluation)."""
    if chance >= 1:
        raise ValueError(f"chance accuracy {chance} leaves nothing to center on")
    return (value - chance) / (1 - chance)


def _point_key(row: Row) -> tuple[str, int, str, int]:
    return (str(row["variant"]), int(row["seed"]), str(row["fingerprint"]), int(row["tokens"]))


def _choice_rows_by_point(rows: Iterable[Row]) -> dict[tuple[str, int, str, int],
                                                           dict[str, Row]]:
    """AGGREGATE_METRIC rows of multiple-choice tasks: point -> task -> row
    (the last row given wins when a task repeats at a point)."""
    points: dict[tuple[str, int, str, int], dict[str, Row]] = {}
    for row in rows:
        if row["metric"] == AGGREGATE_METRIC and is_choice_task(str(row["task"])):
            points.setdefault(_point_key(row), {})[str(row["task"])] = row
    return points


def _aggregate_row(tasks: Mapping[str, Row]) -> dict[str, Any]:
    """One aggregate row from the rows of every task at a point."""
    chances = {t: float(r["chance"] or 0.0) for t, r in tasks.items()}
    count = len(tasks)
    value = sum(centered(float(r["value"]), chances[t]) for t, r in tasks.items()) / count
    errors = [r["stderr"] for r in tasks.values()]
    stderr = None
    if all(e is not None for e in errors):
        # Tasks are independent samples: variances of the scaled means add.
        stderr = math.sqrt(sum((float(r["stderr"]) / (1 - chances[t])) ** 2
                               for t, r in tasks.items())) / count
    out = dict(next(iter(tasks.values())))
    out.update(task=AGGREGATE_TASK, metric=AGGREGATE_NAME, value=value, stderr=stderr,
               examples=sum(int(r["examples"]) for r in tasks.values()), chance=None)
    return out


def aggregate_rows(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """One row (task "aggregate", metric "centered_acc") per evaluation point:
    the mean over multiple-choice tasks of their centered `acc_norm`.

    stderr = sqrt(sum_t (stderr_t / (1 - chance_t))^2) / T over the T tasks
    (the standard error of a mean of independent estimates), None if any task
    has none. A point is left out unless every multiple-choice task its
    variant and seed were ever evaluated on is there, so means compare alike.
    Chance None counts as 0 (the value is then the plain accuracy).
    """
    points = _choice_rows_by_point(rows)
    seen: dict[tuple[str, int], set[str]] = {}
    for key, tasks in points.items():
        seen.setdefault(key[:2], set()).update(tasks)
    return [_aggregate_row(tasks) for key, tasks in points.items()
            if set(tasks) == seen[key[:2]]]


def _values_by_seed(rows: Iterable[Row], task: str, metric: str, *,
                    final: bool = False) -> dict[str, dict[int, dict[int, Row]]]:
    """variant -> tokens -> seed -> row for `task`/`metric` (only final rows
    when `final`); the last row given wins when a seed repeats at a point."""
    out: dict[str, dict[int, dict[int, Row]]] = {}
    for row in rows:
        if row["task"] != task or row["metric"] != metric or (final and not row["final"]):
            continue
        by_tokens = out.setdefault(str(row["variant"]), {})
        by_tokens.setdefault(int(row["tokens"]), {})[int(row["seed"])] = row
    return out


def curves(rows: Iterable[Row], task: str, metric: str) -> dict[str, list[Point]]:
    """Per variant (in order of first appearance), its mean curve over seeds
    for `task`/`metric`: one Point per evaluated `tokens`, sorted by tokens."""
    out: dict[str, list[Point]] = {}
    for variant, by_tokens in _values_by_seed(rows, task, metric).items():
        points = []
        for tokens in sorted(by_tokens):
            values = [float(r["value"]) for r in by_tokens[tokens].values()]
            points.append(Point(tokens, statistics.fmean(values), min(values), max(values),
                                len(values)))
        out[variant] = points
    return out


def _finals(rows: Iterable[Row], task: str, metric: str) -> dict[str, list[Row]]:
    """Per variant, one final row per seed (a seed's latest final point)."""
    out: dict[str, list[Row]] = {}
    for variant, by_tokens in _values_by_seed(rows, task, metric, final=True).items():
        by_seed: dict[int, Row] = {}
        for tokens in sorted(by_tokens):
            by_seed.update(by_tokens[tokens])
        out[variant] = list(by_seed.values())
    return out


def mean_and_variance(finals: Sequence[Row]) -> tuple[float, float]:
    """Mean over seeds of their final values and the variance of that mean:
    s^2/n + mean(stderr_i^2)/n, where s^2 is the sample variance over the n
    seeds (0 for one seed) and a missing stderr counts as 0. The two terms add
    the seed-to-seed variance and the example sampling variance; as the seed
    spread already holds some sampling noise, the sum is conservative."""
    values = [float(r["value"]) for r in finals]
    n = len(values)
    spread = statistics.variance(values) if n > 1 else 0.0
    sampling = statistics.fmean(float(r["stderr"] or 0.0) ** 2 for r in finals)
    return statistics.fmean(values), spread / n + sampling / n


def paired_variance(finals: Sequence[Row], baseline: Sequence[Row]) -> float | None:
    """Variance of the mean difference over the seeds both have, when they
    share two or more: var(d_i)/n + (mean(se_v^2) + mean(se_b^2))/n, with d_i
    the per-seed difference. A seed fixes the init and the data order for
    every variant, so differences by seed remove the seed-to-seed spread both
    share (the sampling term stays, conservatively). None when fewer than two
    seeds are shared."""
    mine = {int(r["seed"]): r for r in finals}
    theirs = {int(r["seed"]): r for r in baseline}
    seeds = sorted(mine.keys() & theirs.keys())
    if len(seeds) < 2 or len(seeds) != len(mine) or len(seeds) != len(theirs):
        return None
    diffs = [float(mine[s]["value"]) - float(theirs[s]["value"]) for s in seeds]
    sampling = statistics.fmean(float(mine[s]["stderr"] or 0.0) ** 2
                                + float(theirs[s]["stderr"] or 0.0) ** 2 for s in seeds)
    return (statistics.variance(diffs) + sampling) / len(seeds)


def _compared(variant: str, task: str, metric: str, finals: Sequence[Row],
              baseline_rows: Sequence[Row] | None) -> Comparison:
    mean, variance = mean_and_variance(finals)
    if baseline_rows is None:
        return Comparison(variant, task, metric, mean, len(finals), None, None, None, None, None)
    base_mean, base_variance = mean_and_variance(baseline_rows)
    diff = mean - base_mean
    paired = paired_variance(finals, baseline_rows)
    seeds = min(len(finals), len(baseline_rows))
    half = t95(seeds - 1) * math.sqrt(paired if paired is not None
                                       else variance + base_variance)
    within = diff - half <= 0 <= diff + half
    good = diff > 0 if higher_is_better(metric) else diff < 0
    return Comparison(variant, task, metric, mean, len(finals), diff, diff - half, diff + half,
                      within, good and not within)


def compare(rows: Iterable[Row], variants: Sequence[str], task: str,
            metric: str) -> list[Comparison]:
    """Each variant's final mean for `task`/`metric` against the baseline
    (`variants[0]`), in `variants` order; a variant without final rows is left
    out. The difference's 95% interval is diff +- t * sqrt(variance): the
    variance by seed (`paired_variance`) when both ran the same two or more
    seeds, else var_v + var_b from `mean_and_variance`; t is Student's for
    (fewest seeds - 1) degrees of freedom (12.7 for two seeds: two seeds
    rarely show a difference beyond noise), the normal's 1.96 for one seed,
    whose interval then holds the sampling error over examples only. Within
    noise when it contains 0; better when the difference goes the good way
    and is not within noise."""
    finals = _finals(rows, task, metric)
    base_name = variants[0] if variants else None
    baseline = finals.get(base_name) if base_name is not None else None
    return [_compared(v, task, metric, finals[v], None if v == base_name else baseline)
            for v in variants if v in finals]


def _reached(value: float, target: float, higher: bool) -> bool:
    # Tolerance: the baseline's curve must reach its own final mean although
    # the two means may sum the same seeds in another order.
    if math.isclose(value, target, rel_tol=1e-9, abs_tol=1e-12):
        return True
    return value >= target if higher else value <= target


def _crossing(points: Sequence[Point], target: float, higher: bool) -> int | None:
    """Training tokens at which `points` first reach `target`, linearly
    interpolated between the last point short of it and the first reaching it."""
    for index, point in enumerate(points):
        if not _reached(point.mean, target, higher):
            continue
        if index == 0:
            return point.tokens
        before = points[index - 1]
        share = (target - before.mean) / (point.mean - before.mean)
        share = min(1.0, max(0.0, share))
        return round(before.tokens + share * (point.tokens - before.tokens))
    return None


def tokens_to_match(rows: Iterable[Row], variants: Sequence[str], task: str,
                    metric: str) -> dict[str, int | None]:
    """Per variant, the training tokens at which its mean curve first reaches
    the baseline's final mean (mean over seeds of their final values): >= the
    target when higher is better, <= otherwise, linearly interpolated between
    the two evaluation points around the crossing. None if never reached (or
    no baseline). The baseline itself is computed the same way, so its entry
    is its final tokens, or fewer if it got there earlier."""
    rows = list(rows)
    finals = _finals(rows, task, metric)
    if not variants or variants[0] not in finals:
        return {v: None for v in variants}
    target = mean_and_variance(finals[variants[0]])[0]
    higher = higher_is_better(metric)
    lines = curves(rows, task, metric)
    return {v: _crossing(lines.get(v, []), target, higher) for v in variants}
