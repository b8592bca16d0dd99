"""Write chapter notebooks from Python lists of cells (no outputs: the book build executes them).

Usage inside a one-off script:  write_notebook("chapters/x.ipynb", [md("# Title"), code("x = 1")])
Every chapter starts with the same Colab install cell; tests/test_book.py checks it.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def repository_url() -> str:
    """The repository URL, read from _config.yml (the one place it is set)."""
    text = (ROOT / "_config.yml").read_text()
    m = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", text, re.M)
    if not m:
        raise SystemExit("_config.yml has no repository.url")
    return m.group(1)


def colab_cell() -> nbformat.NotebookNode:
    src = (
        "# On Colab this installs ragft_lib (about a minute); elsewhere it does nothing.\n"
        "import sys\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install -q "ragft_lib[ml] @ git+{repository_url()}@main"'
    )
    return code(src)


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = tags
    return cell


def write_notebook(path: str | Path, cells: list) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update({
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    })
    nb.cells = [cells[0], colab_cell(), *cells[1:]]
    path = ROOT / path
    nbformat.write(nb, path)
    return path
