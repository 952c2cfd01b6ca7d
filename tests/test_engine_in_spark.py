"""A real vLLM engine inside Spark pandas UDFs: one engine per Python worker,
reused by later jobs; two engines side by side within a memory budget."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pandas as pd
import pytest

from prox_spark.generation.engine import EngineConfig, engines_created, get_engine, release_engines

pytestmark = [pytest.mark.spark, pytest.mark.vllm]

KV_GIB = 0.25


def _generate_with_probe(config: EngineConfig):
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("text string, pid int, engines int")
    def generate(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        import os as worker_os

        from prox_spark.generation import engine as worker_engine

        for prompts in batches:
            eng = worker_engine.get_engine(config)
            gens = eng.generate(prompts.tolist(), max_new_tokens=8)
            yield pd.DataFrame(
                {
                    "text": [g.text for g in gens],
                    "pid": worker_os.getpid(),
                    "engines": worker_engine.engines_created(),
                }
            )

    return generate.asNondeterministic()


def test_engine_is_created_once_per_worker_and_reused(spark, tiny_model):
    config = EngineConfig(model=str(tiny_model), dtype="float32", kv_cache_gib=KV_GIB,
                          enforce_eager=True, max_num_seqs=16)
    udf = _generate_with_probe(config)
    df = spark.createDataFrame(
        [(i, f"[INST] prompt number {i} [/INST]") for i in range(8)], "id int, prompt string"
    ).repartition(2)
    assert df.rdd.getNumPartitions() == 2

    # Spark hands out idle Python workers in FIFO order, and earlier tests may
    # have left idle workers without an engine; run jobs until one lands in a
    # worker that served an earlier job.
    # A worker may also hold engines of earlier tests' configs (the session
    # is shared), so what is checked is that a worker's count, once it holds
    # this engine, never grows: later jobs reuse the engine it built.
    runs: list[pd.DataFrame] = []
    built: dict[int, int] = {}
    reused: set[int] = set()
    while len(runs) < 8 and not reused:
        run = df.select("id", udf("prompt").alias("g")).select("id", "g.*").toPandas()
        assert len(run) == 8
        assert run["text"].map(lambda t: isinstance(t, str)).all()
        for pid, engines in zip(run["pid"], run["engines"], strict=True):
            assert engines >= 1
            assert built.setdefault(pid, engines) == engines, f"worker {pid} built it again"
        reused = set(run["pid"]) & {pid for r in runs for pid in r["pid"]}
        runs.append(run)
    assert reused, "no Spark job ever reused a Python worker"
    assert len(runs) >= 2
    # Greedy decoding is reproducible across jobs and workers.
    merged = runs[0].merge(runs[-1], on="id", suffixes=("_1", "_2"))
    assert (merged["text_1"] == merged["text_2"]).all()


def test_two_engines_fit_with_an_explicit_kv_budget(tiny_model):
    """Two engines in one process, each with a capped KV cache, both answer."""
    import psutil

    before = psutil.virtual_memory().available
    release_engines()
    created = engines_created()
    a = get_engine(EngineConfig(model=str(tiny_model), dtype="float32", kv_cache_gib=KV_GIB,
                                enforce_eager=True, seed=1))
    b = get_engine(EngineConfig(model=str(tiny_model), dtype="float32", kv_cache_gib=KV_GIB,
                                enforce_eager=True, seed=2))
    assert engines_created() == created + 2
    assert a is not b
    assert a.generate(["[INST] hi [/INST]"], 4)[0].text is not None
    assert b.generate(["[INST] hi [/INST]"], 4)[0].text is not None
    used = before - psutil.virtual_memory().available
    # Each engine reserved its 0.25 GiB of KV cache, not most of the RAM.
    assert used < 6 * 1024**3, f"two capped engines took {used / 1024**3:.1f} GiB"
    release_engines()
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
