"""Fine-tune, RAG, both, or only a prompt? A rule-based recommendation that explains itself.

One package, one import path (``from ragft_lib.decision import ...``):

* ``ragft_lib.decision.thresholds``: every threshold, documented with its source;
* ``ragft_lib.decision.scenario``: :class:`Scenario`, :class:`Reason`, :class:`Change`,
  :class:`Recommendation` and its reports;
* ``ragft_lib.decision.rules``: the rules and :func:`recommend` (standard library: it runs in
  the reader's browser);
* ``ragft_lib.decision.tables``: rule tables, sweeps, verdict maps, example scenarios;
* :mod:`~ragft_lib.decision.form`: the ipywidgets form.

>>> s = Scenario(stage="production", knowledge_update_days=1, kb_documents=60_000,
...              labeled_examples=2_000, requests_per_day=300_000, needs_citations=True, strict_format=True)
>>> rec = recommend(s)
>>> rec.approach
'hybrid'
>>> rec.to_markdown().splitlines()[0]
'## Verdict: hybrid'
"""

from __future__ import annotations

from .form import ScenarioForm, form
from .rules import FLAG_RULES, LATENCY_KINDS, change_distance, recommend, saving_weight
from .scenario import Change, Reason, Recommendation, Scenario
from .tables import (RULE_BASE, RULES, examples_dir, find_scenario_file, load_scenarios, main_reasons,
                     plot_verdict_map, rules_frame, supports, sweep, verdict_map, verdicts_frame)
from .thresholds import (BEHAVIOUR_DIMENSIONS, CLEAN_LABELED_EXAMPLES, FACT_DIMENSIONS, FRESH_DAYS, LARGE_KB_DOCUMENTS,
                         MIN_LABELED_EXAMPLES, THRESHOLD_SOURCES, VERY_FRESH_DAYS, VERY_LARGE_KB_DOCUMENTS,
                         DecisionThresholds)

__all__ = [
    "MIN_LABELED_EXAMPLES", "CLEAN_LABELED_EXAMPLES", "FRESH_DAYS", "VERY_FRESH_DAYS", "LARGE_KB_DOCUMENTS",
    "VERY_LARGE_KB_DOCUMENTS", "FACT_DIMENSIONS", "BEHAVIOUR_DIMENSIONS", "Scenario", "Reason", "Change",
    "Recommendation", "FLAG_RULES", "recommend", "RULES", "RULE_BASE", "rules_frame", "load_scenarios",
    "main_reasons", "verdicts_frame", "sweep", "verdict_map", "plot_verdict_map", "ScenarioForm", "form",
    "examples_dir", "find_scenario_file", "DecisionThresholds", "THRESHOLD_SOURCES", "LATENCY_KINDS",
    "saving_weight", "change_distance", "supports"]
