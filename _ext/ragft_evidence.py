"""The evidence ledger in the book: ``evidence.json`` and the scorecard page.

* Before any notebook runs, ``RAGFT_LEDGER_DIR`` is set to ``_build/evidence`` (beside the
  executed-notebook cache): the chapters' kernels inherit it, and every
  :func:`ragft_lib.evidence.record` call writes its entry there.
* ``{ragft-scorecard}`` leaves a placeholder that is filled at write time — after every chapter
  has executed — with the scorecard table, one row per ledger entry, grouped by framework claim.
  The page holding it is re-read on every build, so it never shows a stale ledger.
* At the end of the build the ledger is published as ``_build/html/evidence.json`` (with a
  ``not measured`` entry for every framework claim no chapter measured), and any GPU ledgers
  committed under ``results/gpu/*/evidence.json`` are shown as a second column when present.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

_DOCS: set[str] = set()


class scorecard_node(nodes.General, nodes.Element):
    pass


class Scorecard(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        _DOCS.add(self.env.docname)
        self.env.note_dependency(__file__)
        return [scorecard_node()]


def _ledger_dir(app: Sphinx) -> Path:
    return Path(app.outdir).parent / "evidence"


def _config_inited(app: Sphinx, config: Any) -> None:
    os.environ["RAGFT_LEDGER_DIR"] = str(_ledger_dir(app))


def _always_reread(app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    return [d for d in env.found_docs if d in _DOCS or _mentions_scorecard(env, d)]


def _mentions_scorecard(env: Any, docname: str) -> bool:
    try:
        return "{ragft-scorecard}" in Path(env.doc2path(docname)).read_text(encoding="utf-8")
    except OSError:
        return False


def _gpu_ledgers(app: Sphinx) -> list[dict[str, Any]]:
    out = []
    for path in sorted(Path(app.srcdir).glob("results/gpu/*/evidence.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise RuntimeError(f"{path}: not a readable GPU ledger ({e})") from None
    return out


def _document(app: Sphinx) -> dict[str, Any]:
    from ragft_lib.evidence import evidence_document, read_ledger

    folder = _ledger_dir(app)
    entries = read_ledger(folder) if folder.is_dir() else []
    return evidence_document(entries, built_by="make book", machine="CPU build of this site")


def _share(metric: str) -> bool:
    return metric.startswith(("accuracy", "share", "agreement", "validity", "recall"))


def _num(x: float, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{x:{sign},.0f}" if abs(x) >= 100 else f"{x:{sign}.3g}"


def _pct(x: Any, metric: str) -> str:
    if x is None:
        return ""
    return f"{x:.0%}" if _share(metric) else _num(x)


def _signed_pct(x: float) -> str:
    """A signed percentage, rounded as the chapters' summary sentences round it
    (:func:`ragft_lib.evidence.signed_points`: -0.3 %, never a non-zero "-0%")."""
    from ragft_lib.evidence import signed_points

    return f"{signed_points(x)}%"


def _diff(e: dict[str, Any]) -> str:
    if e["difference"] is None:
        return ""
    lo, hi = e["ci"]
    if _share(e["metric"]):
        return (f"{_signed_pct(e['difference'])} <span class='ragft-ci'>[{_signed_pct(lo)}, "
                f"{_signed_pct(hi)}]</span>")
    return f"{_num(e['difference'], True)} <span class='ragft-ci'>[{_num(lo, True)}, {_num(hi, True)}]</span>"


def _table(doc: dict[str, Any], gpu: list[dict[str, Any]], fromdoc: str, app: Sphinx) -> str:
    esc = html.escape
    by_claim: dict[str, list[dict[str, Any]]] = {}
    for e in doc["entries"]:
        by_claim.setdefault(e["framework"], []).append(e)
    gpu_by_id = {e["id"]: e for g in gpu for e in g.get("entries", [])}
    rows = []
    for c in doc["framework"]:
        entries = by_claim.get(c["id"], [])
        rows.append(f"<tr class='ragft-claim'><th colspan='{4 + bool(gpu)}'>{esc(c['claim'])}</th></tr>")
        for e in entries:
            chapter = ""
            if e["chapter"]:
                docname = next((d for d in app.env.found_docs if d.rsplit("/", 1)[-1].startswith(e["chapter"] + "_")), None)
                if docname:
                    uri = app.builder.get_relative_uri(fromdoc, docname)
                    title = app.env.titles[docname].astext() if docname in app.env.titles else docname
                    chapter = f"<a href='{esc(uri)}'>{esc(title)}</a>"
            verdict = e["verdict"]
            small = ""
            if e["metric"].startswith("accuracy") and e["n"] is not None and e["n"] < 100:
                small = " <span class='ragft-small-n' title='below the book’s standard of 100 questions'>(n &lt; 100)</span>"
            what = (f"{esc(e['a'])} {_pct(e['value_a'], e['metric'])} vs {esc(e['b'])} {_pct(e['value_b'], e['metric'])}"
                    if verdict != "not measured" else esc(e["note"]))
            measured = what if verdict == "not measured" else (
                f"{what}<br>difference {_diff(e)}, n = {e['n']}{small}")
            cells = [f"<td><span class='ragft-verdict ragft-{verdict.replace(' ', '-')}'>{esc(verdict)}</span></td>",
                     f"<td>{esc(e['claim'])}<br><span class='ragft-metric'>{esc(e['metric'])}</span></td>",
                     f"<td>{measured}</td>",
                     f"<td>{chapter}</td>"]
            if gpu:
                g = gpu_by_id.get(e["id"])
                cells.append(f"<td>{esc(g['verdict']) + ' ' + _diff(g) if g else 'not run'}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
    head = ["verdict", "claim tested (metric)", "measured", "chapter"]
    if gpu:
        head.append("GPU run")
    # the verdict column fits "not distinguishable" on two lines, the chapter column a whole word
    widths = ["19%", "37%", "28%", "16%"] if not gpu else ["16%", "31%", "24%", "13%", "16%"]
    cols = "<colgroup>" + "".join(f"<col style='width: {w}'>" for w in widths) + "</colgroup>"
    return ("<div class='ragft-scorecard'><table class='table'>" + cols + "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


_STYLE = """<style>
.ragft-scorecard { overflow-x: auto; }
.ragft-scorecard table { font-size: 0.85em; table-layout: fixed; width: 100%; min-width: 40rem; }\n.ragft-scorecard td, .ragft-scorecard th { white-space: normal; overflow-wrap: anywhere; }\n.ragft-scorecard td { vertical-align: top; }
.ragft-scorecard tr.ragft-claim th { background: var(--pst-color-surface, #f3f4f5); padding-top: 0.8em; }
.ragft-verdict { font-weight: 600; display: inline-block; white-space: normal; overflow-wrap: normal; padding: 0 0.3em; border-radius: 3px; }
.ragft-supported { background: #d8f0dd; color: #14532d; }
.ragft-not-distinguishable { background: #eceff1; color: #37474f; }
.ragft-contradicted { background: #fbe0e0; color: #7f1d1d; }
.ragft-not-measured { background: #fff4d6; color: #6b4e00; }
.ragft-ci, .ragft-small-n { color: #555; font-size: 0.9em; white-space: nowrap; }\n.ragft-metric { color: #555; font-size: 0.9em; }
</style>"""


def _doctree_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    placeholders = list(doctree.findall(scorecard_node))
    if not placeholders:
        return
    doc = _document(app)
    gpu = _gpu_ledgers(app)
    counts = {v: sum(e["verdict"] == v for e in doc["entries"]) for v in
              ("supported", "not distinguishable", "contradicted", "not measured")}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    gpu_line = ("GPU column: " + "; ".join(f"{g.get('about', {}).get('model', '?')} on {g.get('about', {}).get('device', '?')} "
                                           f"(commit {g.get('about', {}).get('commit', '?')}, command "
                                           f"<code>{html.escape(str(g.get('about', {}).get('command', '?')))}</code>)" for g in gpu)
                if gpu else "No GPU run has been committed to this repository yet: every verdict here is from the "
                            "CPU build (SmolLM2-135M on two cores).")
    json_uri = "../" * docname.count("/") + "evidence.json"
    markup = (_STYLE + f"<p class='ragft-scorecard-summary'>{len(doc['entries'])} entries: {summary}. "
              f"<a href='{json_uri}'>evidence.json</a> holds them all. {gpu_line}</p>"
              + _table(doc, gpu, docname, app))
    for node in placeholders:
        node.replace_self(nodes.raw("", markup, format="html"))


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    doc = _document(app)
    Path(app.outdir, "evidence.json").write_text(json.dumps(doc, indent=1))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_node(scorecard_node)
    app.add_directive("ragft-scorecard", Scorecard)
    app.connect("config-inited", _config_inited)
    app.connect("env-get-outdated", _always_reread)
    app.connect("doctree-resolved", _doctree_resolved)
    app.connect("build-finished", _build_finished)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
