"""Two checkouts on one machine share the cached environment, and each runs
its own code (issue 35): a shell that sourced checkout A's
`scripts/setup.sh` runs A's `prox-spark`, A's `import prox_spark` and A's
code in Spark's Python workers, also after checkout B sourced its copy, and
both use the one cached environment. Real bash, the real set-up cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SET_UP = bool(os.environ.get("PROX_SPARK_CACHE") and os.environ.get("PROX_SPARK_PYTHON"))
pytestmark = pytest.mark.skipif(
    not SET_UP, reason="needs the set-up cache of this session (source scripts/setup.sh first)")

# What a checkout needs to set up and run (the environment's key is computed
# from setup.cfg and env/, so the copies share the cached environment).
NEEDED = ["bin", "env", "scripts", "src", "setup.cfg", "pyproject.toml", "README.md"]

# Prints, as "<label> <what> <value>" lines, what the shell runs.
REPORT = """
report() {
  echo "$1 cli $(prox-spark --version 2>&1)"
  echo "$1 import $(python -c 'import prox_spark; print(prox_spark.__file__)' 2>&1)"
  echo "$1 python $PROX_SPARK_PYTHON"
  echo "$1 path $PATH"
  echo "$1 pythonpath $PYTHONPATH"
}
"""

# A in one long-lived shell; B sourced in another shell in between (from the
# environment the first shell started with); then the first shell sources B.
SCRIPT = REPORT + """
start_path="$PATH"; start_pythonpath="${PYTHONPATH:-}"
. "$A/scripts/setup.sh" >/dev/null 2>&1 || { echo "setup A failed"; exit 1; }
report A
env -u PROX_SPARK_CHECKOUT PATH="$start_path" PYTHONPATH="$start_pythonpath" B="$B" \
  bash -c "$(declare -f report)"'
    . "$B/scripts/setup.sh" >/dev/null 2>&1 || { echo "setup B failed"; exit 1; }
    report B'
report A-after-B
. "$B/scripts/setup.sh" >/dev/null 2>&1 || { echo "setup B in A failed"; exit 1; }
report A-then-B
"""

# A Spark job in A's shell after B sourced: which prox_spark the workers import.
WORKERS = """
from prox_spark.session import get_spark

spark = get_spark("two-checkouts", cores=2)

def where(_):
    import prox_spark
    yield prox_spark.__file__

print("workers import", sorted(set(spark.sparkContext.parallelize(range(2), 2)
                            .mapPartitions(where).collect())))
spark.stop()
"""


def _checkout(base: Path, name: str) -> Path:
    """A copy of this checkout's files whose `__version__` names `name`."""
    root = base / name
    for item in NEEDED:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, root / item, symlinks=True, ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info"))
        elif source.exists():
            root.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / item)
    init = root / "src" / "prox_spark" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]*"', f'__version__ = "0.1.0+{name}"',
                           init.read_text()))
    return root


def _bash(script: str, **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PROX_SPARK_CHECKOUT", "PYSPARK_GATEWAY_PORT")}
    done = subprocess.run(["bash", "-c", script], env={**base, **env}, capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = {}
    for line in done.stdout.splitlines():
        label, what, value = [*line.split(" ", 2), "", ""][:3]
        out[f"{label} {what}"] = value
    return out


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("checkouts")
    return _checkout(base, "a"), _checkout(base, "b")


def test_each_shell_runs_its_own_checkout(checkouts: tuple[Path, Path]) -> None:
    a, b = checkouts
    out = _bash(SCRIPT, A=str(a), B=str(b))
    for label, root, name in (("A", a, "a"), ("B", b, "b"), ("A-after-B", a, "a"),
                              ("A-then-B", b, "b")):
        assert out[f"{label} cli"] == f"prox-spark 0.1.0+{name}", (label, out)
        assert out[f"{label} import"] == str(root / "src" / "prox_spark" / "__init__.py"), \
            (label, out)
    # One cached environment for both checkouts.
    assert out["A python"] == out["B python"] == os.environ["PROX_SPARK_PYTHON"]
    # Sourcing B in A's shell leaves nothing of A in front (or anywhere).
    assert str(a) not in out["A-then-B path"] and str(a) not in out["A-then-B pythonpath"]
    assert out["A-then-B path"].split(":")[0] == str(b / "bin")
    assert out["A-then-B pythonpath"].split(":")[0] == str(b / "src")
    # The shared environment holds no prox-spark of its own.
    site = subprocess.run([out["A python"], "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert not list(Path(site).glob("prox_spark-*.dist-info"))
    assert not list(Path(site).glob("__editable__*prox_spark*"))


@pytest.mark.spark
def test_spark_workers_import_their_shells_checkout(checkouts: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    a, b = checkouts
    probe = tmp_path / "workers.py"
    probe.write_text(WORKERS)
    script = f"""
. "$A/scripts/setup.sh" >/dev/null 2>&1 || exit 1
env -u PYTHONPATH -u PROX_SPARK_CHECKOUT bash -c '. "$B/scripts/setup.sh" >/dev/null 2>&1' \
  || exit 1
cd "{tmp_path}" && python "{probe}"
"""
    out = _bash(script, A=str(a), B=str(b))
    assert out["workers import"] == f"['{a / 'src' / 'prox_spark' / '__init__.py'}']", out
