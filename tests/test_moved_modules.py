"""The old top-level module paths still import the modules that moved into
the `io`, `generation` and `report` packages: the very same module objects."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import prox_spark
from prox_spark._moved import MOVED


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_path_is_the_moved_module(old, new):
    module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__name__ == new and module.__spec__.name == new
    assert sys.modules[old] is module


def test_names_import_through_old_paths():
    # Ruff files the old paths apart: no file of theirs is left to say they are ours.
    from prox_spark.delta import read_table
    from prox_spark.engine import EngineConfig
    from prox_spark.report_svg import bar_chart

    from prox_spark.generation import generate_safely
    from prox_spark.report import gather, write_report

    assert read_table.__module__ == "prox_spark.io.delta"
    assert EngineConfig.__module__ == "prox_spark.generation.engine"
    assert generate_safely.__module__ == "prox_spark.generation.batch"
    assert (gather.__module__, write_report.__module__) == ("prox_spark.report.page",) * 2
    assert bar_chart.__module__ == "prox_spark.report.svg"


def test_monkeypatching_an_old_path_patches_the_moved_module(monkeypatch):
    import prox_spark.io.delta

    marker = object()
    monkeypatch.setattr("prox_spark.delta.read_table", marker)
    assert prox_spark.io.delta.read_table is marker
    monkeypatch.undo()
    assert prox_spark.io.delta.read_table is not marker


def test_an_old_path_imports_first_in_a_fresh_interpreter():
    # Before anything imported the new module (a notebook's first line).
    code = ("import sys, prox_spark.claims; c = prox_spark.claims; "
            "assert c is sys.modules['prox_spark.io.claims'] is prox_spark.io.claims; "
            "print(c.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "prox_spark.io.claims"


def test_only_old_names_are_aliased():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("prox_spark.no_such_module")
    assert not hasattr(prox_spark, "no_such_module")
