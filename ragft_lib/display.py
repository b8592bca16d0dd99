"""How ragft_lib shows things to a reader: figure style, progress bars, paths, static pages.

Standard library only at import time (matplotlib is imported inside :func:`book_style`).

The HTML book is a *static* page: no kernel runs behind it. The book's Sphinx extension
(``_ext/ragft_book.py``) therefore sets :data:`BOOK_BUILD_ENV` for the kernels that execute the
chapters, and the library reads it:

* :func:`progress_enabled` turns progress bars off (they stay on in a terminal, Jupyter and Colab);
* :func:`static_page` tells widget-based helpers (``ragft_lib.cost.explorer``,
  ``ragft_lib.decision.form``) to show a static stand-in instead of controls that would do nothing;
* :func:`show_path` shortens paths of the machine (cache folder, temporary folders, home) so they
  never reach a page.

:func:`book_style` gives figures the book's look (column width, legible text, high-DPI PNGs) in any
notebook: the build applies the same :data:`BOOK_RC`.

>>> BOOK_RC["figure.figsize"][0] <= 7 and BOOK_RC["font.size"] >= 10
True
>>> progress_enabled(True, environ={"RAGFT_PROGRESS": "0"})
False
>>> progress_enabled(True, environ={"RAGFT_BOOK_BUILD": "1"})
False
>>> progress_enabled(True, environ={})
True
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from .vocabulary import COLOURS

__all__ = ["BOOK_BUILD_ENV", "PROGRESS_ENV", "BOOK_RC", "APPROACH_STYLES", "static_page", "progress_enabled",
           "show_path", "scrub_paths", "book_style", "configure_static_kernel", "kernel_only"]

#: Set (to ``1``) by the book's Sphinx extension for the kernels that execute the chapters.
BOOK_BUILD_ENV = "RAGFT_BOOK_BUILD"
#: ``0``/``false``/``off`` turns every ragft progress bar off; ``1`` turns them on even in the build.
PROGRESS_ENV = "RAGFT_PROGRESS"

#: matplotlib settings of the book's figures — at most the text column's width (about 690 CSS px,
#: i.e. 7 in at 100 dpi, shown at ~100 %), text of at least 10 pt.
BOOK_RC: Mapping[str, Any] = {
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 100,
    "font.size": 10.0,
    "axes.titlesize": 11.0,
    "axes.labelsize": 10.0,
    "xtick.labelsize": 10.0,
    "ytick.labelsize": 10.0,
    "legend.fontsize": 10.0,
}

#: How each approach is drawn in line plots — distinct widths and dashes, so curves that coincide
#: (rag and hybrid often do) stay visible.
APPROACH_STYLES: Mapping[str, Mapping[str, Any]] = {
    "rag": {"color": COLOURS["rag"], "linestyle": "-", "linewidth": 2.8},
    "fine-tune": {"color": COLOURS["fine-tune"], "linestyle": "-", "linewidth": 1.6},
    "hybrid": {"color": COLOURS["hybrid"], "linestyle": (0, (5, 3)), "linewidth": 1.6},
    "prompt": {"color": COLOURS["prompt"], "linestyle": (0, (1, 2)), "linewidth": 2.0},
}

_FALSE = ("0", "false", "no", "off")


def _flag(value: str | None) -> bool | None:
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() not in _FALSE


def static_page(environ: Mapping[str, str] | None = None) -> bool:
    """True while the book is being built: outputs land on a static HTML page with no kernel.

    >>> static_page({"RAGFT_BOOK_BUILD": "1"}), static_page({})
    (True, False)
    """
    env = os.environ if environ is None else environ
    return bool(_flag(env.get(BOOK_BUILD_ENV)))


def progress_enabled(requested: bool = True, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to show a progress bar the caller asked for (``requested``).

    ``RAGFT_PROGRESS`` decides when set; otherwise bars are off while the book is built (a bar on a
    static page is noise) and on everywhere else.
    """
    env = os.environ if environ is None else environ
    forced = _flag(env.get(PROGRESS_ENV))
    if forced is not None:
        return requested and forced
    return requested and not static_page(env)


def _cache_root() -> Path | None:
    try:
        from .models import cache_dir

        return cache_dir()
    except Exception:  # noqa: BLE001 - a display helper must never fail
        return None


def show_path(path: str | os.PathLike, *, base: str | os.PathLike | None = None) -> str:
    """A path as a reader should see it: relative to ``base``, the ragft cache, a temporary folder
    or the home folder, never the machine's absolute path.

    >>> import tempfile
    >>> show_path(Path(tempfile.gettempdir()) / "ragft-x" / "report.md")
    '<temporary folder>/ragft-x/report.md'
    >>> show_path(Path.home() / "data" / "docs")
    '~/data/docs'
    >>> show_path("/srv/book/report/quality.png", base="/srv/book")
    'report/quality.png'
    >>> show_path("relative/file.txt")
    'relative/file.txt'
    """
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    roots: list[tuple[Path | None, str]] = [
        (Path(base) if base is not None else None, ""),
        (_cache_root(), "<ragft cache>"),
        (Path(tempfile.gettempdir()), "<temporary folder>"),
        (Path("/tmp"), "<temporary folder>"),
        (Path.home(), "~"),
    ]
    for root, label in roots:
        if root is None:
            continue
        for candidate in {root, root.resolve()}:
            try:
                rel = p.relative_to(candidate)
            except ValueError:
                continue
            text = rel.as_posix()
            if not label:
                return text
            return label if text == "." else f"{label}/{text}"
    return p.as_posix()


def scrub_paths(text: str, *, cache: str | os.PathLike | None = None) -> str:
    """``text`` with every absolute path of this machine's ragft cache, temporary folders and home
    shortened as :func:`show_path` does (used on what the book build's kernels print).

    >>> import tempfile
    >>> scrub_paths(f"saved to {tempfile.gettempdir()}/ragft-1/report.md and {Path.home()}/x",
    ...             cache="/nonexistent")
    'saved to <temporary folder>/ragft-1/report.md and ~/x'
    >>> scrub_paths("cached in /srv/c/models/m", cache="/srv/c")
    'cached in <ragft cache>/models/m'
    """
    root = Path(cache) if cache is not None else _cache_root()
    prefixes: list[tuple[str, str]] = []
    for path, label in ((root, "<ragft cache>"), (Path(tempfile.gettempdir()), "<temporary folder>"),
                        (Path("/tmp"), "<temporary folder>"), (Path.home(), "~")):
        if path is None:
            continue
        for candidate in {str(path), str(path.resolve())}:
            if candidate not in ("/", ""):
                prefixes.append((candidate.rstrip("/"), label))
    for prefix, label in sorted(set(prefixes), key=lambda p: -len(p[0])):  # the most specific first
        # the prefix as a whole path component: /tmp/x and /tmp, not /tmpfiles
        text = re.sub(re.escape(prefix) + r"(?=/|$|[^\w.-])", lambda _m, label=label: label, text)
    return text


def _scrub_data(data: Any) -> Any:
    if isinstance(data, str):
        return scrub_paths(data)
    if isinstance(data, dict):
        return {k: (_scrub_data(v) if k.startswith("text/") or k == "application/json" else v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_scrub_data(v) for v in data)
    return data


def book_style(retina: bool = True) -> None:
    """Give this session's matplotlib figures the book's look: :data:`BOOK_RC`, and high-DPI
    (retina) PNGs when running in Jupyter or Colab.

    >>> book_style()                                   # doctest: +SKIP
    """
    import matplotlib

    matplotlib.rcParams.update(BOOK_RC)
    if not retina:
        return
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # plain Python: nothing to configure
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def configure_static_kernel() -> None:
    """Set up a kernel that executes a chapter for the static book (called by the build only).

    * :data:`BOOK_RC` for every figure;
    * paths of the build machine (ragft cache, temporary folders, home) are shortened in everything
      the kernel prints or displays (:func:`scrub_paths`): they mean nothing to a reader;
    * ``tqdm.auto`` is the plain text bar: a library that asks for a bar explicitly writes it to
      stderr, which the build removes, instead of drawing an ipywidgets bar into the page (the
      build also sets ``TQDM_DISABLE=1``, which turns off every bar not explicitly enabled).
    """
    import matplotlib

    matplotlib.rcParams.update(BOOK_RC)
    _scrub_kernel_output()
    try:
        import tqdm.auto
        import tqdm.autonotebook
        import tqdm.std
    except ImportError:
        return
    for module in (tqdm.auto, tqdm.autonotebook):
        module.tqdm, module.trange = tqdm.std.tqdm, tqdm.std.trange  # type: ignore[attr-defined]


def kernel_only(what: str, live: str = "") -> dict[str, str]:
    """The mime bundle a widget shows on a static page instead of controls that would do nothing.

    ``what`` names the controls; ``live`` says where a working version is (HTML allowed).

    >>> b = kernel_only("Sliders for the cost inputs")
    >>> "Jupyter or Colab" in b["text/html"] and b["text/plain"].startswith("Sliders")
    True
    """
    import html

    text = (f"{what} appear when this notebook runs in Jupyter or Colab: they need a Python kernel, "
            "which a web page does not have.")
    more = f" {live}" if live else ""
    return {"text/html": f'<p class="ragft-kernel-only">{html.escape(text)}{more}</p>',
            "text/plain": text}


def _scrub_kernel_output() -> None:
    """Pass stdout and every displayed mime bundle of this IPython kernel through :func:`scrub_paths`."""
    import sys

    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    def scrub_stdout(*_args: Any) -> None:
        # IPython swaps stdout's write for each cell (to keep a history of outputs) and puts the
        # previous one back afterwards, so the wrapper goes on again before every cell.
        write = sys.stdout.write
        if not getattr(write, "_ragft_scrubbed", False):
            def scrubbed(text: Any, *args: Any, **kwargs: Any) -> Any:
                return write(scrub_paths(text) if isinstance(text, str) else text, *args, **kwargs)

            scrubbed._ragft_scrubbed = True  # type: ignore[attr-defined]
            sys.stdout.write = scrubbed  # type: ignore[method-assign]

    if not getattr(shell, "_ragft_scrubbed", False):
        shell.events.register("pre_run_cell", scrub_stdout)
        shell._ragft_scrubbed = True
    pub = shell.display_pub
    if not getattr(pub, "_ragft_scrubbed", False):
        publish = pub.publish
        pub.publish = lambda data, metadata=None, *a, **k: publish(_scrub_data(data), metadata, *a, **k)
        pub._ragft_scrubbed = True
    hook = shell.displayhook
    if not getattr(hook, "_ragft_scrubbed", False) and hasattr(hook, "write_format_data"):
        write_format_data = hook.write_format_data
        hook.write_format_data = lambda data, md=None: write_format_data(_scrub_data(data), md)
        hook._ragft_scrubbed = True
