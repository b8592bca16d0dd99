"""The book: every chapter is a Colab-ready .ipynb, the toc lists only what exists, and the built
HTML renders in headless Chromium with its figures, no console errors and no network requests."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


def source_of(entry: str) -> Path:
    for ext in (".ipynb", ".md"):
        p = ROOT / f"{entry}{ext}"
        if p.exists():
            return p
    raise AssertionError(f"_toc.yml lists {entry!r} but neither {entry}.ipynb nor {entry}.md exists")


def chapter_notebooks() -> list[Path]:
    return sorted((ROOT / "chapters").glob("*.ipynb"))


def test_toc_lists_only_existing_files():
    files = toc_files()
    assert len(files) == len(set(files)), "a file is listed twice in _toc.yml"
    for f in files:
        source_of(f)


def test_every_chapter_notebook_is_in_the_toc():
    listed = set(toc_files())
    for nb in chapter_notebooks():
        assert f"chapters/{nb.stem}" in listed, f"{nb.name} is not in _toc.yml"


def test_chapters_are_notebooks_not_myst_markdown():
    for md in (ROOT / "chapters").glob("*.md"):
        assert not md.read_text().startswith("---\njupytext"), f"{md} is a MyST notebook; Colab cannot open it"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_starts_with_colab_install_cell_and_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "first cell: the title"
    install = nb.cells[1]
    assert install.cell_type == "code"
    assert '"google.colab" in sys.modules' in install.source
    repo = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", (ROOT / "_config.yml").read_text(), re.M).group(1)
    assert f"git+{repo}@main" in install.source, "install cell must use _config.yml's repository.url"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{path.name}: committed outputs (the build executes the chapters)"


def test_config_makes_the_build_strict():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["execute"]["raise_on_error"] is True
    assert cfg["execute"]["execute_notebooks"] == "cache"
    assert "-W -n --keep-going" in (ROOT / "Makefile").read_text()


# ------------------------------------------------------------------------------------------
# The built site in a real browser
# ------------------------------------------------------------------------------------------


def _prerequisites() -> str | None:
    if not (SITE / "index.html").exists():
        return "the book is not built (run `make book`)"
    if not Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists():
        return "Debian chromium is not installed (apt-get install chromium)"
    if not (ROOT / "node_modules" / "playwright-core").exists() or shutil.which("node") is None:
        return "node or npm playwright-core missing (run `make vendor`)"
    return None


@pytest.fixture(scope="module")
def served_site():
    missing = _prerequisites()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {missing}")
        pytest.skip(missing)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output readable
            pass

    handler = functools.partial(Quiet, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.browser
def test_every_toc_page_renders_offline_with_its_figures(served_site):
    pages = [f"{f}.html" for f in toc_files()]
    out = subprocess.run(
        ["node", str(ROOT / "tests" / "browser" / "check_pages.mjs"), served_site, *pages],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(results) == set(pages)
    for page, r in results.items():
        assert r["status"] == 200, (page, r)
        assert r["console_errors"] == [], (page, r["console_errors"])
        assert r["external_requests"] == [], (page, r["external_requests"])
        assert r["failed_requests"] == [], (page, r["failed_requests"])
        assert r["broken_images"] == [], (page, r["broken_images"])
        if page.startswith("chapters/") and source_of(page[: -len(".html")]).suffix == ".ipynb":
            assert r["images"] >= 1, f"{page}: a chapter page without a single figure"
