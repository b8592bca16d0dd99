"""Fine-tune, RAG or both? A rule-based recommendation that explains itself.

>>> from ragft_lib.decision import Scenario, recommend
>>> s = Scenario(stage="production", knowledge_update_days=1, kb_documents=60_000,
...              labeled_examples=2_000, requests_per_day=300_000, latency_p95_slo_ms=None,
...              needs_citations=True, regulated=False, strict_format=True,
...              specialized_jargon=False, style_transfer=False, rag_quality_sufficient=None)
>>> rec = recommend(s)
>>> rec.approach
'hybrid'
>>> sorted({r.dimension for r in rec.reasons})[:3]
['citations', 'combination', 'cost at volume']
>>> rec.to_markdown().splitlines()[0]
'## Verdict: hybrid'

The rules (one function each, below) encode the framework: frequent knowledge changes, citations,
audit requirements and large knowledge bases favour RAG; strict output formats, specialised
jargon, style transfer, and clean labels with cost at scale favour fine-tuning; fewer than
:data:`MIN_LABELED_EXAMPLES` labeled examples rule fine-tuning out; a prototype starts with RAG;
the crossover points (labels available and RAG quality insufficient; cost at the modelled
volume; a p95 SLO the retrieval overhead cannot meet; output consistency) move the verdict; and
format / style / vocabulary needs that meet changing or cited facts give a hybrid. Conflicts are
named in the reasons. "What would change the verdict" re-runs :func:`recommend` on scenarios with
one field changed and keeps, for each field, the nearest value that flips it.

Standard library only (runs in the browser on Pyodide): it calls the scalar cost model and the
stored default latency percentiles.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ._fields import field_specs, from_mapping, spec, validate
from .cost import PRICES_AS_OF, CostInputs, as_cost_inputs, costs, crossover
from .errors import DataError, RagftError
from .latency import DEFAULT_PERCENTILES_MS, sla_check
from .vocabulary import APPROACHES, COLOURS

__all__ = [
    "MIN_LABELED_EXAMPLES", "CLEAN_LABELED_EXAMPLES", "FRESH_DAYS", "VERY_FRESH_DAYS", "LARGE_KB_DOCUMENTS",
    "VERY_LARGE_KB_DOCUMENTS", "FACT_DIMENSIONS", "BEHAVIOUR_DIMENSIONS", "Scenario", "Reason", "Change",
    "Recommendation", "FLAG_RULES", "recommend", "RULES", "RULE_BASE", "rules_frame", "load_scenarios",
    "main_reasons", "verdicts_frame", "sweep", "verdict_map", "plot_verdict_map", "ScenarioForm", "form", "examples_dir", "find_scenario_file"]
#: Below this many labeled examples fine-tuning is ruled out ("a few hundred").
MIN_LABELED_EXAMPLES = 300
#: From this many labeled examples the labels count as a clean training set for cost at scale.
CLEAN_LABELED_EXAMPLES = 1_000
#: Knowledge changing at least this often (days) favours RAG; :data:`VERY_FRESH_DAYS` strongly.
FRESH_DAYS = 30
#: Knowledge changing at least this often (days) favours RAG strongly.
VERY_FRESH_DAYS = 7
#: Knowledge bases from this many documents favour RAG; :data:`VERY_LARGE_KB_DOCUMENTS` strongly.
LARGE_KB_DOCUMENTS = 10_000
#: Knowledge bases from this many documents favour RAG strongly.
VERY_LARGE_KB_DOCUMENTS = 100_000

#: Dimensions that are about facts (favour retrieval) and about behaviour (favour training).
FACT_DIMENSIONS = ("knowledge freshness", "citations", "audit", "knowledge base size")
BEHAVIOUR_DIMENSIONS = ("output format", "vocabulary", "style")


@dataclass(frozen=True)
class Scenario:
    """What you know about your use case; every field has a default and validated metadata.

    >>> Scenario(stage="prototype").labeled_examples
    0
    >>> Scenario(labeled_examples=-5)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: labeled_examples: must be >= 0 examples, got -5
    """

    stage: str = spec(
        "production", "choice", label="Stage", choices=("prototype", "production"),
        help="A prototype starts with RAG; production weighs every dimension.")
    knowledge_update_days: float | None = spec(
        30.0, "float", label="Days between knowledge changes", unit="days", min=0, min_exclusive=True, max=36_500,
        nullable=True, null_means="static: the knowledge never changes",
        what_if=(None, 1, VERY_FRESH_DAYS, FRESH_DAYS, 90, 365),
        help="Typical days between changes to the facts the system answers from; empty if static.")
    kb_documents: int = spec(
        1_000, "int", label="Knowledge base size", unit="documents", min=0, max=10_000_000_000,
        what_if=(100, 1_000, LARGE_KB_DOCUMENTS, VERY_LARGE_KB_DOCUMENTS, 1_000_000),
        help="Number of documents the answers draw on.")
    labeled_examples: int = spec(
        0, "int", label="Labeled examples", unit="examples", min=0, max=1_000_000_000,
        what_if=(0, MIN_LABELED_EXAMPLES - 1, MIN_LABELED_EXAMPLES, CLEAN_LABELED_EXAMPLES, 10_000),
        help="Question/answer pairs of the quality you want, available for training.")
    requests_per_day: float = spec(
        1_000.0, "float", label="Requests per day", unit="requests/day", min=0, min_exclusive=True, max=1e12,
        what_if=(100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000),
        help="Expected volume; drives the cost comparison.")
    latency_p95_slo_ms: float | None = spec(
        None, "float", label="p95 latency target", unit="ms", min=0, min_exclusive=True, max=3_600_000,
        nullable=True, null_means="no latency target", what_if=(None, 1_000, 2_000, 2_500, 5_000),
        help="95th-percentile end-to-end latency the system must meet; empty if none.")
    needs_citations: bool = spec(
        False, "bool", label="Needs citations", help="Answers must cite the source passages.")
    regulated: bool = spec(
        False, "bool", label="Regulated / audited",
        help="Answers must be traceable and knowledge removable on request (audit, compliance).")
    strict_format: bool = spec(
        False, "bool", label="Strict output format",
        help="Output must follow a fixed schema or template every time (JSON, codes, forms).")
    specialized_jargon: bool = spec(
        False, "bool", label="Specialised jargon",
        help="The domain uses vocabulary a general model handles poorly.")
    style_transfer: bool = spec(
        False, "bool", label="Style transfer", help="Answers must follow a house tone or voice.")
    rag_quality_sufficient: bool | None = spec(
        None, "bool", label="RAG quality sufficient", nullable=True, null_means="not measured yet",
        what_if=(None, True, False),
        help="Whether a RAG baseline, measured on held-out questions, is good enough; empty if not measured.")
    hosting: str = spec(
        "api", "choice", label="Hosting", choices=("api", "self-hosted"),
        help="How the model is served, for the cost model: per-token API or GPU-hours.")

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> "Scenario":
        """Scenario from a mapping; unknown fields and bad values raise :class:`~ragft_lib.errors.ConfigError`.

        >>> Scenario.from_dict({"stage": "prototype", "needs_citations": True}).needs_citations
        True
        """
        return from_mapping(cls, data, source)

    @classmethod
    def from_json(cls, path: str | Path) -> "Scenario":
        """Scenario from a JSON file (errors name the file and the field).

        >>> Scenario.from_json("examples/news_assistant.json").stage   # doctest: +SKIP
        'production'
        """
        text = _read(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Scenario":
        """Scenario from a YAML file (needs pyyaml; errors name the file and the field).

        >>> Scenario.from_yaml("examples/support_bot_prototype.yaml").stage   # doctest: +SKIP
        'prototype'
        """
        try:
            import yaml
        except ImportError:
            raise RagftError(f"{path}: reading YAML needs pyyaml (pip install pyyaml), or use a JSON file") from None
        text = _read(path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise DataError(f"{path}: invalid YAML{where}: {problem}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_file(cls, path: str | Path) -> "Scenario":
        """Scenario from ``.json``, ``.yaml`` or ``.yml``, chosen by the file's suffix."""
        suffix = Path(path).suffix.lower()
        if suffix == ".json":
            return cls.from_json(path)
        if suffix in (".yaml", ".yml"):
            return cls.from_yaml(path)
        raise DataError(f"{path}: unknown scenario file type {suffix!r} (use .json, .yaml or .yml)")

    @classmethod
    def field_specs(cls) -> list[dict[str, Any]]:
        """JSON-ready metadata of every field, in order (for generating a form).

        >>> Scenario.field_specs()[0]["choices"]
        ['prototype', 'production']
        """
        return field_specs(cls)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "Scenario":
        """A validated copy with some fields changed.

        >>> Scenario().replace(stage="prototype").stage
        'prototype'
        """
        return dataclasses.replace(self, **changes)


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read: {err}") from None


@dataclass(frozen=True)
class Reason:
    """One dimension's argument: which approach it favours (``rag``, ``fine-tune``, ``hybrid``) and why.

    ``weight`` is how strongly (1 = a factor, 2 = a strong need, 3 = decisive).

    >>> Reason("citations", "rag", "answers must cite sources", 2).favours
    'rag'
    """

    dimension: str
    favours: str
    why: str
    weight: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Change:
    """A one-field change to the scenario that flips the verdict to ``approach``.

    >>> str(Change("stage", "production", "prototype", "rag"))
    'stage: production -> prototype gives rag'
    """

    field: str
    current: Any
    new: Any
    approach: str

    def __str__(self) -> str:
        return f"{self.field}: {_fmt(self.current)} -> {_fmt(self.new)} gives {self.approach}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _every(days: float) -> str:
    return "every day" if days == 1 else f"every {_fmt(days)} days"


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass(frozen=True)
class Recommendation:
    """The verdict of :func:`recommend` with its reasons, cost, latency and what would change it.

    >>> rec = recommend(Scenario(stage="prototype"))
    >>> rec.approach, rec.reasons[0].dimension
    ('rag', 'stage')
    """

    approach: str
    summary: str
    reasons: tuple[Reason, ...]
    cost: Mapping[str, Any]
    latency: Mapping[str, Any]
    notes: tuple[str, ...]
    what_would_change: tuple[Change, ...]
    scenario: Scenario

    def reasons_by_dimension(self) -> dict[str, list[Reason]]:
        """Reasons grouped by dimension, in order of first appearance."""
        out: dict[str, list[Reason]] = {}
        for r in self.reasons:
            out.setdefault(r.dimension, []).append(r)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready data.

        >>> sorted(recommend(Scenario()).to_dict())[:3]
        ['approach', 'cost', 'latency']
        """
        return {
            "approach": self.approach,
            "summary": self.summary,
            "reasons": [r.to_dict() for r in self.reasons],
            "cost": dict(self.cost),
            "latency": dict(self.latency),
            "notes": list(self.notes),
            "what_would_change": [c.to_dict() for c in self.what_would_change],
            "scenario": self.scenario.to_dict(),
        }

    def _sections(self) -> list[tuple[str, list[str]]]:
        """Plain-text content shared by the Markdown and HTML renderings: (heading, lines)."""
        reasons = [f"**{dim}** → {', '.join(sorted({r.favours for r in rs}))}: "
                   + " ".join(r.why for r in rs) for dim, rs in self.reasons_by_dimension().items()]
        c = self.cost
        monthly = ", ".join(f"{a} ${c['monthly_usd'][a]:,.0f}" for a in APPROACHES)
        cost = [f"At {c['requests_per_day']:,.0f} requests/day ({c['hosting']}, prices as of {c['prices_as_of']}): "
                f"{monthly} per month.", c["crossover_text"] + "."]
        lat = self.latency
        p95 = ", ".join(f"{a} {lat['percentiles_ms'][a]['p95']:,.0f} ms" for a in APPROACHES)
        if lat["p95_slo_ms"] is None:
            latency = [f"No p95 target set. Simulated p95: {p95}."]
        else:
            met = [a for a in APPROACHES if lat["meets"][a]]
            latency = [f"p95 target {lat['p95_slo_ms']:,.0f} ms; simulated p95: {p95}.",
                       f"Meets it: {', '.join(met) if met else 'none'}."]
        changes = [str(ch) for ch in self.what_would_change] or ["No single-field change flips the verdict."]
        sections = [("Reasons", reasons), ("Cost crossover", cost), ("Latency check", latency),
                    ("What would change the verdict", changes)]
        if self.notes:
            sections.append(("Notes", list(self.notes)))
        return sections

    def to_markdown(self, headings: bool = True) -> str:
        """Report: verdict, reasons per dimension, cost crossover, latency check, what would change it.

        ``headings=False`` writes the section titles in bold instead of as ``##``/``###``
        headings, for embedding the report in a page that has its own headings.

        >>> "### What would change the verdict" in recommend(Scenario()).to_markdown()
        True
        >>> recommend(Scenario()).to_markdown(headings=False).splitlines()[0]
        '**Verdict: rag**'
        """
        h2, h3 = ("## {}", "### {}") if headings else ("**{}**", "**{}**")
        lines = [h2.format(f"Verdict: {self.approach}"), "", self.summary]
        for heading, items in self._sections():
            lines += ["", h3.format(heading), ""] + [f"- {item}" for item in items]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """The same report as an HTML fragment (standard library string building; all text escaped).

        >>> recommend(Scenario()).to_html().startswith('<section class="ragft-recommendation"')
        True
        """
        def inline(text: str) -> str:
            # the only markup in the items is **dimension**
            parts = html.escape(text).split("**")
            return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))

        out = [f'<section class="ragft-recommendation" data-approach="{html.escape(self.approach)}">',
               f'<h2>Verdict: <span class="ragft-verdict">{html.escape(self.approach)}</span></h2>',
               f"<p>{html.escape(self.summary)}</p>"]
        for heading, items in self._sections():
            out.append(f"<h3>{html.escape(heading)}</h3>")
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
        out.append("</section>")
        return "\n".join(out)


# ------------------------------------------------------------------------------------------
# The rules: each returns reasons (and notes) for one dimension
# ------------------------------------------------------------------------------------------

#: The yes/no needs as a table of rows (Scenario field, dimension, favours, weight, why).
FLAG_RULES: tuple[tuple[str, str, str, int, str], ...] = (
    ("needs_citations", "citations", "rag", 2,
     "Answers must cite sources: retrieval returns the passages an answer came from; a fine-tuned model "
     "cannot say where a fact came from."),
    ("regulated", "audit", "rag", 2,
     "Regulated use: each answer can be traced to the retrieved documents, and removing a document takes "
     "effect at once; removing a fact from weights means retraining."),
    ("strict_format", "output format", "fine-tune", 2,
     "A strict output format must hold on every answer: fine-tuning on examples makes it consistent, where "
     "prompting drifts and its instructions cost tokens on every request."),
    ("specialized_jargon", "vocabulary", "fine-tune", 1,
     "Specialised jargon: fine-tuning teaches the vocabulary and how it is used; retrieval only shows it in "
     "context."),
    ("style_transfer", "style", "fine-tune", 2,
     "A house style or voice is behaviour, learned from examples, not a fact to retrieve."),
)


def _facts_rules(s: Scenario) -> tuple[list[Reason], list[str]]:
    reasons, notes = [], []
    d = s.knowledge_update_days
    if d is None:
        notes.append("The knowledge is static: it can live in weights or in an index; other needs decide.")
    elif d <= FRESH_DAYS:
        per_month = 365.25 / 12 / d
        reasons.append(Reason(
            "knowledge freshness", "rag",
            f"The knowledge changes {_every(d)}: RAG serves a change as soon as the document is "
            f"indexed, while a fine-tuned model needs a retraining per change (~{per_month:,.1f} a month).",
            2 if d <= VERY_FRESH_DAYS else 1))
    else:
        notes.append(f"The knowledge changes only {_every(d)}: retraining that often is affordable.")
    reasons += [Reason(dim, favours, why, w) for f, dim, favours, w, why in FLAG_RULES
                if favours == "rag" and getattr(s, f)]
    if s.kb_documents >= LARGE_KB_DOCUMENTS:
        reasons.append(Reason(
            "knowledge base size", "rag",
            f"{s.kb_documents:,} documents are more facts than a model can reliably memorise; an index "
            "scales with them.", 2 if s.kb_documents >= VERY_LARGE_KB_DOCUMENTS else 1))
    return reasons, notes


def _behaviour_rules(s: Scenario) -> list[Reason]:
    return [Reason(dim, favours, why, w) for f, dim, favours, w, why in FLAG_RULES
            if favours == "fine-tune" and getattr(s, f)]


def _data_rules(s: Scenario) -> tuple[list[Reason], list[str]]:
    reasons, notes = [], []
    if s.labeled_examples < MIN_LABELED_EXAMPLES:
        reasons.append(Reason(
            "training data", "rag",
            f"Only {s.labeled_examples:,} labeled examples: under a few hundred ({MIN_LABELED_EXAMPLES}) a "
            "fine-tuned model overfits, which rules fine-tuning out for now.", 3))
    if s.rag_quality_sufficient is True:
        reasons.append(Reason(
            "measured quality", "rag",
            "RAG's measured quality is sufficient: there is nothing for fine-tuning to fix.", 2))
    elif s.rag_quality_sufficient is False:
        if s.labeled_examples >= MIN_LABELED_EXAMPLES:
            reasons.append(Reason(
                "measured quality", "fine-tune",
                f"RAG's measured quality is insufficient and {s.labeled_examples:,} labeled examples are "
                "available to train on.", 2))
        else:
            notes.append("RAG measured insufficient, but too few labels to fine-tune: improve retrieval "
                         "(chunking, hybrid search, reranking) and collect labeled examples.")
    else:
        notes.append("RAG quality not measured: measure a RAG baseline on held-out questions before "
                     "deciding to fine-tune.")
    return reasons, notes


def _cost_rule(s: Scenario, cost: Mapping[str, Any]) -> list[Reason]:
    m = cost["monthly_usd"]
    ft, rag = m["fine-tune"], m["rag"]
    if ft < rag and s.labeled_examples >= MIN_LABELED_EXAMPLES:
        clean = s.labeled_examples >= CLEAN_LABELED_EXAMPLES
        return [Reason(
            "cost at volume", "fine-tune",
            f"At {s.requests_per_day:,.0f} requests/day fine-tuning costs ${ft:,.0f}/month against RAG's "
            f"${rag:,.0f} (retraining included): past the crossover"
            + (f", with {s.labeled_examples:,} clean labels to train on." if clean else "."), 2 if clean else 1)]
    if rag <= ft:
        return [Reason(
            "cost at volume", "rag",
            f"At {s.requests_per_day:,.0f} requests/day RAG costs ${rag:,.0f}/month against fine-tuning's "
            f"${ft:,.0f} (training and retraining included).", 1)]
    return []


def _latency_rule(s: Scenario, latency: Mapping[str, Any]) -> tuple[list[Reason], list[str]]:
    if s.latency_p95_slo_ms is None:
        return [], []
    meets, p95 = latency["meets"], {a: v["p95"] for a, v in latency["percentiles_ms"].items()}
    target = f"the p95 target of {s.latency_p95_slo_ms:,.0f} ms"
    if meets["fine-tune"] and not meets["rag"] and not meets["hybrid"]:
        return [Reason(
            "latency", "fine-tune",
            f"Retrieval and the longer prompt put RAG's p95 at {p95['rag']:,.0f} ms, over {target}; the "
            f"fine-tuned model answers at p95 {p95['fine-tune']:,.0f} ms.", 2)], []
    if not any(meets.values()):
        return [], [f"No approach meets {target} (fine-tuned p95 {p95['fine-tune']:,.0f} ms): generation itself "
                    "is too slow; use a smaller model, shorter answers or streaming."]
    return [], [f"Latency is not a constraint: {', '.join(a for a in APPROACHES if meets[a])} meet {target}."]


def _cost_summary(s: Scenario, base: CostInputs | None) -> dict[str, Any]:
    inputs = (base or CostInputs()).replace(
        requests_per_day=s.requests_per_day, knowledge_update_days=s.knowledge_update_days, hosting=s.hosting)
    c = crossover(inputs)
    return {
        "requests_per_day": s.requests_per_day,
        "hosting": s.hosting,
        "prices_as_of": PRICES_AS_OF,
        "monthly_usd": {a: v["monthly_usd"] for a, v in costs(inputs).items()},
        "crossover_requests_per_day": c.requests_per_day,
        "crossover_method": c.method,
        "crossover_text": str(c),
    }


def _latency_summary(s: Scenario, percentiles: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    return {
        "p95_slo_ms": s.latency_p95_slo_ms,
        "percentiles_ms": {a: dict(percentiles[a]) for a in APPROACHES},
        "meets": sla_check({a: percentiles[a] for a in APPROACHES}, p95_ms=s.latency_p95_slo_ms),
    }


def _decide(s: Scenario, cost_inputs: CostInputs | None, percentiles: Mapping[str, Any]) -> dict[str, Any]:
    cost = _cost_summary(s, cost_inputs)
    latency = _latency_summary(s, percentiles)
    facts, notes = _facts_rules(s)
    behaviour = _behaviour_rules(s)
    data, data_notes = _data_rules(s)
    lat_reasons, lat_notes = _latency_rule(s, latency)
    reasons = facts + behaviour + data + _cost_rule(s, cost) + lat_reasons
    notes += data_notes + lat_notes
    if s.stage == "prototype":
        reasons.insert(0, Reason(
            "stage", "rag",
            "Prototype: start with RAG. A new document changes an answer in seconds, a retraining takes "
            "hours; measure RAG's quality first, then decide what fine-tuning must fix.", 3))

    weight = {a: sum(r.weight for r in reasons if r.favours == a) for a in APPROACHES}
    hard_rag = s.needs_citations or s.regulated
    latency_needs_ft = bool(lat_reasons)
    if s.stage == "prototype":
        approach, why = "rag", "a prototype starts with RAG"
    elif s.labeled_examples < MIN_LABELED_EXAMPLES:
        approach, why = "rag", f"fewer than {MIN_LABELED_EXAMPLES} labeled examples rule fine-tuning out"
    elif facts and behaviour:
        if latency_needs_ft and not hard_rag and weight["fine-tune"] > weight["rag"]:
            approach, why = "fine-tune", "the latency target and behaviour needs outweigh the facts needs"
        else:
            approach, why = "hybrid", "behaviour needs meet facts that change or must be cited"
    elif facts and s.rag_quality_sufficient is False:
        approach, why = "hybrid", "RAG alone measured insufficient, and the facts still need retrieval"
    elif weight["fine-tune"] > weight["rag"]:
        approach, why = "fine-tune", "the needs favouring fine-tuning are stronger"
    elif weight["rag"] == 0 and weight["fine-tune"] == 0:
        approach, why = "rag", "nothing favours fine-tuning, and RAG is the cheaper system to change"
        reasons.append(Reason("default", "rag", "No need favours fine-tuning; RAG is quicker to build and "
                                                "to change, so start there.", 1))
    else:
        approach, why = "rag", "the needs favouring RAG are at least as strong"

    reasons += _synthesis(approach, why, reasons, facts, behaviour)
    summary = f"Recommended: {approach}, because {why}."
    return {"approach": approach, "summary": summary, "reasons": tuple(reasons), "cost": cost,
            "latency": latency, "notes": tuple(notes)}


def _synthesis(approach: str, why: str, reasons: list[Reason], facts: list[Reason],
               behaviour: list[Reason]) -> list[Reason]:
    """The reason that names the combination or the conflict behind the verdict."""
    if approach == "hybrid":
        if facts and behaviour:
            return [Reason("combination", "hybrid",
                           f"{_dims(behaviour, 'need')} fine-tuning while {_dims(facts, 'need')} retrieval: "
                           "fine-tune for behaviour, retrieve the facts.", 3)]
        return [Reason("combination", "hybrid",
                       f"{_dims(facts, 'need')} retrieval, and RAG alone was measured insufficient: add a "
                       "fine-tuned generator on top of retrieval.", 3)]
    against = [r for r in reasons if r.favours not in (approach, "hybrid")]
    if not against:
        return []
    return [Reason("conflict", approach,
                   f"{_dims(against, 'favour')} {against[0].favours}, but {why}.", 0)]


def _dims(reasons: list[Reason], verb: str) -> str:
    """'a, b and c need' / 'a needs': the dimensions of ``reasons`` with the verb agreeing."""
    names = list(dict.fromkeys(r.dimension for r in reasons))
    joined = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
    return f"{joined} {verb if len(names) > 1 else verb + 's'}"


# ------------------------------------------------------------------------------------------
# What would change the verdict
# ------------------------------------------------------------------------------------------


def _candidates(s: Scenario, f: dataclasses.Field, cost: Mapping[str, Any]) -> list[Any]:
    meta = f.metadata
    if meta["kind"] == "choice":
        return list(meta["choices"])
    if meta["kind"] == "bool" and not meta["nullable"]:
        return [False, True]
    values = list(meta["what_if"] or ())
    cross = cost["crossover_requests_per_day"]
    if f.name == "requests_per_day" and cross:
        values += [round(cross * 1.02), round(cross * 0.98)]
    return values


def _distance(current: Any, new: Any) -> float:
    """How far a change goes: numbers by orders of magnitude, anything else one step."""
    if isinstance(current, bool) or isinstance(new, bool) or current is None or new is None:
        return 1.0 if (current is None) == (new is None) else 2.0
    if isinstance(current, (int, float)) and isinstance(new, (int, float)):
        return abs(math.log10((new + 1) / (current + 1)))
    return 1.0


def _what_would_change(s: Scenario, approach: str, cost: Mapping[str, Any], cost_inputs: CostInputs | None,
                       percentiles: Mapping[str, Any]) -> tuple[Change, ...]:
    changes = []
    for f in dataclasses.fields(s):
        current = getattr(s, f.name)
        best: tuple[float, Change] | None = None
        for value in _candidates(s, f, cost):
            if value == current:
                continue
            try:
                other = _decide(s.replace(**{f.name: value}), cost_inputs, percentiles)["approach"]
            except RagftError:
                continue
            if other != approach:
                d = _distance(current, value)
                if best is None or d < best[0]:
                    best = (d, Change(f.name, current, value, other))
        if best:
            changes.append(best[1])
    return tuple(changes)


def recommend(
    scenario: Scenario | Mapping[str, Any],
    *,
    cost_inputs: CostInputs | Mapping[str, Any] | None = None,
    latency: Any = None,
    explain_changes: bool = True,
) -> Recommendation:
    """Recommend ``"rag"``, ``"fine-tune"`` or ``"hybrid"`` for a scenario, with reasons.

    ``cost_inputs`` (a :class:`~ragft_lib.cost.CostInputs` or a mapping of its fields) replaces
    the default prices (its volume, knowledge cadence and hosting are taken from the scenario);
    ``latency`` is a :class:`~ragft_lib.latency.LatencyReport` or a
    ``{approach: {"p50", "p95", "p99"}}`` mapping in ms (default:
    :data:`~ragft_lib.latency.DEFAULT_PERCENTILES_MS`). ``explain_changes=False`` skips the search
    for the changes that would flip the verdict.

    >>> recommend({"stage": "production", "style_transfer": True, "labeled_examples": 5000,
    ...            "knowledge_update_days": None}).approach
    'fine-tune'
    """
    s = scenario if isinstance(scenario, Scenario) else Scenario.from_dict(scenario)
    if cost_inputs is not None:
        cost_inputs = as_cost_inputs(cost_inputs, "cost_inputs")
    percentiles = getattr(latency, "percentiles_ms", latency) or DEFAULT_PERCENTILES_MS
    missing = [a for a in APPROACHES if a not in percentiles or "p95" not in percentiles[a]]
    if missing:
        raise DataError(f"latency percentiles lack p95 for {', '.join(missing)}")
    d = _decide(s, cost_inputs, percentiles)
    changes = _what_would_change(s, d["approach"], d["cost"], cost_inputs, percentiles) if explain_changes else ()
    return Recommendation(scenario=s, what_would_change=changes, **d)


# ------------------------------------------------------------------------------------------
# Tables, sweeps and a form for chapters and notebooks (pandas / ipywidgets imported when called)
# ------------------------------------------------------------------------------------------

#: Every rule as a row (dimension, when it applies, favours, weight, a scenario change that
#: triggers it). The triggers are checked by ``tests/test_decision.py`` against :func:`recommend`
#: run on :data:`RULE_BASE` plus the change, so the table cannot drift from the code.
RULES: tuple[tuple[str, str, str, str, Mapping[str, Any]], ...] = (
    ("stage", "stage is prototype", "rag", "3 (decides)", {"stage": "prototype"}),
    ("training data", f"labeled_examples < {MIN_LABELED_EXAMPLES}", "rag", "3 (rules fine-tuning out)",
     {"labeled_examples": 0}),
    ("knowledge freshness", f"knowledge_update_days <= {FRESH_DAYS} (weight 2 if <= {VERY_FRESH_DAYS})", "rag",
     "1 or 2", {"knowledge_update_days": 1}),
    ("knowledge base size",
     f"kb_documents >= {LARGE_KB_DOCUMENTS:,} (weight 2 if >= {VERY_LARGE_KB_DOCUMENTS:,})", "rag", "1 or 2",
     {"kb_documents": VERY_LARGE_KB_DOCUMENTS}),
    *((dim, f"{field} is true", fav, str(w), {field: True}) for field, dim, fav, w, _ in FLAG_RULES),
    ("measured quality", "rag_quality_sufficient is true", "rag", "2", {"rag_quality_sufficient": True}),
    ("measured quality", f"rag_quality_sufficient is false and labeled_examples >= {MIN_LABELED_EXAMPLES}",
     "fine-tune", "2", {"rag_quality_sufficient": False}),
    ("cost at volume", "fine-tuning's monthly cost is below RAG's at requests_per_day (weight 2 with "
     f">= {CLEAN_LABELED_EXAMPLES:,} labels)", "fine-tune", "1 or 2", {"requests_per_day": 10_000_000}),
    ("cost at volume", "RAG's monthly cost is at most fine-tuning's", "rag", "1", {"requests_per_day": 100}),
    ("latency", "only the fine-tuned model meets latency_p95_slo_ms", "fine-tune", "2",
     {"latency_p95_slo_ms": 2_000}),
    ("combination", "a facts need (freshness, citations, audit, KB size) meets a behaviour need "
     "(format, vocabulary, style)", "hybrid", "3 (decides)", {"knowledge_update_days": 1, "strict_format": True}),
)
#: The scenario the triggers in :data:`RULES` are applied to: production, static knowledge, a
#: small knowledge base, enough clean labels, nothing else asked for.
RULE_BASE: Mapping[str, Any] = {"stage": "production", "knowledge_update_days": None, "kb_documents": 500,
                                "labeled_examples": 2_000, "requests_per_day": 5_000}


def rules_frame() -> Any:
    """The rules of :func:`recommend` as a DataFrame (one row per rule; see :data:`RULES`).

    Columns: ``dimension``, ``when``, ``favours``, ``weight``, ``why`` (the reason text of the
    yes/no needs, from :data:`FLAG_RULES`), ``example`` (the scenario change that triggers it).

    >>> f = rules_frame()
    >>> sorted(set(f["favours"]))
    ['fine-tune', 'hybrid', 'rag']
    """
    import pandas as pd

    why = {dim: text for _, dim, _, _, text in FLAG_RULES}
    return pd.DataFrame([
        {"dimension": dim, "when": when, "favours": fav, "weight": w, "why": why.get(dim, ""),
         "example": ", ".join(f"{k}={_fmt(v)}" for k, v in trigger.items())}
        for dim, when, fav, w, trigger in RULES])


_SCENARIO_SUFFIXES = (".json", ".yaml", ".yml")


def examples_dir() -> Path:
    """Folder of the example scenario files that come with ragft_lib.

    ``ragft_lib/examples`` inside an installed wheel, ``examples/`` beside the package in a
    source checkout (the same files: the wheel is built from that folder).

    >>> (examples_dir() / "support_bot_prototype.yaml").is_file()
    True
    """
    package = Path(__file__).resolve().parent
    for folder in (package / "examples", package.parent / "examples"):
        if folder.is_dir() and any(p.suffix in _SCENARIO_SUFFIXES for p in folder.iterdir()):
            return folder
    raise DataError(f"the example scenarios are missing: neither {package / 'examples'} nor "
                    f"{package.parent / 'examples'} exists (reinstall ragft_lib)")


def find_scenario_file(name: str | Path) -> Path:
    """``name`` if it is a file, else the bundled example of that name (see :func:`examples_dir`).

    ``support_bot_prototype``, ``support_bot_prototype.yaml`` and
    ``examples/support_bot_prototype.yaml`` all find the same example from any folder.

    >>> find_scenario_file("support_bot_prototype").name
    'support_bot_prototype.yaml'
    """
    path = Path(name)
    if path.is_file():
        return path
    try:
        folder = examples_dir()
    except DataError:
        raise DataError(f"{name}: no such file") from None
    bundled = sorted(p for p in folder.iterdir() if p.suffix in _SCENARIO_SUFFIXES)
    for p in bundled:
        if path.name in (p.name, p.stem):
            return p
    raise DataError(f"{name}: no such file, and no example scenario of that name "
                    f"(examples: {', '.join(p.stem for p in bundled)})")


def load_scenarios(folder: str | Path, pattern: str = "*") -> dict[str, Scenario]:
    """Every ``.json``/``.yaml``/``.yml`` scenario file in ``folder``, by file stem, sorted by name.

    >>> sorted(load_scenarios("examples"))[:2]             # doctest: +SKIP
    ['clinical_guidelines_assistant', 'daily_facts_strict_format']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    return {p.stem: Scenario.from_file(p) for p in sorted(folder.glob(pattern))
            if p.suffix.lower() in (".json", ".yaml", ".yml")}


def main_reasons(rec: Recommendation, top: int = 3) -> list[str]:
    """The strongest reasons behind the verdict, as ``"dimension (weight)"``, strongest first.

    Reasons favouring the verdict count; for a hybrid, also the facts and behaviour needs (and a
    measured quality gap) it combines. Ties keep the order of :attr:`Recommendation.reasons`.

    >>> main_reasons(recommend(Scenario(stage="prototype"), explain_changes=False))
    ['stage (3)', 'training data (3)', 'knowledge freshness (1)']
    """
    pro = [r for r in rec.reasons if _supports(r, rec.approach) and r.weight > 0]
    pro.sort(key=lambda r: -r.weight)
    names = list(dict.fromkeys(f"{r.dimension} ({r.weight})" for r in pro))
    return names[:top]


def _supports(reason: Reason, approach: str) -> bool:
    """Whether ``reason`` argues for ``approach`` (a hybrid is argued for by the needs it combines)."""
    if reason.favours == approach:
        return True
    combined = FACT_DIMENSIONS + BEHAVIOUR_DIMENSIONS + ("measured quality",)
    return approach == "hybrid" and reason.dimension in combined


def verdicts_frame(scenarios: Mapping[str, Scenario | Mapping[str, Any]], **recommend_kwargs: Any) -> Any:
    """Run :func:`recommend` on named scenarios; one row each (a DataFrame indexed by name).

    Columns: ``verdict``, ``nearest change`` (the first of "what would change the verdict"),
    ``main reasons`` (:func:`main_reasons`), ``against`` (dimensions that argue for another approach
    and were outweighed), ``monthly USD`` (of the verdict) and ``crossover requests/day`` (``None`` = never).

    >>> verdicts_frame({"proto": Scenario(stage="prototype")}).loc["proto", "verdict"]
    'rag'
    """
    import pandas as pd

    rows = {}
    for name, s in scenarios.items():
        rec = recommend(s, **recommend_kwargs)
        against = dict.fromkeys(r.dimension for r in rec.reasons
                                if not _supports(r, rec.approach) and r.weight > 0)
        nearest = min(rec.what_would_change, key=lambda c: _distance(c.current, c.new), default=None)
        rows[name] = {  # the deciding columns first: a narrow page shows them without scrolling
            "verdict": rec.approach,
            "nearest change": str(nearest) if nearest else "-",
            "main reasons": ", ".join(main_reasons(rec)),
            "against": ", ".join(against) or "-",
            "monthly USD": round(rec.cost["monthly_usd"][rec.approach]),
            "crossover requests/day": (None if rec.cost["crossover_requests_per_day"] is None
                                       else round(rec.cost["crossover_requests_per_day"])),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def sweep(scenario: Scenario | Mapping[str, Any], field: str, values: Any, **recommend_kwargs: Any) -> list[dict[str, Any]]:
    """The verdict as one field of ``scenario`` takes each of ``values`` (standard library only).

    Returns one dict per value: ``{field: value, "approach": ..., "summary": ...}``; a value the
    scenario rejects raises :class:`~ragft_lib.errors.ConfigError` naming the field.

    >>> s = Scenario(labeled_examples=2000, knowledge_update_days=None)
    >>> [r["approach"] for r in sweep(s, "strict_format", [False, True])]
    ['rag', 'fine-tune']
    """
    s = scenario if isinstance(scenario, Scenario) else Scenario.from_dict(scenario)
    if field not in {f.name for f in dataclasses.fields(Scenario)}:
        raise DataError(f"unknown field of Scenario: {field!r}")
    recommend_kwargs.setdefault("explain_changes", False)
    out = []
    for v in values:
        rec = recommend(s.replace(**{field: v}), **recommend_kwargs)
        out.append({field: v, "approach": rec.approach, "summary": rec.summary})
    return out


def verdict_map(scenario: Scenario | Mapping[str, Any], x_field: str, x_values: Any, y_field: str,
                y_values: Any, **recommend_kwargs: Any) -> Any:
    """The verdict over a grid of two fields (a DataFrame: rows ``y_values``, columns ``x_values``).

    Each cell is :func:`recommend` on ``scenario`` with both fields replaced; draw it with
    :func:`plot_verdict_map`.

    >>> m = verdict_map(Scenario(labeled_examples=2000, knowledge_update_days=None),
    ...                 "requests_per_day", [1e3, 1e7], "strict_format", [False, True])
    >>> m.loc[True, 1e3], m.loc[False, 1e7]
    ('fine-tune', 'fine-tune')
    """
    import pandas as pd

    s = scenario if isinstance(scenario, Scenario) else Scenario.from_dict(scenario)
    cells = {y: [r["approach"] for r in sweep(s.replace(**{y_field: y}), x_field, x_values, **recommend_kwargs)]
             for y in y_values}
    frame = pd.DataFrame(list(cells.values()), index=pd.Index(list(y_values), dtype=object, name=y_field),
                         columns=pd.Index(list(x_values), dtype=object, name=x_field))
    return frame


def plot_verdict_map(frame: Any, ax: Any = None, title: str | None = None) -> Any:
    """Draw a :func:`verdict_map` as coloured cells labelled with the verdict.

    >>> ax = plot_verdict_map(verdict_map(Scenario(), "stage", ["prototype"], "regulated", [True]))  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 * frame.shape[1] + 2.5, 0.5 * frame.shape[0] + 1.5))
    codes = frame.apply(lambda col: col.map(APPROACHES.index)).to_numpy(dtype=float)
    ax.imshow(codes, cmap=ListedColormap([COLOURS[a] for a in APPROACHES]), vmin=-0.5, vmax=2.5, aspect="auto")
    for (i, j), v in _enumerate2(frame.to_numpy()):
        ax.text(j, i, v, ha="center", va="center", color="white", fontsize=10)
    ax.set_xticks(range(frame.shape[1]), [_fmt(v) for v in frame.columns], fontsize=10)
    ax.set_yticks(range(frame.shape[0]), [_fmt(v) for v in frame.index], fontsize=10)
    ax.set(xlabel=frame.columns.name, ylabel=frame.index.name, title=title or "Verdict of recommend()")
    return ax


def _enumerate2(rows: Any) -> Any:
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            yield (i, j), v


class ScenarioForm:
    """An ipywidgets form with one input per :class:`Scenario` field, generated from its metadata.

    Built by :func:`form`. ``scenario()`` reads the inputs into a validated :class:`Scenario`;
    ``submit()`` (the button) shows the report of :func:`recommend`, or the library's error
    message naming the field. Displaying the object displays its widget.
    """

    # Dropdown values are strings: ipywidgets reads a value of None as "nothing selected".
    _NULL_BOOL = (("not measured", "none"), ("yes", "yes"), ("no", "no"))
    _NULL_BOOL_VALUE = {"none": None, "yes": True, "no": False}

    def __init__(self, scenario: Scenario | None = None, **recommend_kwargs: Any) -> None:
        import ipywidgets as w

        s = scenario or Scenario()
        self.recommend_kwargs = recommend_kwargs
        style, layout = {"description_width": "300px"}, w.Layout(width="620px")
        self.inputs: dict[str, Any] = {}
        rows = []
        for spec_ in Scenario.field_specs():
            name, kind, value = spec_["name"], spec_["kind"], getattr(s, spec_["name"])
            label = spec_["label"] + (f" ({spec_['unit']})" if spec_["unit"] else "")
            common = {"description": label, "style": style, "layout": layout, "tooltip": spec_["help"]}
            if kind == "choice":
                widget = w.Dropdown(options=spec_["choices"], value=value, **common)
            elif kind == "bool" and spec_["nullable"]:
                widget = w.Dropdown(options=list(self._NULL_BOOL),
                                    value={None: "none", True: "yes", False: "no"}[value], **common)
            elif kind == "bool":
                widget = w.Checkbox(value=value, indent=True, **common)
            else:  # numbers as text: empty means None for nullable fields; errors come from Scenario
                widget = w.Text(value="" if value is None else _fmt_plain(value),
                                placeholder=spec_["null_means"] or "", **common)
            self.inputs[name] = widget
            rows.append(widget)
        self.button = w.Button(description="Recommend", button_style="primary")
        self.button.on_click(lambda _b: self.submit())
        self.error = w.HTML()
        self.output = w.Output()
        self.widget = w.VBox([w.HTML("<b>Your scenario</b> (hover a label for its meaning)"), *rows,
                              self.button, self.error, self.output])
        self.submit()

    def scenario(self) -> Scenario:
        """The inputs as a validated :class:`Scenario` (raises :class:`~ragft_lib.errors.ConfigError` naming the field)."""
        data: dict[str, Any] = {}
        for spec_ in Scenario.field_specs():
            value = self.inputs[spec_["name"]].value
            if spec_["kind"] == "bool" and spec_["nullable"]:
                value = self._NULL_BOOL_VALUE[value]
            elif spec_["kind"] in ("float", "int"):
                text = str(value).strip().replace(",", "").replace("_", "")
                value = None if text == "" and spec_["nullable"] else _number(spec_["name"], text, spec_["kind"])
            data[spec_["name"]] = value
        return Scenario.from_dict(data)

    def submit(self) -> Recommendation | None:
        """Run :func:`recommend` on the form and show its report; returns it (``None`` on an error)."""
        try:
            rec = recommend(self.scenario(), **self.recommend_kwargs)
        except RagftError as err:
            self.error.value = f'<span style="color:#b00">{html.escape(str(err))}</span>'
            return None
        self.error.value = ""
        # Set the output widget's content directly: works in a kernel, in tests, and is saved in
        # the notebook's widget state for the static page.
        self.output.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"text/html": rec.to_html(), "text/plain": rec.to_markdown()}},)
        return rec

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        from .display import kernel_only, static_page

        if static_page():  # the HTML book: a frozen form would look live and do nothing
            return kernel_only("A form with one input per scenario field and a Recommend button",
                               "In the HTML book, the live decision form runs the same code in your browser.")
        return self.widget._repr_mimebundle_(**kwargs)


def _fmt_plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(name: str, text: str, kind: str) -> float | int:
    from .errors import ConfigError

    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"must be a number, got {text!r}", field=name) from None
    return int(value) if kind == "int" and value.is_integer() else value


def form(scenario: Scenario | None = None, **recommend_kwargs: Any) -> ScenarioForm:
    """An interactive form (ipywidgets) that fills a :class:`Scenario` and shows its report.

    One input per field, generated from :meth:`Scenario.field_specs` (labels, units, help as
    tooltips); a button runs :func:`recommend` (``recommend_kwargs`` are passed on) and shows
    :meth:`Recommendation.to_html`. Live in Jupyter/Colab; a static HTML page shows the report of
    the scenario it was built with.

    >>> f = form(Scenario(stage="prototype"))                   # doctest: +SKIP
    >>> f.inputs["stage"].value = "production"; f.submit().approach   # doctest: +SKIP
    'rag'
    """
    return ScenarioForm(scenario, **recommend_kwargs)
