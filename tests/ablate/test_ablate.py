"""`prox-spark ablate` end to end: real Spark and Delta, proxies trained with
transformers for seconds, scored with lm-eval; a noisy corpus against its
clean twin and against itself refined by prox-spark's rule stages."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import start_cli
from prox_spark.ablate import load_ablate_config, plan_ablation, run_ablation
from prox_spark.ablate.proxy import DONE_FILE, POINT_FILE
from prox_spark.ablate.results import KEY
from prox_spark.config import load_config
from prox_spark.distill.tokenizer import build_tokenizer
from prox_spark.run.job import run_pipeline
from prox_spark.testing.ablation_corpus import (
    multiple_choice,
    prose_documents,
    with_boilerplate,
    write_jsonl,
)

pytestmark = pytest.mark.spark
SETTINGS: dict[str, Any] = {
    "tokens": 40_000,
    "model": {"hidden_size": 64, "layers": 2, "heads": 2, "seq_len": 128},
    "train": {"batch_size": 8, "learning_rate": 0.001, "eval_every_tokens": 20_000},
}


@pytest.fixture(scope="module")
def corpus(config_file: Any, tmp_path_factory: pytest.TempPathFactory, spark: Any) -> Path:
    """noisy.jsonl (40% boilerplate lines), clean.jsonl (the same documents),
    ref.jsonl (other clean documents), mc.jsonl, a shared tokenizer, and
    `rules/`: noisy.jsonl refined by the c4_quality rule stage."""
    root = tmp_path_factory.mktemp("ablate")
    clean = prose_documents(300, seed=1)
    write_jsonl(clean, root / "clean.jsonl")
    noisy = with_boilerplate(clean, share=0.4, seed=2)
    write_jsonl(noisy, root / "noisy.jsonl")
    write_jsonl(prose_documents(40, seed=99, prefix="ref"), root / "ref.jsonl")
    write_jsonl(multiple_choice(20, seed=3), root / "mc.jsonl")
    build_tokenizer(root / "tokenizer", [d["text"] for d in clean + noisy], 1000)
    job = config_file(root, name="rules.yaml", source=root / "noisy.jsonl",
                      output=root / "rules", stages=["c4_quality"])
    run_pipeline(load_config(job), spark)
    return root


def ablate_section(root: Path, name: str, variants: list[dict[str, Any]], seeds: list[int],
                   **extra: Any) -> dict[str, Any]:
    """The `ablate` section of the ablation `name`, for the `config_file` fixture."""
    return {"output": {"path": str(root / name / "results")}, "variants": variants,
            "seeds": seeds, "tokenizer": str(root / "tokenizer"), **SETTINGS,
            "eval": {"reference": {"path": str(root / "ref.jsonl"), "format": "jsonl"},
                     "tasks": [], "task_files": [str(root / "mc.jsonl")], "limit": 40},
            **extra}


def source(root: Path, name: str) -> dict[str, Any]:
    return {"name": name, "input": {"path": str(root / f"{name}.jsonl"), "format": "jsonl"}}


@pytest.fixture(scope="module")
def main_run(config_file: Any, corpus: Path, spark: Any) -> tuple[Any, Any, Path]:
    """The plan, then the run, of noisy vs clean vs rules-refined, two seeds."""
    variants = [source(corpus, "noisy"), source(corpus, "clean"),
                {"name": "rules", "table": {"path": str(corpus / "rules")}}]
    path = config_file(corpus, name="main.yaml",
                       ablate=ablate_section(corpus, "main", variants, [0, 1]))
    config = load_ablate_config(path)
    plan = plan_ablation(config, spark)
    assert not (corpus / "main").exists()  # the plan writes nothing
    return plan, run_ablation(config, spark), path


def finals(rows: list[dict[str, Any]], task: str, metric: str) -> dict[tuple[str, int], float]:
    return {(r["variant"], r["seed"]): r["value"] for r in rows
            if r["final"] and r["task"] == task and r["metric"] == metric}


def test_clean_and_rule_refined_text_beat_noisy_text_on_bits_per_byte(main_run) -> None:
    _, summary, _ = main_run
    bpb = finals(summary.rows, "reference", "bits_per_byte")
    assert len(bpb) == 6
    for seed in (0, 1):
        assert bpb[("clean", seed)] < bpb[("noisy", seed)], bpb
        assert bpb[("rules", seed)] < bpb[("noisy", seed)], bpb
    keys = [tuple(r[k] for k in KEY) for r in summary.rows]
    assert len(keys) == len(set(keys))
    # 3 variants x 2 seeds x 2 points x (bpb, acc, acc_norm, loss)
    assert len(summary.rows) == 3 * 2 * 2 * 4
    assert {r["tokens"] for r in summary.rows} == {20_480, 40_000}
    report = Path(summary.report).read_text(encoding="utf-8")
    assert 'id="final-reference-bits_per_byte"' in report and 'id="match"' in report
    assert "rules" in report


def test_plan_figures_are_what_the_run_trains(main_run, corpus: Path) -> None:
    plan, summary, _ = main_run
    assert [(v.name, v.documents, v.tokens, v.sampled_documents, v.sampled_tokens)
            for v in plan.variants] == \
        [(v.name, v.documents, v.tokens, v.sampled_documents, v.sampled_tokens)
         for v in summary.plan.variants]
    assert plan.parameters == summary.plan.parameters == summary.rows[0]["parameters"]
    assert plan.steps == max(r["step"] for r in summary.rows) == 40  # ceil(40,000 / 1,024)
    assert plan.flops_per_variant == 6 * plan.parameters * 40_000 * 2
    assert "FLOPs" in plan.render() and "noisy: 300 documents" in plan.render()
    samples = sorted(p.name for p in (corpus / "main" / "results_work" / "samples").iterdir())
    assert len(samples) == 3
    assert not plan.measured and summary.plan.measured is False


def test_a_finished_ablation_run_again_trains_nothing(main_run, spark) -> None:
    _, first, path = main_run
    again = run_ablation(load_ablate_config(path), spark)
    assert again.trained == [] and len(again.reused) == 6
    assert again.rows == first.rows
    assert again.plan.measured  # the rerun's plan uses the throughput measured here




def test_a_killed_ablation_resumes_to_the_uninterrupted_results(config_file: Any, main_run,
                                                                corpus: Path, spark) -> None:
    """kill -9 while the second proxy trains; run again: the first proxy is
    not trained again, the second resumes from its checkpoint, and every row
    equals the uninterrupted run's (same fingerprints), written once."""
    _, uninterrupted, _ = main_run
    variants = [source(corpus, "noisy"), source(corpus, "clean")]
    path = config_file(corpus, name="killed.yaml",
                       ablate=ablate_section(corpus, "killed", variants, [0]))
    proxies = corpus / "killed" / "results_work" / "proxies"
    proc = start_cli("ablate", path, corpus)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if list(proxies.glob(f"clean/*/checkpoints/checkpoint-*/{POINT_FILE}")):
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    first_done = next(proxies.glob(f"noisy/*/{DONE_FILE}"))
    stamp = first_done.stat().st_mtime_ns
    assert not list(proxies.glob(f"clean/*/{DONE_FILE}"))

    rerun = start_cli("ablate", path, corpus)
    out, _ = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, out
    assert "reused (finished before): noisy/seed 0" in out
    assert "proxies trained: clean/seed 0" in out
    assert first_done.stat().st_mtime_ns == stamp
    from prox_spark.ablate.results import read_rows
    from prox_spark.refs import TableRef

    rows = read_rows(spark, TableRef(path=str(corpus / "killed" / "results")))
    keys = [tuple(r[k] for k in KEY) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * 2 * 4
    expected = {tuple(r[k] for k in KEY): r["value"] for r in uninterrupted.rows
                if r["seed"] == 0 and r["variant"] in ("noisy", "clean")}
    assert set(expected) == set(keys)
    for row in rows:
        assert row["value"] == pytest.approx(expected[tuple(row[k] for k in KEY)], rel=1e-4), row


def test_plan_on_the_command_line_writes_nothing(config_file: Any, main_run, corpus: Path,
                                                 capsys) -> None:
    from prox_spark import cli

    variants = [source(corpus, "noisy"), source(corpus, "clean")]
    path = config_file(corpus, name="planned.yaml",
                       ablate=ablate_section(corpus, "planned", variants, [0, 1, 2],
                                             allow_repeat=True, tokens=100_000))
    assert cli.main(["ablate", str(path), "--plan"]) == 0
    out = capsys.readouterr().out
    assert "2 variants x 3 seeds" in out
    assert "repeated" in out and "epochs" in out
    assert "a stated default" in out  # this results table has trained nothing yet
    assert not (corpus / "planned").exists()
    assert not (corpus / "planned_report.html").exists()


def test_the_notebook_runs_the_ablation_and_shows_its_report(main_run, corpus: Path,
                                                             spark) -> None:
    """notebooks/ablate.py with the main run's settings: every proxy is
    reused, and the report is displayed."""
    from prox_spark.testing.databricks import run_notebook

    _, _, path = main_run
    section = yaml.safe_load(path.read_text())["ablate"]
    ran = run_notebook(Path(__file__).resolve().parents[2] / "notebooks" / "ablate.py", spark,
                       variants=json.dumps(section["variants"]),
                       output=section["output"]["path"], work_dir="",
                       tokens=str(section["tokens"]), seeds="0,1",
                       model=json.dumps(section["model"]), train=json.dumps(section["train"]),
                       eval=json.dumps(section["eval"]), tokenizer=section["tokenizer"],
                       plan_only="false")
    assert ran["summary"].trained == [] and len(ran["summary"].reused) == 6
    assert ran["shown"][-1].startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("case", ["empty", "not_prox", "unknown_task", "short"])
def test_bad_variants_and_tasks_stop_with_one_line_and_write_nothing(config_file: Any,
                                                                     corpus: Path, case: str,
                                                                     spark) -> None:
    from prox_spark import cli

    variants = [source(corpus, "noisy"), source(corpus, "clean")]
    extra: dict[str, Any] = {}
    if case == "empty":
        (corpus / "empty.jsonl").write_text('{"id": "a", "text": ""}\n{"id": "b"}\n')
        variants[0] = source(corpus, "empty")
        expect = "ablate.variants[0]: variant 'empty' holds no document with text"
    elif case == "not_prox":
        spark.createDataFrame([("a", "x")], "id string, text string").write.format(
            "delta").mode("overwrite").save(str(corpus / "plain"))
        variants[1] = {"name": "plain", "table": {"path": str(corpus / "plain")}}
        expect = "is not a prox-spark refined table"
    elif case == "unknown_task":
        extra["eval"] = {"tasks": ["no_such_task_xyz"]}
        expect = "ablate.eval.tasks: unknown lm-eval task(s): no_such_task_xyz"
    else:
        extra["tokens"] = 10_000_000
        expect = "ablate.tokens: variant 'noisy' holds"
    path = config_file(corpus, name=f"bad-{case}.yaml",
                       ablate=ablate_section(corpus, f"bad-{case}", variants, [0], **extra))
    err_file = corpus / f"bad-{case}.err"
    with err_file.open("w") as err, _stderr_to(err):
        code = cli.main(["ablate", str(path)])
    message = err_file.read_text()
    assert code == 2, message
    assert expect in message, message
    assert not (corpus / f"bad-{case}").exists()


class _stderr_to:
    """Point sys.stderr at a file for the block."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.saved = fh, None

    def __enter__(self) -> None:
        self.saved, sys.stderr = sys.stderr, self.fh

    def __exit__(self, *exc: object) -> None:
        sys.stderr = self.saved


def test_two_processes_under_torch_distributor_save_every_point(corpus: Path, spark) -> None:
    """num_processes: 2 trains as two DDP processes (TorchDistributor, local
    mode, gloo on CPU); rank 0 saves a checkpoint and its point at every
    evaluation step, then done.json."""
    import numpy as np

    from prox_spark.ablate.config import ProxyModel, ProxyTraining
    from prox_spark.ablate.proxy import ProxyJob, points, schedule, train_proxy

    data = corpus / "ddp.npy"
    np.save(data, np.random.default_rng(0).integers(3, 900, 8192, dtype=np.uint32))
    model = ProxyModel(hidden_size=64, layers=1, heads=1, seq_len=128)
    train = ProxyTraining(batch_size=4, num_processes=2, eval_every_tokens=4096)
    folder = corpus / "ddp"
    train_proxy(ProxyJob(str(folder), str(data), str(corpus / "tokenizer"), 8192, 0, model,
                         train))
    assert [(p["step"], p["tokens"]) for _, p in points(folder)] == \
        schedule(8192, model, train) == [(4, 4096), (8, 8192)]
    assert (folder / DONE_FILE).is_file()
    assert all(p["loss"] is not None and p["train_seconds"] > 0 for _, p in points(folder))
