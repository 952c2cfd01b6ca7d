"""The main job on a real multi-executor Spark cluster whose executors each
own a (fake) GPU: `local-cluster[2,1,4096]`, two executor JVMs with their own
Python workers, GPU addresses from scripts/fake_gpus.sh, vLLM on CPU.

What Spark and the workers did is read back from two records: the engine
log each Python worker appends to (`PROX_SPARK_ENGINE_LOG`) and Spark's own
event log (which stage ran under which resource profile).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import CLI

pytestmark = [pytest.mark.spark, pytest.mark.vllm]

ROOT = Path(__file__).resolve().parents[1]
DOCS = 12


def _events(folder: Path) -> list[dict]:
    files = [f for f in folder.iterdir() if f.is_file()]
    assert len(files) == 1, files  # uncompressed, not rolled over (see the run below)
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


def _stages(events: list[dict]) -> dict[int, tuple[int, set[str]]]:
    """stage id -> (resource profile id, names of the operators it ran)."""
    out = {}
    for e in events:
        if e["Event"] != "SparkListenerStageSubmitted":
            continue
        info = e["Stage Info"]
        scopes = set()
        for rdd in info.get("RDD Info", []):
            if rdd.get("Scope"):
                scopes.add(json.loads(rdd["Scope"])["name"])
        out[info["Stage ID"]] = (info["Resource Profile Id"], scopes)
    return out


def _gpu_profiles(events: list[dict]) -> dict[int, float]:
    return {e["Resource Profile Id"]: e["Task Resource Requests"]["gpu"]["Amount"]
            for e in events if e["Event"] == "SparkListenerResourceProfileAdded"
            and "gpu" in e.get("Task Resource Requests", {})}


@pytest.fixture(scope="module")
def cluster_run(spark, tiny_model, tmp_path_factory):
    import json as _json

    tmp = tmp_path_factory.mktemp("cluster")
    lines = (ROOT / "data" / "sample" / "web_docs.jsonl").read_text().splitlines()[:DOCS]
    rows = [(str(d["id"]), d["text"]) for d in map(_json.loads, lines)]
    source = str(tmp / "source")
    spark.createDataFrame(rows, "id string, text string").write.format("delta").save(source)
    log, events = tmp / "engines.jsonl", tmp / "events"
    events.mkdir()
    env = {**os.environ, "PROX_SPARK_ENGINE_LOG": str(log),
           "PROX_SPARK_FAKE_GPU_KEY": uuid.uuid4().hex}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    cmd = [CLI, "run", "conf/local_cluster.yaml",
           "--input", source, "--input-format", "delta", "--output", str(tmp / "refined"),
           "--doc-model", str(tiny_model), "--chunk-model", str(tiny_model),
           "--commit-every", str(DOCS // 2),
           "--spark-conf", "spark.eventLog.enabled=true",
           "--spark-conf", f"spark.eventLog.dir={events}",
           "--spark-conf", "spark.eventLog.compress=false",
           "--spark-conf", "spark.eventLog.rolling.enabled=false",
           "--spark-conf", f"spark.executorEnv.PROX_SPARK_ENGINE_LOG={log}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return {"proc": proc, "records": records, "events": _events(events),
            "refined": str(tmp / "refined")}


def test_every_row_comes_back_from_the_cluster(spark, cluster_run):
    table = spark.read.format("delta").load(cluster_run["refined"])
    assert table.count() == DOCS
    assert table.where("status is null").count() == 0
    assert "2 batch(es)" in cluster_run["proc"].stderr
    assert "prox-spark run summary" in cluster_run["proc"].stdout


def test_model_tasks_see_only_their_own_gpu_and_never_share_it(cluster_run):
    records = cluster_run["records"]
    starts = [r for r in records if r["event"] == "model_task"]
    ends = {r["task_attempt_id"]: r["time"] for r in records if r["event"] == "model_task_done"}
    # prox_doc then prox_chunk run as one pass: both engines in each task's worker.
    assert {r["model_stage"] for r in starts} == {"prox_doc+prox_chunk"}
    for r in starts:
        assert len(r["gpus"]) == 1 and r["cuda_visible_devices"] == r["gpus"][0], r
    # The workers timed their calls into vLLM (what the benchmarks report).
    assert sum(r["generate_seconds"] for r in records if r["event"] == "model_task_done") > 0
    executors = defaultdict(set)
    for r in starts:
        executors[r["cwd"]].add(r["gpus"][0])
    # Two executors, each with its own GPU address.
    assert len(executors) == 2 and all(len(a) == 1 for a in executors.values())
    assert len(set.union(*executors.values())) == 2
    by_gpu = defaultdict(list)
    for r in starts:
        by_gpu[r["gpus"][0]].append((r["time"], ends[r["task_attempt_id"]]))
    for spans in by_gpu.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, "two model tasks held one GPU at once"


def test_only_model_stages_ask_for_a_gpu(cluster_run):
    events = cluster_run["events"]
    gpu = _gpu_profiles(events)
    assert list(gpu.values()) == [1.0]
    stages = _stages(events)
    model = {s for s, (_, ops) in stages.items() if any("MapInArrow" in o for o in ops)}
    python_udfs = {s for s, (_, ops) in stages.items() if any("ArrowEvalPython" in o for o in ops)}
    assert model and python_udfs, stages
    assert all(stages[s][0] in gpu for s in model)
    # Rules (c4_quality), word counts and the interpreter: default profile, no GPU.
    assert all(stages[s][0] == 0 for s in python_udfs - model)
    assert python_udfs - model
    task_stages = {r["stage"] for r in cluster_run["records"] if r["event"] == "model_task"}
    assert task_stages <= model


def test_each_executor_builds_each_engine_once_within_its_gpu_budget(cluster_run):
    records = cluster_run["records"]
    built = [r for r in records if r["event"] == "engine_built"]
    assert not [r for r in records if r["event"] == "engine_failed"]
    engines = defaultdict(list)
    for r in built:
        engines[(r["cwd"], r["pool"])].append(r["llm_args"]["max_num_seqs"])
        assert r["gpus"] == [r["cuda_visible_devices"]]
    # One worker per executor runs the model pass and holds both engines (the
    # doc and the chunk model's, told apart here by max_num_seqs), built once.
    assert len(engines) == 2
    assert all(sorted(seqs) == [64, 256] for seqs in engines.values()), engines
    # ... across both batches (two Spark jobs), on the cached engines.
    tasks = defaultdict(set)
    for r in records:
        if r["event"] == "model_task":
            tasks[(r["cwd"], r["pool"])].add(r["stage"])
    assert set(tasks) == set(engines)
    assert all(len(stages) == 2 for stages in tasks.values()), tasks
    # What reached vllm.LLM: the engines on one GPU take 0.9 of it together.
    on_gpu = defaultdict(float)
    for r in built:
        assert r["llm_args"]["gpu_memory_utilization"] == 0.45
        on_gpu[(r["cwd"], r["gpus"][0])] += r["llm_args"]["gpu_memory_utilization"]
    assert sorted(on_gpu.values()) == [0.9, 0.9]
