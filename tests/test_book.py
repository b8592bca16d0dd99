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
# tests/browser/check_pages.mjs opens every page at 1280 px and measures what a reader sees; the
# report is written to _build/page_report.json. With SCREENSHOTS=DIR it also writes full-page
# screenshots at 1280 px and 400 px. Skipped when a prerequisite is missing, failed when CI is set.

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: At most this share of a page's output blocks may be wider than the text column.
MAX_WIDE_SHARE = 0.10
#: No figure may be shown at less than this share of its pixels (retina PNGs count half).
MIN_FIGURE_RATIO = 0.60


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
        if IN_CI:
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


def _is_notebook_chapter(page: str) -> bool:
    return page.startswith("chapters/") and source_of(page[: -len(".html")]).suffix == ".ipynb"


@pytest.fixture(scope="module")
def pages(served_site) -> dict:
    pages = [f"{f}.html" for f in toc_files()]
    out = subprocess.run(
        ["node", str(ROOT / "tests" / "browser" / "check_pages.mjs"), served_site, *pages],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(results) == set(pages)
    (ROOT / "_build" / "page_report.json").write_text(json.dumps(results, indent=1))
    for page, r in results.items():
        wide = [b for b in r["blocks"] if b["over"] > 2]
        ratios = ", ".join(f"{f['ratio']:.2f}" for f in r["figures"]) or "-"
        print(f"{page}: {len(wide)}/{len(r['blocks'])} output blocks wider than the column; "
              f"figures shown at {ratios} of their pixels")
    return results


@pytest.mark.browser
def test_every_toc_page_renders_offline_with_its_figures(pages):
    for page, r in pages.items():
        assert r["status"] == 200, (page, r)
        assert r["console_errors"] == [], (page, r["console_errors"])
        assert r["external_requests"] == [], (page, r["external_requests"])
        assert r["failed_requests"] == [], (page, r["failed_requests"])
        assert r["broken_images"] == [], (page, r["broken_images"])
        if _is_notebook_chapter(page):
            assert r["images"] >= 1, f"{page}: a chapter page without a single figure"


@pytest.mark.browser
def test_every_chapter_opens_in_colab_and_downloads(pages):
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = cfg["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    book = (cfg["repository"].get("path_to_book") or "").strip("/")
    colab = cfg["launch_buttons"]["colab_url"].rstrip("/")
    for page, r in pages.items():
        if not _is_notebook_chapter(page):
            continue
        notebook = "/".join(p for p in (book, page[: -len(".html")] + ".ipynb") if p)
        want = f"{colab}/github/{repo}/blob/{cfg['repository']['branch']}/{notebook}"
        assert want in r["colab"], (page, want, r["colab"])
        assert any(h.endswith("/_sources/" + page[: -len(".html")] + ".ipynb") for h in r["downloads"]), (page, r["downloads"])


@pytest.mark.browser
def test_outputs_fit_the_text_column(pages):
    for page, r in pages.items():
        wide = [b for b in r["blocks"] if b["over"] > 2]
        assert len(wide) <= MAX_WIDE_SHARE * len(r["blocks"]), (
            f"{page}: {len(wide)} of {len(r['blocks'])} output blocks are wider than the column", wide)


@pytest.mark.browser
def test_no_page_scrolls_sideways_at_400_px(pages):
    for page, r in pages.items():
        assert r["width_at_400"] <= 402, f"{page}: {r['width_at_400']} px wide in a 400 px window"


@pytest.mark.browser
def test_figures_are_shown_at_most_slightly_shrunk(pages):
    for page, r in pages.items():
        small = [f for f in r["figures"] if f["ratio"] < MIN_FIGURE_RATIO]
        assert not small, f"{page}: figures shown at under {MIN_FIGURE_RATIO:.0%} of their pixels: {small}"


@pytest.mark.browser
def test_no_build_noise_reaches_the_page(pages):
    for page, r in pages.items():
        assert r["markdown_tables"] == [], (page, "raw markdown table in an output", r["markdown_tables"])
        assert r["machine_paths"] == [], (page, "path of the build machine", r["machine_paths"])
        assert r["progress_text"] == [], (page, "progress-bar text", r["progress_text"])
        assert r["widget_views"] == 0, (page, "ipywidgets controls on a page with no kernel")
        assert r["bare_values"] == [], (page, "a bare value a cell returned (e.g. glue(...) without ';')", r["bare_values"])


# ------------------------------------------------------------------------------------------
# The kernels that execute the chapters during the build (_ext/ragft_book.py)
# ------------------------------------------------------------------------------------------


def test_the_build_kernel_draws_high_dpi_figures_and_keeps_noise_off_the_page(tmp_path, monkeypatch):
    """A notebook executed with the build's kernel environment: retina PNGs at the column's width,
    no progress-bar widgets, no machine paths, no dead widgets."""
    nbclient = pytest.importorskip("nbclient")
    import base64
    import struct
    import sys
    import tempfile

    sys.path.insert(0, str(ROOT / "_ext"))
    import ragft_book

    env = ragft_book.kernel_environment(tmp_path / "kernel")
    for k, v in {**env, "PYTHONPATH": str(ROOT)}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the test session's Agg would hide inline figures
    cells = [
        "import tempfile, pathlib\nwork = tempfile.mkdtemp()\nprint('written to', work)",
        "pathlib.Path.home() / 'data'",
        "from IPython.display import Markdown, display\ndisplay(Markdown(f'# Report: {work}/docs'))",
        "from tqdm.auto import tqdm\nfor _ in tqdm(range(3)): pass\nfor _ in tqdm(range(3), disable=False): pass",
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\nplt.show()",
        "from ragft_lib.cost import explorer\nexplorer()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = [o for c in nb.cells for o in c.outputs]
    shown = json.dumps([o for o in outputs if o.get("name") != "stderr"])  # the build removes stderr
    assert tempfile.gettempdir() + "/" not in shown and str(Path.home()) + "/" not in shown, shown
    assert "<temporary folder>/" in shown and "~/data" in shown
    assert "widget-view" not in shown and "it/s]" not in shown, "a progress bar reached the page"
    png = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(png) == 1
    width, _ = struct.unpack(">II", base64.b64decode(png[0]["data"]["image/png"])[16:24])
    shown_width = png[0]["metadata"]["image/png"]["width"]
    assert abs(width / shown_width - 2) < 0.05, "retina: twice the pixels of its displayed width"
    assert shown_width <= 720, "the default figure fits the ~690 px text column"
    stand_in = outputs[-1]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in stand_in and "Jupyter or Colab" in stand_in["text/html"]
