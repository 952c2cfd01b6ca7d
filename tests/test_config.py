"""Configuration errors: one clear message naming the field, exit code 2,
nothing written, no Spark started."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prox_spark.cli import main
from prox_spark.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text("{}")
    return path


@pytest.fixture
def base(tmp_path: Path, model_dir: Path) -> dict:
    corpus = tmp_path / "in.jsonl"
    corpus.write_text('{"id": 1, "text": "hello"}\n')
    return {
        "input": {"path": str(corpus), "format": "jsonl"},
        "output": {"path": str(tmp_path / "out")},
        "doc_model": {"model": str(model_dir)},
        "chunk_model": {"model": str(model_dir)},
    }


def test_the_shipped_configs_are_valid():
    for name in ("local.yaml", "gpu_cluster.yaml"):
        cfg = load_config(ROOT / "conf" / name, check_models=False, check_paths=False)
        assert cfg.doc_model is not None and cfg.chunk_model is not None
    rules = load_config(ROOT / "conf" / "rules_only.yaml", check_paths=False)
    # Dedup runs after the filters, so its keepers are documents that survive (issue 17).
    assert [s.name for s in rules.stages][-2:] == ["exact_dedup", "near_dedup"]
    local = load_config(ROOT / "conf" / "local.yaml", check_models=False, check_paths=False)
    assert local.doc_model.engine.model == "gair-prox/web-doc-refining-lm"
    assert local.chunk_model.engine.model == "gair-prox/web-chunk-refining-lm"
    assert local.policy.max_errors == 1 and local.policy.min_words == 10


def test_a_valid_config_loads(config_file, tmp_path, base):
    cfg = load_config(config_file(tmp_path, base))
    assert cfg.input.format == "jsonl"
    assert cfg.metrics.path == cfg.output.path + "_metrics"


def _break(base: dict, tmp_path: Path, case: str) -> tuple[dict, str | tuple[str, ...]]:
    """`base` broken as `case` says, and what the one error line must hold."""
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    if case == "unknown-key":
        raw["outptu"] = {"path": "x"}
        return raw, "outptu: unknown key"
    if case == "unknown-nested-key":
        raw["doc_model"]["modle"] = "x"
        return raw, "doc_model.modle: unknown key"
    if case == "missing-model":
        raw["doc_model"]["model"] = "gair-prox/no-such-refining-lm"
        # The message also says how to use a local copy instead.
        return raw, ("doc_model.model: cannot find model 'gair-prox/no-such-refining-lm'",
                     "--doc-model /path/to/model_dir")
    if case == "model-dir-without-config":
        empty = tmp_path / "empty-model"
        empty.mkdir()
        raw["chunk_model"]["model"] = str(empty)
        return raw, "chunk_model.model: directory"
    if case == "unreadable-input":
        raw["input"]["path"] = str(tmp_path / "nope.jsonl")
        return raw, "input.path:"
    if case == "input-not-delta":
        raw["input"]["format"] = "delta"
        return raw, "input.path: "
    if case == "output-not-delta":
        target = tmp_path / "not-delta"
        target.mkdir()
        (target / "data.csv").write_text("a,b\n")
        raw["output"] = {"path": str(target)}
        return raw, "is not a Delta table"
    if case == "bad-format":
        raw["input"]["format"] = "csv"
        return raw, "input.format: 'csv' is not one of"
    if case == "bad-table-name":
        raw["output"] = {"table": "main.corpus; DROP TABLE x"}
        return raw, "output.table:"
    if case == "wrong-type":
        raw["limit"] = "ten"
        return raw, "limit: expected int"
    if case == "bad-policy":
        raw["policy"] = {"min_kept_ratio": 2}
        return raw, "policy: min_kept_ratio must be between 0 and 1"
    if case == "no-models":
        del raw["doc_model"], raw["chunk_model"]
        return raw, "doc_model: configure doc_model, chunk_model or a stages list"
    if case == "bad-kv":
        raw["doc_model"]["kv_cache_gib"] = -1
        return raw, "doc_model: kv_cache_gib must be positive"
    if case == "bad-duplicate-rule":
        raw["input"]["on_duplicate_id"] = "newest"
        return raw, "input.on_duplicate_id: 'newest' is not one of error, first"
    if case == "bad-last-by":
        raw["input"]["on_duplicate_id"] = {"last_by": "a b"}
        return raw, "input.on_duplicate_id: last_by needs a plain column name"
    if case == "bad-delete-rule":
        raw["input"]["on_source_delete"] = "purge"
        return raw, "input.on_source_delete: 'purge' is not one of delete, keep"
    if case == "zero-commit-every":
        raw["commit_every"] = 0
        return raw, "commit_every: must be positive"
    if case == "zero-lease":
        raw["claim_lease_seconds"] = 0
        return raw, "claim_lease_seconds: must be positive, got 0"
    if case == "infinite-lease":
        raw["claim_lease_seconds"] = float("inf")
        return raw, "claim_lease_seconds: must be a finite number, got inf"
    if case == "nan-policy":
        raw["policy"] = {"min_kept_ratio": float("nan")}
        return raw, "policy: min_kept_ratio must be a finite number, got nan"
    if case == "report-sample-negative":
        raw["report"] = {"sample": -1}
        return raw, "report.sample: must be at least 0, got -1"
    if case == "null-means-default":
        raw["commit_every"] = None
        raw["spark"] = {"partitions": 0}
        return raw, "spark.partitions: must be above 0 and at most 100000, got 0"
    if case == "change-feed-on-jsonl":
        raw["input"]["change_feed"] = True
        return raw, "input.change_feed: needs a Delta source, not jsonl"
    if case == "cast-text-not-bool":
        raw["input"]["cast_text"] = "yes"
        return raw, "input.cast_text: expected bool"
    if case == "negative-min-doc-words":
        raw["stages"] = [{"gopher_quality": {"min_doc_words": -5}}]
        return raw, "stages[0].gopher_quality: min_doc_words must be at least 0, got -5"
    if case == "dup-line-frac-above-1":
        raw["stages"] = [{"gopher_repetition": {"dup_line_frac": 2.0}}]
        return raw, "stages[0].gopher_repetition: dup_line_frac must be between 0 and 1, got 2.0"
    if case == "max-below-min-doc-words":
        raw["stages"] = [{"gopher_quality": {"max_doc_words": 20}}]
        return raw, ("stages[0].gopher_quality: max_doc_words must be at least min_doc_words "
                     "(50), got 20")
    if case == "gpu-memory-fraction-3":
        raw["stages"] = ["exact_dedup"]
        raw["gpu_memory_fraction"] = 3
        return raw, "gpu_memory_fraction: must be above 0 and at most 1, got 3"
    if case == "dtype-typo":
        raw["doc_model"] = {**raw["doc_model"], "dtype": "float33"}
        return raw, "'float33' is not one of auto, half, float16, bfloat16, float, float32"
    if case == "output-under-a-file":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        raw["output"] = {"path": str(blocker / "refined")}
        return raw, f"output.path: {blocker} is a file, so"
    if case == "last-by-null":
        raw["input"]["on_duplicate_id"] = {"last_by": None}
        return raw, "input.on_duplicate_id: last_by needs a column name, got None"
    if case == "text-is-id":
        raw["input"]["text_column"] = "id"
        return raw, "input.text_column: is input.id_column too"
    if case == "chunk-before-doc":
        raw["stages"] = ["prox_chunk", "prox_doc"]
        return raw, "stages: prox_chunk comes before prox_doc"
    if case == "metrics-inside-output":
        raw["metrics"] = {"path": str(tmp_path / "out" / "metrics")}
        return raw, "metrics: metrics lies inside output"
    if case == "report-path-is-input":
        raw["report"] = {"path": raw["input"]["path"]}
        return raw, "report.path: is the same location as input"
    if case == "prompt-beyond-context":
        raw["doc_model"] = {**raw["doc_model"], "max_prompt_tokens": 5000}
        return raw, ("doc_model: max_prompt_tokens (5000) + max_new_tokens (15) = 5015 exceeds "
                     "max_model_len (2048)")
    if case == "dedup-twice":
        raw["stages"] = ["exact_dedup", "c4_quality", "exact_dedup"]
        return raw, "stages: exact_dedup appears more than once"
    if case == "huge-partitions":
        raw["spark"] = {"partitions": 10**9}
        return raw, "spark.partitions: must be above 0 and at most 100000"
    raise AssertionError(case)


# A stage entry's own errors (a parameter's type, an unknown stage) are the
# stage registry's: tests/test_stage_registry.py.
CASES = ["bad-duplicate-rule", "bad-last-by", "bad-delete-rule",
         "zero-commit-every", "zero-lease", "infinite-lease", "nan-policy",
         "report-sample-negative", "null-means-default",
         "change-feed-on-jsonl", "cast-text-not-bool",
         "unknown-key", "unknown-nested-key", "missing-model", "model-dir-without-config",
         "unreadable-input", "input-not-delta", "output-not-delta", "bad-format",
         "bad-table-name", "wrong-type", "bad-policy", "no-models", "bad-kv",
         "negative-min-doc-words", "dup-line-frac-above-1", "max-below-min-doc-words",
         "gpu-memory-fraction-3", "output-under-a-file", "dtype-typo", "last-by-null",
         "text-is-id", "chunk-before-doc", "metrics-inside-output", "report-path-is-input",
         "huge-partitions", "prompt-beyond-context", "dedup-twice"]


@pytest.mark.parametrize("case", CASES)
def test_malformed_config_gives_its_message_and_exit_code_2(config_file, case, tmp_path, base,
                                                            capsys):
    raw, expected = _break(base, tmp_path, case)
    path = config_file(tmp_path, raw)
    with pytest.raises(ConfigError):
        load_config(path)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    parts = (expected,) if isinstance(expected, str) else expected
    assert all(part in err for part in parts), err
    assert err.count("\n") == 1  # one message
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out_metrics").exists()


def test_run_and_plan_refuse_a_wrong_distill_key(config_file, tmp_path, base, capsys):
    path = config_file(tmp_path, {**base, "distill": {"bogus": 1}})
    for command in ("run", "plan"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert "configuration error: distill.bogus: unknown key" in err, err
    assert not (tmp_path / "out").exists()


def test_invalid_yaml_and_missing_file(config_file, tmp_path, capsys):
    assert main(["run", str(config_file(tmp_path, text="input: [unclosed"))]) == 2
    err = capsys.readouterr().err
    # One line, saying where (PyYAML's own message spans several).
    assert "config:" in err and "is not valid YAML" in err and "(line " in err, err
    assert err.count("\n") == 1, err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_key_given_twice_is_refused_with_its_line(config_file, tmp_path, base, capsys):
    text = yaml.safe_dump(base) + "commit_every: 5\ncommit_every: 7\n"
    assert main(["run", str(config_file(tmp_path, text=text))]) == 2
    err = capsys.readouterr().err
    assert "'commit_every' is given twice in one mapping" in err and "line " in err, err


def test_the_main_jobs_reachability_check_names_a_config_error_before_the_model(
        config_file, tmp_path, base, capsys):
    """scripts/main.sh builds the starter refiner when the models cannot be
    fetched (exit 1); a config that is wrong anywhere else is exit 2 first,
    so a typo is named before a 10-minute fallback build."""
    from prox_spark.distill.starter import main as reachable

    unreachable = dict(base, doc_model={"model": "gair-prox/unreachable"})
    assert reachable(["--reachable", str(config_file(tmp_path, unreachable))]) == 1
    assert "gair-prox/unreachable" in capsys.readouterr().err
    both = dict(unreachable, stages=["prox_chunck"])
    assert reachable(["--reachable", str(config_file(tmp_path, both))]) == 2
    assert "unknown stage 'prox_chunck'" in capsys.readouterr().err


def test_command_line_overrides(config_file, tmp_path, base, model_dir):
    raw = dict(base, doc_model={"model": "gair-prox/unreachable"})
    cfg = load_config(config_file(tmp_path, raw),
                      {"doc_model": str(model_dir), "limit": 7, "output": str(tmp_path / "o2")})
    assert cfg.doc_model.engine.model == str(model_dir)
    assert cfg.limit == 7 and cfg.output.path == str(tmp_path / "o2")
    assert cfg.commit_every == 50_000
    cfg = load_config(config_file(tmp_path, base),
                      {"commit_every": 10, "doc_model": str(model_dir)})
    assert cfg.commit_every == 10


def test_ranges_live_in_the_stage_signature_and_bind_the_python_api_too():
    from prox_spark.stages.dedup import NearDedup

    with pytest.raises(ValueError, match="threshold must be above 0 and at most 1, got 0"):
        NearDedup(threshold=0)
    with pytest.raises(ValueError, match="rows must be at least 1, got 0"):
        NearDedup(rows=0)


def test_dedup_before_a_filter_is_a_warning(config_file, tmp_path, base, caplog):
    raw = {**base, "stages": ["exact_dedup", "gopher_quality"]}
    with caplog.at_level("WARNING", logger="prox_spark"):
        load_config(config_file(tmp_path, raw))
    assert "exact_dedup runs before gopher_quality, which can drop documents" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="prox_spark"):
        load_config(config_file(tmp_path, {**base, "stages": ["gopher_quality", "exact_dedup"]}))
        load_config(ROOT / "conf" / "rules_only.yaml", check_paths=False)
    assert "runs before" not in caplog.text
