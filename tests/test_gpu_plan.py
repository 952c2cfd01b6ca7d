"""The GPU memory plan and task resources, validated before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prox_spark.config import ConfigError, parse_config
from prox_spark.resources import TaskResources, shares

ROOT = Path(__file__).resolve().parents[1]


def gpu_config(**changes):
    raw = yaml.safe_load((ROOT / "conf" / "gpu_cluster.yaml").read_text())
    for section, values in changes.items():
        if isinstance(values, dict) and isinstance(raw.get(section), dict):
            raw[section] = {**raw[section], **values}
        else:
            raw[section] = values
    return parse_config(raw, check_models=False, check_paths=False)


def test_shipped_gpu_config_splits_each_gpu_between_its_engines():
    cfg = gpu_config()
    doc, chunk = cfg.doc_model, cfg.chunk_model
    assert doc.resources == chunk.resources == TaskResources(gpus_per_task=1, cpus_per_task=1)
    assert doc.engine.gpu_memory_utilization == chunk.engine.gpu_memory_utilization == 0.45
    assert doc.engine.gpu_memory_utilization + chunk.engine.gpu_memory_utilization \
        <= cfg.gpu_memory_fraction


def test_fractional_gpus_put_more_engines_on_one_gpu():
    half = {"resources": {"gpus_per_task": 0.5}}
    cfg = gpu_config(doc_model=half, chunk_model=half)
    # Two tasks of each model share a GPU: four engines take 0.9 together.
    assert cfg.doc_model.engine.gpu_memory_utilization == 0.225
    assert cfg.chunk_model.resources.tasks_per_gpu == 2
    only_doc = gpu_config(doc_model=half, stages=["prox_doc"])
    assert only_doc.doc_model.engine.gpu_memory_utilization == 0.45


def test_explicit_shares_are_kept_and_the_rest_split():
    cfg = gpu_config(doc_model={"gpu_memory_utilization": 0.2})
    assert cfg.doc_model.engine.gpu_memory_utilization == 0.2
    assert cfg.chunk_model.engine.gpu_memory_utilization == 0.7


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"doc_model": {"gpu_memory_utilization": 0.6},
      "chunk_model": {"gpu_memory_utilization": 0.5}},
     "doc_model.gpu_memory_utilization, chunk_model.gpu_memory_utilization",
     "engines on one GPU would take 1.1 of it (doc_model.gpu_memory_utilization 0.6 x 1 "
     "task(s) + chunk_model.gpu_memory_utilization 0.5 x 1 task(s)), more than "
     "gpu_memory_fraction 0.9"),
    ({"doc_model": {"gpu_memory_utilization": 0.9}},
     "doc_model.gpu_memory_utilization, chunk_model.gpu_memory_utilization",
     "with nothing left for chunk_model"),
    ({"doc_model": {"gpu_memory_utilization": 0.4, "resources": {"gpus_per_task": 0.5}},
      "chunk_model": {"gpu_memory_utilization": 0.2}},
     "doc_model.gpu_memory_utilization, chunk_model.gpu_memory_utilization",
     "0.4 x 2 task(s)"),
    ({"gpu_memory_fraction": 1.5}, "gpu_memory_fraction", "must be above 0 and at most 1"),
    ({"doc_model": {"resources": {"gpus_per_task": 0.3}}}, "doc_model.resources",
     "must be 1/n"),
    ({"doc_model": {"resources": {"gpus_per_task": 1, "cpus_per_task": 0}}},
     "doc_model.resources", "cpus_per_task must be at least 1"),
    ({"doc_model": {"resources": {"gpu": 1}}}, "doc_model.resources.gpu", "unknown key"),
])
def test_plans_that_cannot_fit_are_refused_naming_the_fields(changes, field, message):
    with pytest.raises(ConfigError) as err:
        gpu_config(**changes)
    assert err.value.field == field
    assert message in str(err.value)


def test_shares_are_a_pure_function():
    one = TaskResources()
    assert shares([("a", one, None)], 0.9) == {"a": 0.9}
    assert shares([("a", None, None), ("b", None, None)], 0.5) == {"a": 0.25, "b": 0.25}
