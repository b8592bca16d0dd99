"""Sphinx extension: live ragft tools in the HTML book, running ragft_lib in the reader's browser.

Two directives, each one MyST cell::

    ```{ragft-decision-form}
    ```

    ```{ragft-cost-explorer}
    :primary: requests_per_day knowledge_update_days hosting
    ```

At build time each directive writes an HTML form generated from the dataclass's field metadata
(:meth:`ragft_lib.decision.Scenario.field_specs`, :meth:`ragft_lib.cost.CostInputs.field_specs`):
labels, units, help text, defaults, choices as selects, booleans as checkboxes, nullable fields
that may be left empty. Below the form it writes the result for the default values, computed by
the same library at build time (the page's static content when JavaScript or WebAssembly is
missing). ``_static/ragft-live.js`` (added only to pages that use a directive) starts Pyodide from
``_static/pyodide/`` (copied from npm by ``make vendor``), installs ragft_lib's browser wheel from
``_static/ragft/`` and calls :mod:`ragft_lib.live` on every submit / change.

The wheel is built here at the end of every HTML build from exactly the modules that
``ragft_lib.live`` imports, found by importing it in a subprocess where numpy, pandas, matplotlib
and yaml are unimportable; so the build fails if the browser path ever needs them. Pages that use a
directive depend on those modules' sources, so an incremental build regenerates the form when a
field is added to the library.

Directive options (both): ``:primary:`` field names shown first; the other fields go into a
collapsed "More inputs" section (default: all fields of the decision form; a handful for the cost
explorer). ``:title:`` a heading above the form.
"""

from __future__ import annotations

import hashlib
import base64
import html
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "ragft_live_static"
MARKER = "data-ragft-tool"
#: The Pyodide core files the page requests (``make vendor`` copies them from node_modules).
PYODIDE_FILES = ("pyodide.js", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
#: Blocked while finding the browser closure: Pyodide offline has none of them.
NOT_IN_BROWSER = ("numpy", "pandas", "matplotlib", "yaml", "torch", "transformers", "faiss")
COST_PRIMARY = ("requests_per_day", "knowledge_update_days", "hosting", "prompt_tokens_per_request",
                "output_tokens_per_request", "rag_context_tokens_per_request")


# ------------------------------------------------------------------------------------------
# The browser closure of ragft_lib and its wheel
# ------------------------------------------------------------------------------------------


def browser_modules(root: Path) -> tuple[str, dict[str, Path]]:
    """``(version, {module: source file})`` of what ``ragft_lib.live`` imports, with numpy & co. blocked."""
    code = (
        "import json, sys\n"
        f"for m in {NOT_IN_BROWSER!r}: sys.modules[m] = None\n"
        "import ragft_lib, ragft_lib.live\n"
        "mods = {n: m.__file__ for n, m in sys.modules.items() if n == 'ragft_lib' or n.startswith('ragft_lib.')}\n"
        "print(json.dumps([ragft_lib.__version__, mods]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise ExtensionError(
            "ragft_live: ragft_lib.live (the code that runs in the reader's browser) must import only the "
            f"standard library, but importing it with {', '.join(NOT_IN_BROWSER)} blocked failed:\n"
            + out.stderr.strip().splitlines()[-1])
    version, mods = json.loads(out.stdout)
    files = {n: Path(f).resolve() for n, f in mods.items()}
    outside = [str(f) for f in files.values() if root.resolve() not in f.parents]
    if outside:
        raise ExtensionError(f"ragft_live: ragft_lib was imported from outside the book ({outside[0]}); "
                             "set PYTHONPATH to the repository root")
    return version, files


def wheel_name(version: str) -> str:
    return f"ragft_lib-{version}-py3-none-any.whl"


def build_wheel(root: Path, version: str, files: dict[str, Path], dest: Path) -> Path:
    """A pure-Python wheel of just ``files`` (reproducible: fixed timestamps, sorted entries)."""
    dist = f"ragft_lib-{version}.dist-info"
    entries: list[tuple[str, bytes]] = []
    for path in sorted(files.values()):
        entries.append((path.relative_to(root).as_posix(), path.read_bytes()))
    entries.append((f"{dist}/METADATA", (
        "Metadata-Version: 2.1\nName: ragft_lib\n"
        f"Version: {version}\nSummary: ragft_lib's standard-library modules for the browser (decision, cost, live)\n"
        "Requires-Python: >=3.10\nLicense: Apache-2.0\n").encode()))
    entries.append((f"{dist}/WHEEL", b"Wheel-Version: 1.0\nGenerator: ragft_live\nRoot-Is-Purelib: true\n"
                                     b"Tag: py3-none-any\n"))
    record = []
    for name, data in entries:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    entries.append((f"{dist}/RECORD", ("\n".join(record) + "\n").encode()))
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / wheel_name(version)
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    tmp.replace(target)
    return target


# ------------------------------------------------------------------------------------------
# Form generation from field metadata
# ------------------------------------------------------------------------------------------


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.12f}".rstrip("0") if abs(value) < 1e-3 else repr(value)
    return str(value)


def field_html(spec: dict[str, Any], prefix: str) -> str:
    """One labelled control for one field spec (see ``ragft_lib._fields``)."""
    e = html.escape
    name, kind, default = spec["name"], spec["kind"], spec["default"]
    fid = f"{prefix}-{name}"
    unit = f' <span class="ragft-unit">({e(spec["unit"])})</span>' if spec.get("unit") else ""
    help_text = spec["help"]
    if spec.get("nullable") and spec.get("null_means") and "empty" not in help_text.lower():
        help_text += f" Empty: {spec['null_means']}."
    described = f'aria-describedby="{fid}-help {fid}-error"'
    attrs = f'id="{fid}" name="{e(name)}" {described}'
    if kind == "choice":
        opts = "".join(f'<option value="{e(c)}"{" selected" if c == default else ""}>{e(c)}</option>'
                       for c in spec["choices"])
        control = f"<select {attrs}>{opts}</select>"
    elif kind == "bool" and not spec.get("nullable"):
        control = f'<input type="checkbox" {attrs}{" checked" if default else ""}>'
    elif kind == "bool":
        opts = [("", f"— ({spec.get('null_means') or 'unknown'})"), ("true", "yes"), ("false", "no")]
        cur = "" if default is None else str(bool(default)).lower()
        control = f"<select {attrs}>" + "".join(
            f'<option value="{v}"{" selected" if v == cur else ""}>{e(t)}</option>' for v, t in opts) + "</select>"
    else:
        placeholder = spec.get("null_means") if spec.get("nullable") else "required"
        control = (f'<input type="text" inputmode="decimal" autocomplete="off" spellcheck="false" {attrs} '
                   f'value="{e(_value_text(default))}" placeholder="{e(placeholder or "")}">')
    return (f'<div class="ragft-field" data-field="{e(name)}" data-kind="{kind}"'
            f' data-nullable="{str(bool(spec.get("nullable"))).lower()}">'
            f'<label for="{fid}">{e(spec["label"])}{unit}</label>{control}'
            f'<p class="ragft-help" id="{fid}-help">{e(help_text)}</p>'
            f'<p class="ragft-error" id="{fid}-error" role="alert" hidden></p></div>')


def form_html(specs: list[dict[str, Any]], prefix: str, primary: list[str] | None, more_label: str) -> str:
    names = [s["name"] for s in specs]
    unknown = [p for p in (primary or []) if p not in names]
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; fields: {', '.join(names)}")
    main = [s for s in specs if primary is None or s["name"] in primary]
    rest = [s for s in specs if primary is not None and s["name"] not in primary]
    out = ['<div class="ragft-fields">'] + [field_html(s, prefix) for s in main] + ["</div>"]
    if rest:
        out += [f'<details class="ragft-more"><summary>{html.escape(more_label)} ({len(rest)})</summary>'
                '<div class="ragft-fields">'] + [field_html(s, prefix) for s in rest] + ["</div></details>"]
    return "".join(out)


class _LiveDirective(SphinxDirective):
    has_content = False
    option_spec = {"primary": directives.unchanged, "title": directives.unchanged}
    tool = ""

    def _common(self) -> tuple[str, str]:
        env = self.env
        files = getattr(env.app, "ragft_live_files", {})
        # rebuild the page (so Sphinx also recopies the static files) when the library or the
        # page script changes: with nothing out of date, Sphinx copies no static files at all
        for path in [*files.values(), *sorted(STATIC.iterdir())]:
            env.note_dependency(str(path))
        serial = env.new_serialno("ragft-live")
        return f"ragft-{self.tool}-{serial}", wheel_name(getattr(env.app, "ragft_live_version", "0"))

    def _primary(self, default: tuple[str, ...] | None) -> list[str] | None:
        text = self.options.get("primary")
        if text is None:
            return list(default) if default else None
        return text.replace(",", " ").split()

    def _wrap(self, prefix: str, wheel: str, body: str) -> list[nodes.Node]:
        title = self.options.get("title")
        head = f'<p class="ragft-title">{html.escape(title)}</p>' if title else ""
        markup = (f'<div class="ragft-live ragft-{self.tool}" {MARKER}="{self.tool}" id="{prefix}" '
                  f'data-ragft-wheel="{html.escape(wheel)}" data-ragft-state="static">{head}{body}</div>')
        return [nodes.raw("", markup, format="html")]

    def _fail(self, err: Exception) -> list[nodes.Node]:
        raise self.error(f"{self.name}: {err}")


STATIC_NOTE = ("Live in the HTML book: this runs ragft_lib in your browser (Python compiled to WebAssembly), "
               "with no server and no network. It needs JavaScript, WebAssembly and the book served over http "
               "(<code>make serve</code>).")


class DecisionForm(_LiveDirective):
    """``{ragft-decision-form}``: every Scenario field, a button, and the report of ``recommend``."""

    tool = "decision"

    def run(self) -> list[nodes.Node]:
        from ragft_lib.decision import Scenario, recommend

        prefix, wheel = self._common()
        try:
            fields = form_html(Scenario.field_specs(), prefix, self._primary(None), "More fields")
        except ValueError as err:
            return self._fail(err)
        report = recommend(Scenario()).to_html()
        body = (f'<p class="ragft-status" role="status">{STATIC_NOTE}</p>'
                f'<form class="ragft-form" novalidate>{fields}'
                '<p class="ragft-form-error" role="alert" hidden></p>'
                '<div class="ragft-actions"><button type="submit" class="ragft-run" disabled>Recommend</button>'
                '<button type="reset" class="ragft-reset">Defaults</button></div></form>'
                '<div class="ragft-output" aria-live="polite">'
                '<p class="ragft-static-note">Report for the default values, computed when the book was built:</p>'
                f"{report}</div>")
        return self._wrap(prefix, wheel, body)


class CostExplorer(_LiveDirective):
    """``{ragft-cost-explorer}``: CostInputs fields and a chart of monthly cost against requests per day."""

    tool = "cost"

    def run(self) -> list[nodes.Node]:
        from ragft_lib.cost import CostInputs
        from ragft_lib.live import cost

        prefix, wheel = self._common()
        try:
            fields = form_html(CostInputs.field_specs(), prefix, self._primary(COST_PRIMARY),
                               "More inputs: prices, self-hosted serving, fine-tuning")
        except ValueError as err:
            return self._fail(err)
        result = cost({})
        body = (f'<p class="ragft-status" role="status">{STATIC_NOTE}</p>'
                '<div class="ragft-cost-layout">'
                f'<form class="ragft-form" novalidate>{fields}'
                '<p class="ragft-form-error" role="alert" hidden></p>'
                '<div class="ragft-actions"><button type="reset" class="ragft-reset">Defaults</button></div></form>'
                '<div class="ragft-output" aria-live="polite">'
                '<p class="ragft-static-note">Default inputs, computed when the book was built:</p>'
                f'<div class="ragft-chart-box">{result["svg"]}</div>{result["html"]}</div></div>')
        return self._wrap(prefix, wheel, body)


# ------------------------------------------------------------------------------------------
# Wiring
# ------------------------------------------------------------------------------------------


def _root(app: Sphinx) -> Path:
    return Path(app.confdir).resolve()


def _builder_inited(app: Sphinx) -> None:
    root = _root(app)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    app.ragft_live_version, app.ragft_live_files = browser_modules(root)  # type: ignore[attr-defined]
    if app.builder.format != "html":
        return
    app.config.html_static_path.append(str(STATIC))
    found = False
    for entry in app.config.html_static_path:
        base = Path(app.confdir, entry)
        if all((base / "pyodide" / f).is_file() for f in PYODIDE_FILES):
            found = True
    if not found:
        logger.warning("ragft_live: no pyodide/ folder with %s in html_static_path: the live tools will not "
                       "start (run 'make vendor')", ", ".join(PYODIDE_FILES), type="ragft", subtype="pyodide")


def _page_context(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if doctree is None:
        return
    if any(MARKER in n.astext() for n in doctree.findall(nodes.raw)):
        app.add_css_file("ragft-live.css")
        app.add_js_file("ragft-live.js", defer="defer")


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    root = _root(app)
    path = build_wheel(root, app.ragft_live_version, app.ragft_live_files,  # type: ignore[attr-defined]
                       Path(app.outdir) / "_static" / "ragft")
    logger.info("ragft_live: browser wheel %s (%d modules, %.1f kB)", path.name,
                len(app.ragft_live_files), path.stat().st_size / 1024)  # type: ignore[attr-defined]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("ragft-decision-form", DecisionForm)
    app.add_directive("ragft-cost-explorer", CostExplorer)
    app.connect("builder-inited", _builder_inited)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
