"""The public surface: what the chapters, the README and the examples use is in ``__all__`` (and so in
the reference), and every public module's ``__all__`` is complete."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import ragft_lib

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(["ragft_lib"] + [m.name for m in pkgutil.walk_packages(ragft_lib.__path__, "ragft_lib.")])
PUBLIC_MODULES = [m for m in MODULES if not any(part.startswith("_") for part in m.split(".")[1:])]
#: Public-looking names deliberately left out of a module's ``__all__``, with the reason.
UNLISTED = {
    "ragft_lib.evaluate": {"dataclasses_asdict"},  # a helper of the experiments, to become private with them
}


def _sources() -> list[tuple[str, str, str]]:
    """``(where, kind, text)`` of every place readers copy code from: chapter cells, README, examples."""
    out = []
    for nb in sorted((ROOT / "chapters").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            text = "".join(cell["source"])
            kind = "python" if cell["cell_type"] == "code" else "text"
            out.append((f"{nb.name} cell {i}", kind, text))
    for md in [ROOT / "README.md", ROOT / "intro.md", *sorted((ROOT / "chapters").glob("*.md")),
               *sorted((ROOT / "examples").glob("*.md"))]:
        text = md.read_text()
        out.append((md.name, "text", text))
        for j, block in enumerate(re.findall(r"```python\n(.*?)```", text, flags=re.S)):
            out.append((f"{md.name} code block {j}", "python", block))
    for py in sorted((ROOT / "examples").glob("*.py")):
        out.append((py.name, "python", py.read_text()))
    return out


def _imports(code: str) -> list[tuple[str, str]]:
    """``(module, name)`` of every ``from ragft_lib... import name`` (notebook magics skipped)."""
    code = "\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
                     for line in code.splitlines())
    out = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ragft_lib":
            out += [(node.module, a.name) for a in node.names]
    return out


def _dotted_references(text: str) -> list[tuple[str, str]]:
    """``(module, name)`` of every ``ragft_lib.module.name`` written out (prose, roles, attribute access)."""
    out = []
    for dotted in set(re.findall(r"ragft_lib(?:\.[A-Za-z_][A-Za-z0-9_]*)+", text)):
        parts = dotted.split(".")
        # the longest prefix that is a module; the next part must be one of its public names
        for cut in range(len(parts) - 1, 0, -1):
            if ".".join(parts[:cut]) in MODULES:
                out.append((".".join(parts[:cut]), parts[cut]))
                break
    return out


USES = sorted({(where, mod, name) for where, kind, text in _sources()
               for mod, name in (_imports(text) if kind == "python" else []) + _dotted_references(text)
               if name not in MODULES and f"{mod}.{name}" not in MODULES})


def test_the_readers_sources_were_found() -> None:
    used = {(m, n) for _, m, n in USES}
    assert ("ragft_lib.finetune", "train_or_load") in used and ("ragft_lib.stores", "PgVectorStore") in used
    assert len(used) > 60


@pytest.mark.parametrize(("where", "module", "name"), USES, ids=[f"{w}:{m}.{n}" for w, m, n in USES])
def test_what_readers_import_is_public(where: str, module: str, name: str) -> None:
    mod = importlib.import_module(module)
    assert name in getattr(mod, "__all__", ()), f"{where} uses {module}.{name}, which is not in {module}.__all__"


@pytest.mark.parametrize("module", MODULES)
def test_all_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    assert hasattr(mod, "__all__"), f"{module} has no __all__"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{module}.__all__ names {missing}, which the module does not have"


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_all_lists_every_public_name_the_module_defines(module: str) -> None:
    mod = importlib.import_module(module)
    path = Path(mod.__file__)
    defined = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                if isinstance(t, ast.Name):
                    defined.add(t.id)
    public = {n for n in defined if not n.startswith("_") and n != "log"} - UNLISTED.get(module, set())
    assert not public - set(mod.__all__), f"{module}: add {sorted(public - set(mod.__all__))} to __all__"
