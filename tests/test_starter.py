"""The first README command on a machine without the Hugging Face hub: it
builds the starter refiner once (annotate, train, evaluate from
conf/starter.yaml) and refines the sample with it, saying so first."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.spark, pytest.mark.vllm]


def test_main_without_the_hub_refines_with_the_starter(spark: Any, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    output = tmp_path / "refined"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # as a newcomer runs it
    done = subprocess.run(
        ["scripts/main.sh", "--limit", "30", "--output", str(output)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("[main] refining with the starter refiner"), lines[:3]
    assert "distilled from the" in lines[0] and "rule stages" in done.stdout
    assert any(line.startswith("drop precision") for line in lines), done.stdout[:2000]
    assert any(line.startswith("Verdict: ") for line in lines), done.stdout[:4000]
    rows = spark.read.format("delta").load(str(output))
    assert rows.count() == 30
    by_model = rows.where((F.col("status") == "dropped")
                          & F.col("doc_program").startswith("drop_doc")).count()
    edited = rows.where((F.col("status") == "edited")
                        & (F.size("chunk_programs") > 0)).count()
    assert by_model > 0, "the starter drops documents"
    assert edited > 0, "the starter edits documents"
    starter = next(line.split(": ", 1)[1] for line in lines
                   if line.startswith("[main] starter refiner: "))
    card = (Path(starter) / "README.md").read_text()
    assert "rules" in card and "f1" in card.lower()
