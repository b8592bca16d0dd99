"""The decision rules as tables, sweeps and maps for chapters and notebooks, and the bundled example
scenarios (pandas / matplotlib imported when called).

>>> sorted(load_scenarios(examples_dir()))[:1]
['clinical_guidelines_assistant']
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from ..errors import DataError
from ..vocabulary import APPROACHES, COLOURS
from .rules import FLAG_RULES, change_distance, recommend
from .scenario import Recommendation, Reason, Scenario, fmt_value
from .thresholds import (BEHAVIOUR_DIMENSIONS, CLEAN_LABELED_EXAMPLES, FACT_DIMENSIONS, FRESH_DAYS, LARGE_KB_DOCUMENTS,
                         MIN_LABELED_EXAMPLES, VERY_FRESH_DAYS, VERY_LARGE_KB_DOCUMENTS)

__all__ = ["RULES", "RULE_BASE", "rules_frame", "examples_dir", "find_scenario_file", "load_scenarios",
           "main_reasons", "supports", "verdicts_frame", "sweep", "verdict_map", "plot_verdict_map"]


# ------------------------------------------------------------------------------------------
# Tables, sweeps and a form for chapters and notebooks (pandas / ipywidgets imported when called)
# ------------------------------------------------------------------------------------------

#: Every rule as a row (dimension, when it applies, favours, weight, a scenario change that
#: triggers it). The triggers are checked by ``tests/test_decision.py`` against ``recommend``
#: run on :data:`RULE_BASE` plus the change, so the table cannot drift from the code.
RULES: tuple[tuple[str, str, str, str, Mapping[str, Any]], ...] = (
    ("stage", "stage is prototype", "rag", "3 (decides)", {"stage": "prototype"}),
    ("training data", f"labeled_examples < {MIN_LABELED_EXAMPLES} and no measured fine-tuned quality", "rag",
     "3 (rules fine-tuning out)",
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
    ("cost at volume", "fine-tuning's monthly cost is below RAG's at requests_per_day, by at least $100 and 5 % "
     f"(weight by the saving's size: 2 from 10 %, 3 from 25 % and $10,000/month; at most 1 below "
     f"{CLEAN_LABELED_EXAMPLES:,} labels unless fine-tuned quality is measured)", "fine-tune", "1 to 3",
     {"requests_per_day": 10_000_000}),
    ("cost at volume", "RAG's monthly cost is below fine-tuning's (weighed the same way)", "rag", "1 to 3",
     {"requests_per_day": 100}),
    ("measured quality", "finetune_quality_sufficient is false (rules fine-tuning out at any label count)", "rag",
     "3", {"finetune_quality_sufficient": False}),
    ("measured quality", "finetune_quality_sufficient is true (replaces the label-count gate)", "fine-tune", "2",
     {"finetune_quality_sufficient": True, "labeled_examples": 48}),
    ("measured quality", "prompt_quality_sufficient is true and no facts need retrieval", "prompt", "3 (decides)",
     {"prompt_quality_sufficient": True}),
    ("latency", "only the fine-tuned model meets latency_p95_slo_ms", "fine-tune", "2",
     {"latency_p95_slo_ms": 2_000}),
    ("combination", "a facts need (freshness, citations, audit, KB size) meets a behaviour need "
     "(format, vocabulary, style)", "hybrid", "3 (decides)", {"knowledge_update_days": 1, "strict_format": True}),
)
#: The scenario the triggers in ``RULES`` are applied to: production, static knowledge, a
#: small knowledge base, enough clean labels, nothing else asked for.
RULE_BASE: Mapping[str, Any] = {"stage": "production", "knowledge_update_days": None, "kb_documents": 500,
                                "labeled_examples": 2_000, "requests_per_day": 5_000}


def rules_frame() -> Any:
    """The rules of ``recommend`` as a DataFrame (one row per rule; see ``RULES``).

    Columns: ``dimension``, ``when``, ``favours``, ``weight``, ``why`` (the reason text of the
    yes/no needs, from ``FLAG_RULES``), ``example`` (the scenario change that triggers it).

    >>> f = rules_frame()
    >>> sorted(set(f["favours"]))
    ['fine-tune', 'hybrid', 'prompt', 'rag']
    """
    import pandas as pd

    why = {dim: text for _, dim, _, _, text in FLAG_RULES}
    return pd.DataFrame([
        {"dimension": dim, "when": when, "favours": fav, "weight": w, "why": why.get(dim, ""),
         "example": ", ".join(f"{k}={fmt_value(v)}" for k, v in trigger.items())}
        for dim, when, fav, w, trigger in RULES])


_SCENARIO_SUFFIXES = (".json", ".yaml", ".yml")


def examples_dir() -> Path:
    """Folder of the example scenario files that come with ragft_lib.

    ``ragft_lib/examples`` inside an installed wheel, ``examples/`` beside the package in a
    source checkout (the same files: the wheel is built from that folder).

    >>> (examples_dir() / "support_bot_prototype.yaml").is_file()
    True
    """
    package = Path(__file__).resolve().parent.parent
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
    pro = [r for r in rec.reasons if supports(r, rec.approach) and r.weight > 0]
    pro.sort(key=lambda r: -r.weight)
    names = list(dict.fromkeys(f"{r.dimension} ({r.weight})" for r in pro))
    return names[:top]


def supports(reason: Reason, approach: str) -> bool:
    """Whether ``reason`` argues for ``approach`` (a hybrid is argued for by the needs it combines)."""
    if reason.favours == approach:
        return True
    combined = FACT_DIMENSIONS + BEHAVIOUR_DIMENSIONS + ("measured quality",)
    return approach == "hybrid" and reason.dimension in combined


def verdicts_frame(scenarios: Mapping[str, Scenario | Mapping[str, Any]], **recommend_kwargs: Any) -> Any:
    """Run ``recommend`` on named scenarios; one row each (a DataFrame indexed by name).

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
                                if not supports(r, rec.approach) and r.weight > 0)
        nearest = min(rec.what_would_change, key=lambda c: change_distance(c.current, c.new), default=None)
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

    Each cell is ``recommend`` on ``scenario`` with both fields replaced; draw it with
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
    ax.imshow(codes, cmap=ListedColormap([COLOURS[a] for a in APPROACHES]), vmin=-0.5, vmax=len(APPROACHES) - 0.5,
              aspect="auto")
    for (i, j), v in _enumerate2(frame.to_numpy()):
        ax.text(j, i, v, ha="center", va="center", color="white", fontsize=10)
    ax.set_xticks(range(frame.shape[1]), [fmt_value(v) for v in frame.columns], fontsize=10)
    ax.set_yticks(range(frame.shape[0]), [fmt_value(v) for v in frame.index], fontsize=10)
    ax.set(xlabel=frame.columns.name, ylabel=frame.index.name, title=title or "Verdict of recommend()")
    return ax


def _enumerate2(rows: Any) -> Any:
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            yield (i, j), v
