"""Fixes to the HTML that Jupyter Book 1 writes, so the published pages read like a finished book.

* The kernels that execute the chapters run with ``RAGFT_BOOK_BUILD=1`` (see
  :mod:`ragft_lib.display`: no progress bars, static stand-ins for widgets that need a kernel, no
  paths of the build machine), ``TQDM_DISABLE=1`` (third-party progress bars) and an IPython
  profile of their own (``_build/ragft_kernel``, written here): high-DPI (retina) PNG figures with
  the book's matplotlib settings (:data:`ragft_lib.display.BOOK_RC`: at most the text column's
  width, text of at least 10 pt). A kernel is a subprocess of this Sphinx process and inherits its
  environment. Jupyter and Colab users get the same look from ``ragft_lib.display.book_style()``.
* ``ragft-book.css`` (``_ext/ragft_book_static``): outputs fit the text column (text outputs wrap,
  wide tables scroll inside their cell with the row labels pinned).
* sphinx-thebe is set up twice by jupyter-book + sphinx-book-theme and writes the same inline
  ``const THEBE_JS_URL = ...`` script twice, a SyntaxError in every page's console. We drop exact
  duplicate scripts from each page's context.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATIC = HERE / "ragft_book_static"

#: The kernels' IPython profile: retina figures and ragft_lib.display.configure_static_kernel().
KERNEL_CONFIG = """\
# Written by _ext/ragft_book.py for the kernels that execute the book's chapters.
c.InlineBackend.figure_formats = {"retina"}
c.InteractiveShellApp.exec_lines = [
    "import ragft_lib.display as _ragft_display",
    "_ragft_display.configure_static_kernel()",
    "del _ragft_display",
]
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    unique = []
    for js in scripts:
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    scripts[:] = unique


def kernel_environment(workdir: Path) -> dict[str, str]:
    """Write the kernels' IPython profile under ``workdir``; the environment variables that use it.

    >>> import tempfile
    >>> env = kernel_environment(Path(tempfile.mkdtemp()))
    >>> env["RAGFT_BOOK_BUILD"], env["TQDM_DISABLE"], Path(env["IPYTHONDIR"], "profile_default").is_dir()
    ('1', '1', True)
    """
    profile = workdir / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG, encoding="utf-8")
    return {"RAGFT_BOOK_BUILD": "1", "TQDM_DISABLE": "1", "IPYTHONDIR": str(workdir / "ipython")}


def _builder_inited(app) -> None:
    # the chapters execute while Sphinx reads them, after this event: their kernels inherit os.environ
    os.environ.update(kernel_environment(Path(app.doctreedir).parent / "ragft_kernel"))
    if app.builder.format == "html":
        app.config.html_static_path.append(str(STATIC))
        app.add_css_file("ragft-book.css")


def setup(app):
    app.connect("builder-inited", _builder_inited)
    app.connect("html-page-context", _dedupe_scripts, priority=1)  # first: a later handler may return a template and stop the event
    return {"parallel_read_safe": True, "parallel_write_safe": True}
