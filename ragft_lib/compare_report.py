"""What ``ragft compare`` can and cannot conclude, where each input came from, and the report itself.

:func:`assess` says whether the measured answer quality separates the approaches: it is
**inconclusive** on a floor effect (every approach at or below ``floor``), a ceiling effect (every
approach at or above ``ceiling``), too few questions, or when every paired 95 % interval of a
difference (:func:`ragft_lib.evaluate.paired_compare`) includes 0; each reason comes with what
would make the run decisive. :func:`input_rows` marks every input of the verdict as *measured*,
*given* by the user or *assumed*, and :func:`render_markdown` writes ``report.md``.

>>> a = assess({"closed-book": [0] * 6, "rag": [0] * 6}, generator="SmolLM2-135M", floor=0.1)
>>> a["conclusive"], a["reasons"][0].split(":")[0]
(False, 'Floor effect')
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

__all__ = ["PAIRS", "assess", "machine_load", "load_warning", "input_rows", "render_markdown"]

#: The paired differences that bear on the verdict — (a, b) means "does a beat b".
PAIRS: tuple[tuple[str, str], ...] = (("rag", "closed-book"), ("lora", "closed-book"), ("lora", "rag"),
                                      ("lora+rag", "rag"))


def _needed(n: int, difference: float, ci: Sequence[float]) -> int | None:
    """Questions that would separate a difference of this size: the interval shrinks as 1/sqrt(n)."""
    half = (ci[1] - ci[0]) / 2
    if difference == 0 or half <= 0:
        return None
    return int(math.ceil(n * (half / abs(difference)) ** 2))


def assess(scores: Mapping[str, Sequence[float]], *, generator: str, floor: float = 0.1, ceiling: float = 0.9,
           min_questions: int = 30, target: float | None = None) -> dict[str, Any]:
    """Whether the per-question scores (0/1, the same questions for every approach) can decide.

    With a quality ``target``, it is also inconclusive when the 95 % (Wilson) interval of RAG's or
    the adapter's accuracy contains the target: the run cannot say whether it is sufficient.

    Returns ``{"conclusive", "reasons", "remedies", "comparisons"}``; ``comparisons`` holds the
    paired comparisons of :data:`PAIRS` that were run (``a``, ``b``, ``difference``, ``ci``,
    ``verdict``, ``n``).

    >>> a = assess({"closed-book": [0, 1] * 20, "rag": [1] * 40}, generator="g")
    >>> a["conclusive"], a["comparisons"][0]["verdict"]
    (True, 'supported')
    """
    from .evaluate import paired_compare

    names = list(scores)
    n = len(next(iter(scores.values()))) if scores else 0
    acc = {k: (sum(v) / len(v) if len(v) else 0.0) for k, v in scores.items()}
    shown = ", ".join(f"{k} {v:.2f}" for k, v in acc.items())
    reasons, remedies = [], []
    if acc and all(v <= floor for v in acc.values()):
        reasons.append(f"Floor effect: every approach scores at most {floor:.2f} ({shown}): the generator "
                       f"({generator}) cannot answer these questions with or without retrieval, so the scores "
                       "say nothing about the approaches.")
        remedies.append("a larger --generator (e.g. a 1-3B instruction-tuned model), or questions whose answers "
                        "are short spans of the documents")
    elif acc and all(v >= ceiling for v in acc.values()):
        reasons.append(f"Ceiling effect: every approach scores at least {ceiling:.2f} ({shown}): the questions are "
                       "too easy to separate them.")
        remedies.append("harder evaluation questions (facts the base model cannot know)")
    if n < min_questions:
        reasons.append(f"Too few questions: {n} evaluation questions, fewer than {min_questions} (this book's "
                       "assumption), give intervals too wide to separate approaches that differ by less than "
                       "about 20 points.")
        remedies.append(f"more evaluation questions (--questions with at least {min_questions}, or more --pairs "
                        "to hold out)")
    if target is not None:
        from .evaluate import wilson_ci

        for name in ("rag", "lora"):
            if name in scores and n:
                est, lo, hi = wilson_ci(scores[name])
                if lo < target < hi:
                    reasons.append(f"Target undecided: {name}'s accuracy {est:.2f} has a 95 % interval "
                                   f"[{lo:.2f}, {hi:.2f}] that contains the quality target {target:.2f}, so the run "
                                   f"cannot say whether {name} is good enough.")
                    remedies.append("more evaluation questions, to narrow the interval")
    comparisons = []
    for a, b in PAIRS:
        if a in scores and b in scores and n:
            c = paired_compare(scores[a], scores[b], a=a, b=b)
            comparisons.append({"a": a, "b": b, "n": c.n, "difference": c.difference, "ci": list(c.ci),
                                "verdict": c.verdict, "needed_n": _needed(c.n, c.difference, c.ci)})
    if comparisons and all(c["verdict"] == "not distinguishable" for c in comparisons):
        parts = "; ".join(f"{c['a']} - {c['b']} {c['difference']:+.2f} [{c['ci'][0]:+.2f}, {c['ci'][1]:+.2f}]"
                          for c in comparisons)
        reasons.append(f"Overlapping intervals: every paired 95 % interval includes 0 ({parts}; n={n}).")
        needed = [c["needed_n"] for c in comparisons if c["needed_n"]]
        if needed:
            remedies.append(f"about {min(needed):,} questions would separate the largest difference measured "
                            "here, if it is real")
    return {"conclusive": not reasons and bool(scores), "reasons": reasons, "remedies": list(dict.fromkeys(remedies)),
            "comparisons": comparisons, "accuracy": acc, "n": n}


def machine_load() -> dict[str, Any]:
    """The 1-minute load average and the CPU count, recorded with every timing.

    >>> sorted(machine_load())
    ['cpus', 'load_1m']
    """
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        load = None
    return {"load_1m": load, "cpus": os.cpu_count() or 1}


def load_warning(loads: Sequence[Mapping[str, Any]]) -> str | None:
    """A warning when the load average exceeded the CPU count while timing (``None``: it did not).

    >>> load_warning([{"load_1m": 5.3, "cpus": 2}])[:40]
    'The machine was busy while timing (load '
    >>> load_warning([{"load_1m": 0.4, "cpus": 2}]) is None
    True
    """
    busy = [x for x in loads if x.get("load_1m") is not None and x["load_1m"] > x["cpus"]]
    if not busy:
        return None
    worst = max(busy, key=lambda x: x["load_1m"])
    return (f"The machine was busy while timing (load average {worst['load_1m']:.1f} on {worst['cpus']} CPUs): "
            "the latencies measured here say more about the other work than about the approaches; rerun on an "
            "idle machine before reading them.")


def input_rows(scenario: Mapping[str, Any], provenance: Mapping[str, tuple[str, str]],
               cost: Any, deciding: Sequence[str]) -> list[dict[str, Any]]:
    """One row per input of the verdict: ``{"input", "value", "provenance", "source", "decides"}``.

    ``provenance`` maps a scenario field to ``(kind, source)``; every other scenario field is
    assumed (its default). ``cost`` is a :class:`~ragft_lib.cost.MeasuredCostInputs`. ``deciding``
    names the inputs whose change would flip the verdict.
    """
    rows = []
    for name, value in scenario.items():
        kind, source = provenance.get(name, ("assumed", "default of Scenario (this book's assumption)"))
        rows.append({"input": name, "value": value, "provenance": kind, "source": source,
                     "decides": name in deciding})
    for r in cost.table():
        if r["input"] in ("requests_per_day", "knowledge_update_days", "hosting"):
            continue  # taken from the scenario
        rows.append({"input": r["input"], "value": r["value"], "provenance": r["provenance"], "source": r["source"],
                     "decides": r["input"] in deciding})
    return rows


def _value(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, float):
        return f"{v:,.6g}"
    return str(v)


def render_markdown(r: Mapping[str, Any], rec: Any) -> str:
    """``report.md``: the verdict (or why there is none), the measured numbers labelled as measured,
    the modelled cost labelled as modelled, and the inputs table."""
    a = r["assessment"]
    lines = [f"# ragft compare: {r['docs']}", "",
             f"{r['documents']} documents, {r['chunks']} chunks (indexed in {r['index_s']:.1f} s); generator "
             f"`{r['generator']}`, embedder `{r['embedder']}`.", ""]
    if r["verdict"] == "inconclusive":
        lines += ["## Outcome: inconclusive", "",
                  "The measurements cannot separate the approaches, so this run gives no verdict:", ""]
        lines += [f"- {x}" for x in a["reasons"]]
        lines += ["", "What would make it decisive: " + "; ".join(a["remedies"]) + ".", "",
                  f"_Without the quality measurement, the rules and the assumed inputs alone would say "
                  f"**{rec.approach}**; that is not a measured verdict._", ""]
    else:
        lines += [f"## Outcome: {r['verdict']}", "", rec.summary, ""]
    if r.get("load_warning"):
        lines += [f"**Warning.** {r['load_warning']}", ""]
    lines += [f"- {n}" for n in r["notes"]] + [""]
    rt = r["retrieval"]
    rk = rt["recall@" + str(rt["k"])]
    lines += ["## Retrieval quality (measured)", "", f"{rt['method']} (n={rt['n']}): recall@{rt['k']} {rk:.2f}, "
              f"recall@5 {rt['recall@5']:.2f}, MRR {rt['mrr']:.2f}.", ""]
    lines += ["## Answer quality and latency (measured on this machine)", ""]
    has_acc = "accuracy" in r["approaches"][0]
    lines.append("| approach | " + ("accuracy [95 % CI] | " if has_acc else "") + "p50 ms | p95 ms | prompt tokens |")
    lines.append("|---|" + ("---|" if has_acc else "") + "---|---|---|")
    for x in r["approaches"]:
        acc = f"{x['accuracy']:.2f} [{x['lo']:.2f}, {x['hi']:.2f}] | " if has_acc else ""
        lines.append(f"| {x['approach']} | {acc}{x['p50_ms']:.0f} | {x['p95_ms']:.0f} | {x['prompt_tokens']:.0f} |")
    n = r["approaches"][0]["n"]
    lines += ["", f"Latency percentiles of {n} timed requests each (p95 of {n} requests is close to the maximum)."]
    for c in a["comparisons"]:
        lines.append(f"- {c['a']} - {c['b']}: {c['difference']:+.2f} [{c['ci'][0]:+.2f}, {c['ci'][1]:+.2f}], "
                     f"{c['verdict']} (paired, n={c['n']}).")
    if not has_acc:
        lines += ["", "Answer quality was not measured (no questions or pairs); latency is from sampled queries."]
    if r["training"]:
        t = r["training"]
        lines += ["", f"LoRA trained on {t['examples']} pairs: {t['steps']} steps, {t['wall_time_s']:.0f} s."]
    lines += ["", "![quality](quality.png)" if has_acc else "", "![latency](latency.png)", "",
              "## Cost at your volume (modelled, not measured)", "",
              f"{r['requests_per_day']:,.0f} requests/day, measured RAG context "
              f"{r['measured_context_tokens']:.0f} tokens/request; the cost model's other inputs as in the table "
              "below:", ""]
    for name, c in r["costs"].items():
        lines.append(f"- {name}: ${c['monthly_usd']:,.2f}/month")
    lines += ["", f"Crossover: {r['crossover']}.", f"Break-even: {r['break_even']}.", "", "![cost](cost.png)", "",
              "## Inputs of the verdict", "",
              "| input | value | where it comes from | decides the verdict |", "|---|---|---|---|"]
    for row in r["inputs"]:
        lines.append(f"| {row['input']} | {_value(row['value'])} | {row['provenance']}: {row['source']} | "
                     f"{'**yes**' if row['decides'] else ''} |")
    assumed = [row["input"] for row in r["inputs"] if row["decides"] and row["provenance"] == "assumed"]
    lines += ["", ("Assumed inputs that decide the verdict (state them to make it yours): " + ", ".join(assumed) + ".")
              if assumed else "No assumed input decides the verdict on its own.", "",
              "The decision rules' report on the inputs above"
              + (" (not a measured verdict: the outcome is inconclusive)" if r["verdict"] == "inconclusive" else "")
              + ":", "", rec.to_markdown(headings=True), ""]
    if r["stages_reused"]:
        lines += [f"_Reused finished stages: {', '.join(r['stages_reused'])}._", ""]
    return "\n".join(lines)
