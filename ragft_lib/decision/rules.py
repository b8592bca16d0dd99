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
jargon, style transfer, and clean labels with cost at scale favour fine-tuning; a prototype
starts with RAG; format / style / vocabulary needs that meet changing or cited facts give a
hybrid. Measurement comes before rules of thumb: a fine-tuned model measured on held-out questions
replaces the label-count gate (fewer than ``min_labeled_examples`` labels and nothing measured
rule fine-tuning out), and few-shot prompting measured good enough, with no facts to retrieve,
gives ``"prompt"``. A cost saving counts by its size: its share of the dearer bill and its dollars
a month (:class:`~ragft_lib.decision.thresholds.DecisionThresholds`; every threshold names its
source). Conflicts are named in the reasons. "What would change the verdict" re-runs ``recommend`` on scenarios with
one field changed and keeps, for each field, the nearest value that flips it.

Standard library only (runs in the browser on Pyodide): it calls the scalar cost model and the
stored default latency percentiles (simulated), or the percentiles it is given.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from ..cost import PRICES_AS_OF, CostInputs, as_cost_inputs, break_even, costs, crossover
from ..errors import ConfigError, DataError, RagftError
from ..latency import DEFAULT_PERCENTILES_MS, sla_check
from ..vocabulary import APPROACHES, PROMPT_ONLY, TRAINED_OR_RETRIEVED
from .scenario import Change, Reason, Recommendation, Scenario, every_days
from .thresholds import DecisionThresholds

__all__ = ["FLAG_RULES", "LATENCY_KINDS", "saving_weight", "change_distance", "recommend"]

#: What the latency percentiles given to ``recommend`` are.
LATENCY_KINDS = ("simulated", "measured", "given")


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


def _facts_rules(s: Scenario, t: DecisionThresholds) -> tuple[list[Reason], list[str]]:
    reasons, notes = [], []
    d = s.knowledge_update_days
    if d is None:
        notes.append("The knowledge is static: it can live in weights or in an index; other needs decide.")
    elif d <= t.fresh_days:
        per_month = 365.25 / 12 / d
        reasons.append(Reason(
            "knowledge freshness", "rag",
            f"The knowledge changes {every_days(d)}: RAG serves a change as soon as the document is "
            f"indexed, while a fine-tuned model needs a retraining per change (~{per_month:,.1f} a month).",
            2 if d <= t.very_fresh_days else 1))
    else:
        notes.append(f"The knowledge changes only {every_days(d)}: retraining that often is affordable.")
    reasons += [Reason(dim, favours, why, w) for f, dim, favours, w, why in FLAG_RULES
                if favours == "rag" and getattr(s, f)]
    if s.kb_documents >= t.large_kb_documents:
        reasons.append(Reason(
            "knowledge base size", "rag",
            f"{s.kb_documents:,} documents are more facts than a model can reliably memorise; an index "
            "scales with them.", 2 if s.kb_documents >= t.very_large_kb_documents else 1))
    return reasons, notes


def _behaviour_rules(s: Scenario) -> list[Reason]:
    return [Reason(dim, favours, why, w) for f, dim, favours, w, why in FLAG_RULES
            if favours == "fine-tune" and getattr(s, f)]


def _data_rules(s: Scenario, t: DecisionThresholds) -> tuple[list[Reason], list[str], str | None]:
    """Reasons from labels and measured quality, notes, and why fine-tuning is ruled out (``None``: it is not).

    A measured fine-tuned quality replaces the label-count gate, which is only a rule of thumb.
    """
    reasons, notes, ruled_out = [], [], None
    ft, rag = s.finetune_quality_sufficient, s.rag_quality_sufficient
    if ft is False:
        reasons.append(Reason(
            "measured quality", "rag",
            f"A fine-tuned model trained on {s.labeled_examples:,} labeled examples was measured insufficient on "
            "held-out questions: fine-tuning is ruled out until a better one measures sufficient.", 3))
        ruled_out = "the fine-tuned model was measured insufficient"
    elif ft is True and rag is not True:
        reasons.append(Reason(
            "measured quality", "fine-tune",
            f"A fine-tuned model trained on {s.labeled_examples:,} labeled examples was measured good enough on "
            f"held-out questions; the measurement replaces the rule of thumb of {t.min_labeled_examples:,} labels "
            "(this book's assumption).", 2))
    elif ft is None and s.labeled_examples < t.min_labeled_examples:
        reasons.append(Reason(
            "training data", "rag",
            f"Only {s.labeled_examples:,} labeled examples and no measured fine-tuned quality: below "
            f"{t.min_labeled_examples:,} (this book's rule of thumb, not a measured limit) fine-tuning is not "
            "tried; train an adapter and measure it on held-out questions to replace this rule.", 3))
        ruled_out = f"fewer than {t.min_labeled_examples:,} labeled examples and no measured fine-tuned quality"
    if rag is True and ft is True:
        notes.append("RAG and the fine-tuned model were both measured sufficient: quality does not separate "
                     "them; cost and the other needs decide.")
    elif rag is True:
        reasons.append(Reason(
            "measured quality", "rag",
            "RAG's measured quality is sufficient: there is nothing for fine-tuning to fix.", 2))
    elif rag is False:
        if ruled_out is None:
            reasons.append(Reason(
                "measured quality", "fine-tune",
                f"RAG's measured quality is insufficient and {s.labeled_examples:,} labeled examples are "
                "available to train on.", 2))
        else:
            notes.append(f"RAG measured insufficient, but {ruled_out}: improve retrieval (chunking, hybrid "
                         "search, reranking) and collect labeled examples.")
    else:
        notes.append("RAG quality not measured: measure a RAG baseline on held-out questions before "
                     "deciding to fine-tune.")
    return reasons, notes, ruled_out


def saving_weight(cheaper_usd: float, dearer_usd: float, t: DecisionThresholds | None = None) -> int:
    """How much a monthly saving counts, by its size: 0 (negligible), 1, 2 (material) or 3 (large).

    A saving counts 0 below ``cost_usd_minor`` dollars or ``cost_share_minor`` of the dearer bill,
    2 from ``cost_share_material`` *and* ``cost_usd_material`` dollars, 3 from ``cost_share_strong``
    *and* ``cost_usd_strong`` dollars, 1 otherwise.

    >>> saving_weight(633_352, 956_173), saving_weight(9_000, 12_000), saving_weight(900, 1_100), saving_weight(990, 1_000)
    (3, 2, 1, 0)
    """
    t = t or DecisionThresholds()
    saving = dearer_usd - cheaper_usd
    share = saving / dearer_usd if dearer_usd > 0 else 0.0
    if saving < t.cost_usd_minor or share < t.cost_share_minor:
        return 0
    if share >= t.cost_share_strong and saving >= t.cost_usd_strong:
        return 3
    return 2 if share >= t.cost_share_material and saving >= t.cost_usd_material else 1


def _cost_rule(s: Scenario, cost: Mapping[str, Any], t: DecisionThresholds,
               ruled_out: str | None) -> tuple[list[Reason], list[str]]:
    m = cost["monthly_usd"]
    ft, rag = m["fine-tune"], m["rag"]
    cheaper, dearer = ("fine-tune", "rag") if ft < rag else ("rag", "fine-tune")
    lo, hi = min(ft, rag), max(ft, rag)
    saving = hi - lo
    w = saving_weight(lo, hi, t)
    size = f"${saving:,.0f}/month, {saving / hi:.0%} of {dearer}'s bill" if hi > 0 else "nothing"
    if w == 0:
        return [], [f"Cost does not decide: {cheaper} saves only {size} at {s.requests_per_day:,.0f} requests/day."]
    if cheaper == "fine-tune":
        if ruled_out:
            return [], [f"Fine-tuning would save {size}, but {ruled_out}."]
        proven = s.finetune_quality_sufficient is True or s.labeled_examples >= t.clean_labeled_examples
        if not proven:
            w = min(w, 1)
        return [Reason(
            "cost at volume", "fine-tune",
            f"At {s.requests_per_day:,.0f} requests/day fine-tuning costs ${ft:,.0f}/month against RAG's "
            f"${rag:,.0f} (retraining included): it saves {size}"
            + ("." if proven else f", but with fewer than {t.clean_labeled_examples:,} labels and no measured "
                                  "fine-tuned quality the saving counts only as a factor."), w)], []
    return [Reason(
        "cost at volume", "rag",
        f"At {s.requests_per_day:,.0f} requests/day RAG costs ${rag:,.0f}/month against fine-tuning's "
        f"${ft:,.0f} (training and retraining included): it saves {size}.", w)], []


def _latency_rule(s: Scenario, latency: Mapping[str, Any]) -> tuple[list[Reason], list[str]]:
    if s.latency_p95_slo_ms is None:
        return [], []
    meets, p95 = latency["meets"], {a: v["p95"] for a, v in latency["percentiles_ms"].items()}
    target = f"the p95 target of {s.latency_p95_slo_ms:,.0f} ms"
    kind = latency.get("kind", "simulated")
    if meets["fine-tune"] and not meets["rag"] and not meets["hybrid"]:
        return [Reason(
            "latency", "fine-tune",
            f"Retrieval and the longer prompt put RAG's {kind} p95 at {p95['rag']:,.0f} ms, over {target}; the "
            f"fine-tuned model answers at p95 {p95['fine-tune']:,.0f} ms.", 2)], []
    if not any(meets.values()):
        return [], [f"No approach meets {target} (fine-tuned {kind} p95 {p95['fine-tune']:,.0f} ms): generation "
                    "itself is too slow; use a smaller model, shorter answers or streaming."]
    return [], [f"Latency is not a constraint: {', '.join(a for a, ok in meets.items() if ok)} meet {target}."]


def _cost_summary(s: Scenario, base: CostInputs | None) -> dict[str, Any]:
    inputs = (base or CostInputs()).replace(
        requests_per_day=s.requests_per_day, knowledge_update_days=s.knowledge_update_days, hosting=s.hosting)
    c = crossover(inputs)
    b = break_even(inputs)
    return {
        "requests_per_day": s.requests_per_day,
        "hosting": s.hosting,
        "prices_as_of": PRICES_AS_OF,
        "monthly_usd": {a: v["monthly_usd"] for a, v in costs(inputs).items()},
        "crossover_requests_per_day": c.requests_per_day,
        "crossover_method": c.method,
        "crossover_text": str(c),
        "break_even_month": b.month,
        "break_even_text": str(b),
    }


def _latency_summary(s: Scenario, percentiles: Mapping[str, Mapping[str, float]], kind: str) -> dict[str, Any]:
    shown = {a: dict(percentiles[a]) for a in APPROACHES if a in percentiles}
    return {
        "kind": kind,
        "p95_slo_ms": s.latency_p95_slo_ms,
        "percentiles_ms": shown,
        "meets": sla_check(shown, p95_ms=s.latency_p95_slo_ms),
    }


def _decide(s: Scenario, cost_inputs: CostInputs | None, percentiles: Mapping[str, Any], t: DecisionThresholds,
            latency_kind: str) -> dict[str, Any]:
    cost = _cost_summary(s, cost_inputs)
    latency = _latency_summary(s, percentiles, latency_kind)
    facts, notes = _facts_rules(s, t)
    behaviour = _behaviour_rules(s)
    data, data_notes, ruled_out = _data_rules(s, t)
    cost_reasons, cost_notes = _cost_rule(s, cost, t, ruled_out)
    lat_reasons, lat_notes = _latency_rule(s, latency)
    reasons = facts + behaviour + data + cost_reasons + lat_reasons
    notes += data_notes + cost_notes + lat_notes
    if s.stage == "prototype":
        reasons.insert(0, Reason(
            "stage", "rag",
            "Prototype: start with RAG. A new document changes an answer in seconds, a retraining takes "
            "hours; measure RAG's quality first, then decide what fine-tuning must fix.", 3))
    m = cost["monthly_usd"]
    prompt_ok = s.prompt_quality_sufficient is True and not facts
    if prompt_ok:
        reasons.append(Reason(
            "measured quality", PROMPT_ONLY,
            f"Few-shot prompting of the base model was measured good enough and no facts need retrieval: no "
            f"index and no training to run (${m[PROMPT_ONLY]:,.0f}/month).", 3))
    elif s.prompt_quality_sufficient is True:
        notes.append("Few-shot prompting measured good enough, but the facts needs above call for retrieval.")

    weight = {a: sum(r.weight for r in reasons if r.favours == a) for a in APPROACHES}
    hard_rag = s.needs_citations or s.regulated
    latency_needs_ft = bool(lat_reasons)
    if s.stage == "prototype":
        approach, why = "rag", "a prototype starts with RAG"
    elif prompt_ok and saving_weight(m["rag"] if ruled_out else min(m["fine-tune"], m["rag"]), m[PROMPT_ONLY], t) < 3:
        # prompt-only stands unless an approach still available saves decisively against it
        approach, why = PROMPT_ONLY, "few-shot prompting was measured good enough and nothing needs retrieval"
    elif ruled_out:
        approach, why = "rag", ruled_out + " rule fine-tuning out"
    elif facts and behaviour:
        if latency_needs_ft and not hard_rag and weight["fine-tune"] > weight["rag"]:
            approach, why = "fine-tune", "the latency target and behaviour needs outweigh the facts needs"
        else:
            approach, why = "hybrid", "behaviour needs meet facts that change or must be cited"
    elif facts and s.rag_quality_sufficient is False:
        approach, why = "hybrid", "RAG alone measured insufficient, and the facts still need retrieval"
    elif weight["fine-tune"] > weight["rag"]:
        approach, why = "fine-tune", "the needs favouring fine-tuning, the size of its saving included, are stronger"
    elif weight["rag"] == 0 and weight["fine-tune"] == 0:
        approach, why = "rag", "nothing favours fine-tuning, and RAG is the cheaper system to change"
        reasons.append(Reason("default", "rag", "No need favours fine-tuning; RAG is quicker to build and "
                                                "to change, so start there.", 1))
    else:
        approach, why = "rag", "the needs favouring RAG, the size of any saving included, are at least as strong"

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
        # a saving counts by its size, so the verdict may flip well past the crossover
        values += [round(cross * m) for m in (0.98, 1.02, 1.5, 2, 3, 5, 10, 30)]
    return values


def change_distance(current: Any, new: Any) -> float:
    """How far a change goes: numbers by orders of magnitude, anything else one step.

    >>> change_distance(1_000, 100_000) > change_distance(False, True)
    True
    """
    if isinstance(current, bool) or isinstance(new, bool) or current is None or new is None:
        return 1.0 if (current is None) == (new is None) else 2.0
    if isinstance(current, (int, float)) and isinstance(new, (int, float)):
        return abs(math.log10((new + 1) / (current + 1)))
    return 1.0


def _what_would_change(s: Scenario, approach: str, cost: Mapping[str, Any], cost_inputs: CostInputs | None,
                       percentiles: Mapping[str, Any], t: DecisionThresholds, kind: str) -> tuple[Change, ...]:
    changes = []
    for f in dataclasses.fields(s):
        current = getattr(s, f.name)
        best: tuple[float, Change] | None = None
        for value in _candidates(s, f, cost):
            if value == current:
                continue
            try:
                other = _decide(s.replace(**{f.name: value}), cost_inputs, percentiles, t, kind)["approach"]
            except RagftError:
                continue
            if other != approach:
                d = change_distance(current, value)
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
    latency_kind: str | None = None,
    thresholds: DecisionThresholds | Mapping[str, Any] | None = None,
    explain_changes: bool = True,
) -> Recommendation:
    """Recommend ``"rag"``, ``"fine-tune"``, ``"hybrid"`` or ``"prompt"`` for a scenario, with reasons.

    ``cost_inputs`` (a :class:`~ragft_lib.cost.CostInputs` or a mapping of its fields) replaces
    the default prices (its volume, knowledge cadence and hosting are taken from the scenario);
    ``latency`` is a :class:`~ragft_lib.latency.LatencyReport` or a
    ``{approach: {"p50", "p95", "p99"}}`` mapping in ms (default: the simulated
    :data:`~ragft_lib.latency.DEFAULT_PERCENTILES_MS`); ``latency_kind`` says what those are
    (``LATENCY_KINDS``; default ``"simulated"`` for the defaults, ``"given"`` otherwise).
    ``thresholds`` replaces the :class:`~ragft_lib.decision.thresholds.DecisionThresholds`.
    ``explain_changes=False`` skips the search for the changes that would flip the verdict.

    >>> recommend({"stage": "production", "style_transfer": True, "labeled_examples": 5000,
    ...            "knowledge_update_days": None}).approach
    'fine-tune'
    >>> big = {"knowledge_update_days": None, "labeled_examples": 5000, "rag_quality_sufficient": True}
    >>> recommend({**big, "requests_per_day": 20e6}).approach, recommend({**big, "requests_per_day": 2000}).approach
    ('fine-tune', 'rag')
    """
    s = scenario if isinstance(scenario, Scenario) else Scenario.from_dict(scenario)
    if cost_inputs is not None:
        cost_inputs = as_cost_inputs(cost_inputs, "cost_inputs")
    if thresholds is None:
        t = DecisionThresholds()
    elif isinstance(thresholds, DecisionThresholds):
        t = thresholds
    elif isinstance(thresholds, Mapping):
        t = DecisionThresholds.from_dict(thresholds, source="thresholds")
    else:
        raise ConfigError(f"must be DecisionThresholds or a mapping, got {type(thresholds).__name__}", field="thresholds")
    percentiles = getattr(latency, "percentiles_ms", latency) or DEFAULT_PERCENTILES_MS
    kind = latency_kind or ("simulated" if latency is None else "given")
    if kind not in LATENCY_KINDS:
        raise ConfigError(f"must be one of {', '.join(LATENCY_KINDS)}, got {kind!r}", field="latency_kind")
    missing = [a for a in TRAINED_OR_RETRIEVED if a not in percentiles or "p95" not in percentiles[a]]
    if missing:
        raise DataError(f"latency percentiles lack p95 for {', '.join(missing)}")
    d = _decide(s, cost_inputs, percentiles, t, kind)
    changes = (_what_would_change(s, d["approach"], d["cost"], cost_inputs, percentiles, t, kind)
               if explain_changes else ())
    return Recommendation(scenario=s, what_would_change=changes, **d)
