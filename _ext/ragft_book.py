"""Small fixes to the HTML that Jupyter Book 1 writes, so pages load with no console errors.

* sphinx-thebe is set up twice by jupyter-book + sphinx-book-theme and writes the same inline
  ``const THEBE_JS_URL = ...`` script twice, a SyntaxError in every page's console. We drop exact
  duplicate scripts from each page's context.
"""

from __future__ import annotations


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


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=1)  # first: a later handler may return a template and stop the event
    return {"parallel_read_safe": True, "parallel_write_safe": True}
