"""The asset bundle (databricks.yml, resources/*.yml) against the bundle
schema as Databricks publishes it: the `databricks-bundles` package's models,
generated from that schema (version pinned in setup.cfg)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# Top-level mappings of databricks.yml (Databricks' configuration reference).
TOP_LEVEL = {"bundle", "include", "artifacts", "variables", "targets", "workspace", "resources",
             "sync", "permissions", "run_as", "presets", "experimental", "scripts"}
TARGET_KEYS = {"mode", "default", "workspace", "variables", "resources", "artifacts", "presets",
               "run_as", "permissions", "sync", "cluster_id", "git", "bundle"}


def load_bundle() -> tuple[dict, dict]:
    main = yaml.safe_load((ROOT / "databricks.yml").read_text())
    resources: dict = {}
    for pattern in main.get("include", []):
        for path in sorted(ROOT.glob(pattern)):
            for kind, items in yaml.safe_load(path.read_text())["resources"].items():
                resources.setdefault(kind, {}).update(items)
    return main, resources


def validate(main: dict, resources: dict) -> None:
    """Raise if the bundle does not fit the schema (ValueError / TypeError)."""
    from databricks.bundles.jobs import Job

    unknown = set(main) - TOP_LEVEL
    if unknown:
        raise ValueError(f"unknown top-level mapping(s): {sorted(unknown)}")
    if not isinstance(main.get("bundle", {}).get("name"), str):
        raise ValueError("bundle.name is required")
    for name, target in main.get("targets", {}).items():
        if set(target) - TARGET_KEYS or target.get("mode") not in (None, "development",
                                                                     "production"):
            raise ValueError(f"target {name} does not fit the schema: {target}")
    declared = set(main.get("variables", {}))
    for kind, items in resources.items():
        if kind != "jobs":
            raise ValueError(f"unexpected resource kind {kind}")
        for job in items.values():
            Job.from_dict(copy.deepcopy(job))
            used = {v.split("}")[0] for v in yaml.safe_dump(job).split("${var.")[1:]}
            if used - declared:
                raise ValueError(f"undeclared variable(s): {sorted(used - declared)}")


def test_the_bundle_fits_the_schema_and_runs_the_entry_point_on_gpus():
    pytest.importorskip("databricks.bundles")
    main, resources = load_bundle()
    validate(main, resources)
    job = resources["jobs"]["prox_spark_refresh"]
    task = job["tasks"][0]
    assert task["python_wheel_task"]["entry_point"] == "prox-spark"
    assert "gpu" in job["job_clusters"][0]["new_cluster"]["spark_version"]
    assert job["schedule"]["quartz_cron_expression"] == "${var.schedule}"
    assert {t: v["mode"] for t, v in main["targets"].items()} == {
        "dev": "development", "prod": "production"}
    assert (ROOT / "conf" / "gpu_cluster.yaml").is_file()


@pytest.mark.parametrize("break_it", [
    lambda m, r: r["jobs"]["prox_spark_refresh"].update(schedul=r["jobs"][
        "prox_spark_refresh"].pop("schedule")),
    lambda m, r: r["jobs"]["prox_spark_refresh"]["tasks"][0]["python_wheel_task"].pop(
        "entry_point"),
    lambda m, r: r["jobs"]["prox_spark_refresh"]["job_clusters"][0]["new_cluster"].update(
        num_worker=2),
    lambda m, r: m.update(target=m.pop("targets")),
    lambda m, r: m["targets"]["prod"].update(mode="producton"),
    lambda m, r: r["jobs"]["prox_spark_refresh"]["tasks"][0]["python_wheel_task"].update(
        parameters=["run", "${var.configg}"]),
])
def test_a_broken_copy_is_refused(break_it):
    pytest.importorskip("databricks.bundles")
    main, resources = load_bundle()
    break_it(main, resources)
    with pytest.raises((ValueError, TypeError)):
        validate(main, resources)
