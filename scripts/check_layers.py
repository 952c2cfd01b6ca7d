"""Check the import rules of `docs/architecture.md` over `src/prox_spark`.

Prints one line per breach and exits 1 when there is any:
- an import from a higher layer (`LAYERS`, low to high), type-only ones included;
- an import circle between modules;
- a private name (leading underscore) imported from another module;
- an import of our own modules inside a function (allowed only to keep Spark,
  torch or vLLM out of import time: such a module is listed in `HEAVY`);
- a function longer than `MAX_LINES` lines.

    python scripts/check_layers.py [--src src/prox_spark]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_LINES = 60
# Low to high: a module may import its own layer and the layers before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "params", "refs", "schema", "resources", "progress", "counts"),
    ("program",),
    ("rules",),
    ("generation",),
    ("io", "session"),
    ("stages",),
    ("config",),
    ("report",),
    ("fingerprint", "run", "pipeline", "refresh", "dry_run"),
    ("distill",),
    ("ablate",),
    ("cli", "testing", "__init__"),
)


@dataclass(frozen=True)
class Import:
    source: str        # the importing module, dotted
    target: str        # the imported module, dotted
    names: tuple[str, ...]
    line: int
    in_function: bool


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    for rank, names in enumerate(LAYERS):
        if head in names:
            return rank
    raise SystemExit(f"check_layers: {module} is in no layer; add it to LAYERS")


def imports(tree: ast.AST, source: str, is_package: bool) -> Iterator[Import]:
    functions: list[ast.AST] = [n for n in ast.walk(tree)
                                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    inner = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = source.split(".") if is_package else source.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join([*package, *([base] if base else [])])
            if base.startswith("prox_spark"):
                yield Import(source, base, tuple(a.name for a in node.names), node.lineno,
                             id(node) in inner)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("prox_spark"):
                    yield Import(source, alias.name, (), node.lineno, id(node) in inner)


def long_functions(tree: ast.AST) -> Iterator[tuple[str, int, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_LINES:
                yield node.name, node.lineno, length


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan);
    imports inside functions count: they hide a circle, not remove it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def resolve(target: str, names: tuple[str, ...], modules: set[str]) -> list[str]:
    """The modules an import names: `from pkg import mod` imports `pkg.mod`."""
    out = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
    return out or ([target] if target in modules else [])


def check(src: Path, heavy: set[str]) -> list[str]:
    files = sorted(src.rglob("*.py"))
    trees = {module_name(p, src): (p, ast.parse(p.read_text(), str(p))) for p in files}
    modules = set(trees)
    problems: list[str] = []
    edges: dict[str, set[str]] = {}
    for module, (path, tree) in trees.items():
        where = path.relative_to(src.parent.parent) if src.parent.parent in path.parents else path
        for imp in imports(tree, module, path.name == "__init__.py"):
            targets = resolve(imp.target, imp.names, modules)
            if imp.names == ("__version__",):
                continue  # the package's version, read where it is printed
            for target in targets:
                if not module.startswith(target + "."):
                    edges.setdefault(module, set()).add(target)
                if layer_of(target) > layer_of(module):
                    problems.append(f"{where}:{imp.line}: imports {target} from a higher layer")
            private = [n for n in imp.names if n.startswith("_") and n != "__version__"]
            if private and not module.startswith(imp.target):
                problems.append(f"{where}:{imp.line}: imports private {', '.join(private)} "
                                f"from {imp.target}")
            if imp.in_function and not any(t in heavy for t in targets):
                problems.append(f"{where}:{imp.line}: imports {imp.target} inside a function")
        for name, line, length in long_functions(tree):
            problems.append(f"{where}:{line}: {name} is {length} lines (> {MAX_LINES})")
    for part in circles(edges):
        problems.append(f"import circle: {' <-> '.join(part)}")
    return problems


def heavy_modules(src: Path) -> set[str]:
    """Our modules that import Spark, torch, transformers or vLLM at import
    time, directly or through another of ours (a function-level import of
    one keeps those out of import time)."""
    direct = ("pyspark", "torch", "transformers", "vllm", "trl", "datasets", "lm_eval")
    trees = {module_name(p, src): ast.parse(p.read_text()) for p in src.rglob("*.py")}
    uses: dict[str, set[str]] = {}
    heavy: set[str] = set()
    for module, tree in trees.items():
        for node in tree.body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] in direct:
                    heavy.add(module)
                elif name.startswith("prox_spark"):
                    uses.setdefault(module, set()).add(name)
    changed = True
    while changed:
        changed = False
        for module, targets in uses.items():
            if module not in heavy and any(t in heavy for t in targets):
                heavy.add(module)
                changed = True
    return heavy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1]
                        / "src" / "prox_spark")
    args = parser.parse_args(argv)
    problems = check(args.src, heavy_modules(args.src))
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
