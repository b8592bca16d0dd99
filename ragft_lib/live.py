"""The library's side of the live tools in the published book (it runs in the reader's browser).

The book's Sphinx extension (``_ext/ragft_live.py``) generates two forms at build time from
:meth:`Scenario.field_specs() <ragft_lib.decision.Scenario.field_specs>` and
:meth:`CostInputs.field_specs() <ragft_lib.cost.CostInputs.field_specs>`. In the page, a small
script starts Pyodide, installs this package's wheel and calls :func:`decide_json` and
:func:`cost_json` with the form's raw values. The JavaScript only moves strings: every rule, every
validation message, every number and the chart itself come from here.

Standard library only (Pyodide has no numpy).

>>> import json
>>> out = json.loads(decide_json(json.dumps({"stage": "prototype", "kb_documents": "1200"})))
>>> out["ok"], out["approach"]
(True, 'rag')
>>> json.loads(decide_json(json.dumps({"kb_documents": "-5"})))["error"]
{'field': 'kb_documents', 'message': 'Knowledge base size: must be at least 0 documents; you entered -5.'}
>>> json.loads(cost_json(json.dumps({"requests_per_day": "abc"})))["error"]["message"]
'Requests per day: “abc” is not a number.'

Error messages are in the form's own words (:func:`form_message`): its labels, not the field
names, and no Python words; the library's :class:`~ragft_lib.errors.ConfigError` keeps the field
names a YAML file or the command line uses.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any, Mapping

from ._fields import field_specs
from .cost import PRICES_AS_OF, CostInputs, break_even, crossover, monthly_cost
from .decision import Scenario, recommend
from .errors import RagftError
from .vocabulary import APPROACHES, COLOURS

__all__ = ["CHART_RANGE", "form_message", "parse_form", "decide", "cost_curves", "cost_chart_svg", "cost_table_html", "cost",
           "decide_json", "cost_json"]

#: Requests per day covered by the cost chart unless the current volume lies outside.
CHART_RANGE: tuple[float, float] = (1e2, 1e7)


def parse_form(cls: type, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a form's raw values (strings, and booleans from checkboxes) into field values.

    Text that is not a number is passed on unchanged, so the dataclass's own validation names the
    field and the value; an empty box is ``None`` (allowed where the field is nullable).

    >>> parse_form(Scenario, {"kb_documents": " 2000 ", "latency_p95_slo_ms": "",
    ...                       "rag_quality_sufficient": "false", "needs_citations": True})
    {'kb_documents': 2000, 'latency_p95_slo_ms': None, 'rag_quality_sufficient': False, 'needs_citations': True}
    >>> parse_form(Scenario, {"kb_documents": "many"})
    {'kb_documents': 'many'}
    """
    kinds = {s["name"]: s["kind"] for s in field_specs(cls)}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        kind = kinds.get(name)
        if isinstance(value, str):
            text = value.strip()
            if text == "":
                value = None
            elif kind == "bool" and text.lower() in ("true", "false"):
                value = text.lower() == "true"
            elif kind in ("int", "float"):
                value = _number(text)
            else:
                value = text
        out[name] = value
    return out


def _number(text: str) -> Any:
    """``int`` for an integer literal (so messages echo ``-5``, not ``-5.0``), else ``float``, else the text."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _error(err: RagftError, cls: type | None = None, raw: Mapping[str, Any] | None = None) -> dict[str, Any]:
    field = getattr(err, "field", None)
    message = form_message(cls, raw or {}, err) if cls is not None else str(err)
    return {"ok": False, "error": {"field": field, "message": message}}


def _amount(value: float) -> str:
    """A bound as a reader writes it: ``1,000,000``, ``0.5``, ``1e+10``."""
    if value != 0 and (abs(value) >= 1e9 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.6g}"


def _unit_words(meta: Mapping[str, Any]) -> str:
    unit = meta.get("unit") or ""
    return "" if unit in ("", "x") else f" {unit}"


def form_message(cls: type, raw: Mapping[str, Any], err: RagftError) -> str:
    """The message a form shows for ``err``, in the form's words: the field's label, the value as
    typed, bounds in words ("at least", "at most"), no Python type names or ``null``.

    ``raw`` holds the form's values as typed (see :func:`parse_form`).

    >>> def msg(**raw):
    ...     try:
    ...         CostInputs.from_dict(parse_form(CostInputs, raw))
    ...     except RagftError as err:
    ...         return form_message(CostInputs, raw, err)
    >>> msg(requests_per_day="1e30")
    'Requests per day: must be at most 1e+12 requests/day; you entered 1e30.'
    >>> msg(requests_per_day="")
    'Requests per day: required; enter a number of requests/day.'
    >>> msg(requests_per_day="0")
    'Requests per day: must be more than 0 requests/day; you entered 0.'
    >>> msg(instruction_tokens_saved_by_finetuning="5000")
    'Prompt tokens saved by fine-tuning: must be at most the prompt tokens (800); you entered 5000.'
    """
    specs = {s["name"]: s for s in field_specs(cls)}
    name = getattr(err, "field", None)
    meta = specs.get(name) if name else None
    if meta is None:
        return str(err)
    label = meta["label"]
    typed = raw.get(name)
    shown = typed.strip() if isinstance(typed, str) else ("" if typed is None else _value_text(typed))
    value = parse_form(cls, {name: typed}).get(name) if name in raw else None
    kind, unit = meta["kind"], _unit_words(meta)
    what = {"int": "a whole number", "float": "a number", "bool": "yes or no",
            "choice": "one of " + ", ".join(meta.get("choices") or ())}[kind]
    if value is None and name in raw:
        of = f" of{unit}" if unit and kind in ("int", "float") else ""
        return f"{label}: required; enter {what}{of}."
    if kind in ("int", "float"):
        if isinstance(value, str) or isinstance(value, bool):
            return f"{label}: “{shown}” is not a number."
        if isinstance(value, (int, float)):
            if value != value or value in (math.inf, -math.inf):
                return f"{label}: enter a finite number; you entered {shown}."
            lo, hi = meta.get("min"), meta.get("max")
            if lo is not None and (value <= lo if meta.get("min_exclusive") else value < lo):
                bound = "more than" if meta.get("min_exclusive") else "at least"
                return f"{label}: must be {bound} {_amount(lo)}{unit}; you entered {shown}."
            if hi is not None and value > hi:
                return f"{label}: must be at most {_amount(hi)}{unit}; you entered {shown}."
            if kind == "int" and isinstance(value, float) and not value.is_integer():
                return f"{label}: enter a whole number; you entered {shown}."
    elif kind == "choice" and value not in (meta.get("choices") or ()):
        return f"{label}: choose {what}."
    elif kind == "bool" and not isinstance(value, bool):
        return f"{label}: choose yes or no."
    # a rule between fields (e.g. tokens saved <= prompt tokens): name the other fields by label
    text = str(err).split(": ", 1)[1] if str(err).startswith(f"{name}: ") else str(err)
    for other in sorted(specs, key=len, reverse=True):
        text = text.replace(other, "the " + specs[other]["label"].lower())
    text = (text.replace("must be <= ", "must be at most ").replace("must be >= ", "must be at least ")
            .replace("must be < ", "must be less than ").replace("must be > ", "must be more than "))
    text = text.replace(", got ", "; you entered ", 1) if shown else text.split(", got ")[0]
    if shown and "; you entered " in text:
        text = text.rsplit("; you entered ", 1)[0] + f"; you entered {shown}"
    return f"{label}: {text}."


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def decide(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Recommendation for a filled-in decision form: ``{"ok", "approach", "html"}`` or ``{"ok": False, "error"}``.

    >>> decide({"stage": "production", "labeled_examples": "5000", "style_transfer": True,
    ...         "knowledge_update_days": ""})["approach"]
    'fine-tune'
    """
    try:
        rec = recommend(Scenario.from_dict(parse_form(Scenario, raw)))
    except RagftError as err:
        return _error(err, Scenario, raw)
    return {"ok": True, "approach": rec.approach, "html": rec.to_html()}


def cost_curves(inputs: CostInputs, points: int = 61,
                requests_range: tuple[float, float] = CHART_RANGE) -> dict[str, Any]:
    """Monthly cost of each approach over a log-spaced range of requests per day (scalar code).

    The range is widened to a whole decade around ``inputs.requests_per_day`` when it lies outside.

    >>> c = cost_curves(CostInputs(requests_per_day=50_000), points=5)
    >>> c["requests_per_day"][0], len(c["monthly_usd"]["rag"]), round(c["current"]["rag"])
    (100.0, 5, 2460)
    """
    lo, hi = requests_range
    r = inputs.requests_per_day
    lo = min(lo, 10 ** math.floor(math.log10(r)))
    hi = max(hi, 10 ** math.ceil(math.log10(r)))
    step = (math.log10(hi) - math.log10(lo)) / (points - 1)
    xs = [10 ** (math.log10(lo) + i * step) for i in range(points)]
    series = {a: [monthly_cost(inputs.replace(requests_per_day=x), a) for x in xs] for a in APPROACHES}
    c = crossover(inputs)
    cross_cost = None
    if c.requests_per_day and lo <= c.requests_per_day <= hi:  # the chart marks it only inside its range
        cross_cost = monthly_cost(inputs.replace(requests_per_day=c.requests_per_day), "rag")
    return {
        "requests_per_day": xs,
        "monthly_usd": series,
        "current_requests_per_day": r,
        "current": {a: monthly_cost(inputs, a) for a in APPROACHES},
        "crossover_requests_per_day": c.requests_per_day,
        "crossover_monthly_usd": cross_cost,
        "crossover_text": str(c),
        "break_even_month": (b := break_even(inputs)).month,
        "break_even_text": str(b),
        "hosting": inputs.hosting,
    }


def _money(v: float) -> str:
    if v >= 1e6:
        return f"${v / 1e6:,.3g}M"
    if v >= 1e3:
        return f"${v / 1e3:,.3g}k"
    return f"${v:,.3g}"


def _volume(v: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:,.3g}{suffix}"
    return f"{v:,.3g}"


def cost_chart_svg(curves: Mapping[str, Any], width: int = 640, height: int = 380) -> str:
    """A log-log SVG chart of :func:`cost_curves`: one line per approach, the crossover and the current volume marked.

    >>> svg = cost_chart_svg(cost_curves(CostInputs(), points=5))
    >>> svg.startswith("<svg") and 'class="ragft-crossover"' in svg and svg.count("<path") == len(APPROACHES)
    True
    """
    left, right, top, bottom = 70, 16, 16, 52
    xs = curves["requests_per_day"]
    ys = [y for a in APPROACHES for y in curves["monthly_usd"][a]] + list(curves["current"].values())
    x0, x1 = math.log10(xs[0]), math.log10(xs[-1])
    y0 = math.floor(math.log10(max(min(ys), 1e-2)))
    y1 = math.ceil(math.log10(max(ys)))
    if y1 <= y0:
        y1 = y0 + 1

    def px(x: float) -> float:
        return left + (math.log10(x) - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        y = max(y, 10 ** y0)
        return height - bottom - (math.log10(y) - y0) / (y1 - y0) * (height - top - bottom)

    out = [f'<svg class="ragft-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'role="img" aria-labelledby="ragft-chart-title">',
           f'<title id="ragft-chart-title">Monthly cost against requests per day ({html.escape(curves["hosting"])}, '
           f'prices as of {PRICES_AS_OF}); {html.escape(curves["crossover_text"])}</title>',
           '<g class="ragft-grid">']
    for e in range(math.ceil(x0), math.floor(x1) + 1):
        x = px(10 ** e)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}"/>'
                   f'<text class="ragft-tick" x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                   f'{_volume(10 ** e)}</text>')
    for e in range(y0, y1 + 1):
        y = py(10 ** e)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>'
                   f'<text class="ragft-tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_money(10 ** e)}</text>')
    out.append("</g>")
    out.append(f'<text class="ragft-axis" x="{(left + width - right) / 2:.0f}" y="{height - 14}" '
               f'text-anchor="middle">requests per day</text>'
               f'<text class="ragft-axis" transform="rotate(-90)" x="{-(top + height - bottom) / 2:.0f}" y="16" '
               f'text-anchor="middle">USD per month</text>')
    cross = curves["crossover_requests_per_day"]
    if cross and xs[0] <= cross <= xs[-1]:
        x = px(cross)
        out.append(f'<g class="ragft-crossover" data-requests-per-day="{cross:.6g}">'
                   f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}"/>'
                   f'<circle cx="{x:.1f}" cy="{py(curves["crossover_monthly_usd"]):.1f}" r="4"/>'
                   f'<text x="{x + 6:.1f}" y="{top + 12}">crossover {_volume(cross)}/day</text></g>')
    for a in APPROACHES:
        d = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}"
                     for i, (x, y) in enumerate(zip(xs, curves["monthly_usd"][a])))
        out.append(f'<path class="ragft-line" data-approach="{a}" d="{d}" stroke="{COLOURS[a]}"/>')
    r = curves["current_requests_per_day"]
    x = px(r)
    out.append(f'<g class="ragft-current" data-requests-per-day="{r:.6g}">'
               f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}"/>')
    for a in APPROACHES:
        out.append(f'<circle cx="{x:.1f}" cy="{py(curves["current"][a]):.1f}" r="3.5" fill="{COLOURS[a]}"/>')
    out.append("</g>")
    lx = left + 12
    for i, a in enumerate(APPROACHES):
        ly = top + 14 + 18 * i
        out.append(f'<g class="ragft-legend"><line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" '
                   f'stroke="{COLOURS[a]}"/><text x="{lx + 28}" y="{ly}">{a}</text></g>')
    out.append("</svg>")
    return "".join(out)


def cost_table_html(curves: Mapping[str, Any]) -> str:
    """The monthly cost of each approach at the current volume, and the crossover, as HTML.

    >>> "<table" in cost_table_html(cost_curves(CostInputs(), points=3))
    True
    """
    cur = curves["current"]
    cheapest = min(APPROACHES, key=lambda a: cur[a])
    cheap_cls = ' class="ragft-cheapest"'
    text = curves["crossover_text"]
    rows = "".join(
        f'<tr data-approach="{a}"{cheap_cls if a == cheapest else ""}>'
        f'<th scope="row">{a}</th><td>${cur[a]:,.0f}</td>'
        f'<td>${cur[a] / (curves["current_requests_per_day"] * 365.25 / 12):.5f}</td></tr>'
        for a in APPROACHES)
    return (f'<p class="ragft-cost-summary">At <strong>{curves["current_requests_per_day"]:,.0f}</strong> requests/day '
            f'({html.escape(curves["hosting"])}, prices as of {PRICES_AS_OF}) the cheapest is '
            f'<strong class="ragft-cheapest-name">{cheapest}</strong>. '
            f'<span class="ragft-crossover-text">{html.escape(text[0].upper() + text[1:])}.</span> '
            f'<span class="ragft-break-even-text">{html.escape(_sentence(curves.get("break_even_text", "")))}</span></p>'
            f'<table class="ragft-cost-table"><thead><tr><th>approach</th><th>USD per month</th>'
            f'<th>USD per request</th></tr></thead><tbody>{rows}</tbody></table>')


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "." if text else ""


def cost(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Chart and table for a filled-in cost form: ``{"ok", "svg", "html", "crossover_requests_per_day"}``.

    >>> cost({"requests_per_day": "50000"})["crossover_requests_per_day"] > 0
    True
    """
    try:
        inputs = CostInputs.from_dict(parse_form(CostInputs, raw))
    except RagftError as err:
        return _error(err, CostInputs, raw)
    curves = cost_curves(inputs)
    return {"ok": True, "svg": cost_chart_svg(curves), "html": cost_table_html(curves),
            "crossover_requests_per_day": curves["crossover_requests_per_day"],
            "break_even_month": curves["break_even_month"], "current": curves["current"]}


def decide_json(raw_json: str) -> str:
    """:func:`decide` with JSON in and out (what the page's script calls)."""
    return json.dumps(decide(json.loads(raw_json)))


def cost_json(raw_json: str) -> str:
    """:func:`cost` with JSON in and out (what the page's script calls)."""
    return json.dumps(cost(json.loads(raw_json)))
