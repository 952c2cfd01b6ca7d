"""Command-line details (issue 17): `--version`, `--limit` with `--all`,
`prox-spark report` given the metrics table, and no temporary folder left
behind by a process that started a session, even when it fails."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import CLI
from prox_spark import __version__
from prox_spark.cli import main

PROSE = "\n".join(
    f"The river number {i} runs past the market and the old mill, with boats that carry "
    "bread to the town." for i in range(6)
)


# A rules-only job for the `config_file` fixture: one stage, one task.
RULES = {"stages": [{"gopher_quality": {"min_doc_words": 20}}], "spark": {"partitions": 1}}


def write_corpus(tmp: Path) -> Path:
    corpus = tmp / "corpus.jsonl"
    rows = [{"id": "a", "text": PROSE}, {"id": "b", "text": "Too short."}]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return corpus


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"prox-spark {__version__}"


def test_limit_and_all_together_are_refused_naming_both(config_file, tmp_path, capsys):
    config = config_file(tmp_path, RULES, source=write_corpus(tmp_path))
    with pytest.raises(SystemExit) as done:
        main(["run", str(config), "--limit", "5", "--all"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--limit" in err and "--all" in err
    assert not (tmp_path / "refined").exists()


def _cli(args: list[str], tmp: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the checkout's `prox-spark` with its own temporary directory; return the
    result and what it left in that directory."""
    temp = tmp / "temp"
    temp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONUNBUFFERED": "1"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    done = subprocess.run([str(CLI), *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    return done, sorted(p.name for p in temp.iterdir() if p.name.startswith("prox-spark"))


@pytest.mark.spark
def test_report_takes_the_metrics_path_and_leaves_no_temp_folder(config_file, spark, tmp_path,
                                                                  capsys):
    from prox_spark.config import load_config
    from prox_spark.run.job import run_pipeline

    config = load_config(config_file(tmp_path, RULES, source=write_corpus(tmp_path)),
                         {"output": str(tmp_path / "out")})
    run_pipeline(config, spark)
    for given in ("out", "out_metrics"):
        page = tmp_path / f"{given}.html"
        assert main(["report", str(tmp_path / given), "--out", str(page)]) == 0
        assert "prox-spark run 1" in page.read_text()
    assert "out_metrics_metrics" not in capsys.readouterr().err
    # A metrics table whose refined table is gone: refused, naming the field.
    (tmp_path / "lonely_metrics" / "_delta_log").mkdir(parents=True)
    assert main(["report", str(tmp_path / "lonely_metrics")]) == 2
    assert "output:" in capsys.readouterr().err
    # A process that started a session and then failed (there is no run 9)
    # leaves no temporary folder behind; nor does one that succeeds.
    done, left = _cli(["report", str(tmp_path / "out_metrics"), "--run", "9"], tmp_path)
    assert done.returncode == 2 and "--run" in done.stderr, done.stderr[-2000:]
    assert left == []
