"""One concept per module: small modules, no import circle, no private name borrowed from another module."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ragft_lib"
MAX_LINES = 1000
#: Modules still being split, with who does it (remove the entry with the split).
SPLITTING: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return FILES[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` in ``module`` reads from."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, *, top_level_only: bool) -> list[tuple[str, list[str], int]]:
    """``(imported module, names, line)`` of the ragft_lib imports of a module.

    ``top_level_only``: the imports that run when the module is imported (not those inside functions
    or under ``if TYPE_CHECKING``).
    """
    tree = ast.parse(FILES[module].read_text())
    nodes: list[ast.AST] = []
    if top_level_only:
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes.append(node)
        nodes = [n for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom))]
    else:
        nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    out = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if target.split(".")[0] == "ragft_lib":
                out.append((target, [a.name for a in node.names], node.lineno))
        else:
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "ragft_lib"]
    return out


def _edges(module: str, *, top_level_only: bool) -> set[str]:
    """Modules whose import ``module`` needs (``from .pkg import sub`` needs ``pkg.sub``; a module needs
    the ``__init__`` of each package above what it imports)."""
    out = set()
    for target, names, _ in _imports(module, top_level_only=top_level_only):
        found = [f"{target}.{n}" for n in names if f"{target}.{n}" in FILES]
        out.update(found or ([target] if target in FILES else []))
    closed = set(out)
    for m in out:
        parts = m.split(".")
        closed.update(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in FILES)
    closed.discard(module)
    # a package's own __init__ runs before its submodules: not an edge back to it
    return {m for m in closed if not module.startswith(m + ".")}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


@pytest.mark.parametrize("module", [pytest.param(m, marks=pytest.mark.xfail(reason=SPLITTING[m])) if m in SPLITTING
                                    else m for m in sorted(FILES)])
def test_no_module_over_a_thousand_lines(module: str) -> None:
    n = len(FILES[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines: split it by concept"


@pytest.mark.parametrize("top_level_only", [True, False], ids=["at-import", "including-lazy-imports"])
def test_no_import_circle(top_level_only: bool) -> None:
    graph = {m: _edges(m, top_level_only=top_level_only) for m in FILES}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_circle_check_sees_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_private_name_imported_across_modules() -> None:
    borrowed = [f"{m} line {line}: from {target} import {n}"
                for m in FILES for target, names, line in _imports(m, top_level_only=False)
                for n in names if n.startswith("_") and target != m]
    assert not borrowed, "make these public in their module (and add them to __all__):\n" + "\n".join(borrowed)


@pytest.mark.parametrize("module", sorted(FILES))
def test_every_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    """A circle shows as an ImportError (partially initialised module) for the first module imported."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
