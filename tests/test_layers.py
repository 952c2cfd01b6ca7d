"""The import rules of docs/architecture.md hold for the library
(`scripts/check_layers.py`), and the checker catches each kind of breach."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts" / "check_layers.py")
assert _spec is not None and _spec.loader is not None
check_layers = importlib.util.module_from_spec(_spec)
sys.modules["check_layers"] = check_layers
_spec.loader.exec_module(check_layers)


def test_the_library_keeps_its_layers() -> None:
    src = ROOT / "src" / "prox_spark"
    assert check_layers.check(src, check_layers.heavy_modules(src)) == []


def test_the_checker_finds_each_kind_of_breach(tmp_path: Path) -> None:
    src = tmp_path / "prox_spark"
    (src / "io").mkdir(parents=True)
    (src / "run").mkdir()
    for init in (src / "__init__.py", src / "io" / "__init__.py", src / "run" / "__init__.py"):
        init.write_text("")
    (src / "io" / "delta.py").write_text(
        "from prox_spark.run.job import go\n\n\ndef _hidden():\n    pass\n")
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (src / "run" / "job.py").write_text(
        "from prox_spark.io.delta import _hidden\n\n\ndef go():\n"
        "    from prox_spark.io import delta\n" + body + "\n")
    problems = "\n".join(check_layers.check(src, check_layers.heavy_modules(src)))
    assert "io/delta.py:1: imports prox_spark.run.job from a higher layer" in problems
    assert "imports private _hidden from prox_spark.io.delta" in problems
    assert "imports prox_spark.io inside a function" in problems
    assert "go is 63 lines (> 60)" in problems
    assert "import circle: prox_spark.io.delta <-> prox_spark.run.job" in problems
