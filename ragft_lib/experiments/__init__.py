"""The book's experiments: validated settings, the runs, and one content-keyed result cache.

Each experiment takes an :class:`ExperimentSettings` (CPU sizes by default; one model id scales
them to a GPU), trains its adapters with :func:`ragft_lib.finetune.train_or_load` (an identical
run is reused), and returns an :class:`ExperimentResult`: a tidy frame (one row per approach and
question, scored strictly), a summary with Wilson intervals, timings and costs, and
:meth:`ExperimentResult.compare` for a paired comparison of two approaches on the same questions.
Results are cached by content (settings + experiment + ``EXPERIMENTS_VERSION``), so chapters
showing the same experiment share one run.

* :func:`new_knowledge` — facts the base model cannot know: closed-book, RAG, LoRA, the hybrids;
* :func:`headline` — the headline comparison at n = 200, scored by log-likelihood, with settings
  chosen on validation facts and the adapter trained with several seeds;
* :func:`freshness` — the knowledge changes: re-index against retrain;
* :func:`freshness_at_scale` — the same question on the headline's 200 facts, every one changed;
* :func:`consistency` — answer variance and output format (JSON), with the format-only adapter;
* :func:`measured_context_tokens` — the tokens RAG adds per request in this book's pipeline;
  :func:`measured_few_shot_tokens` — the tokens a three-example few-shot prompt adds;
* :func:`measure_latency` — per-request latency of the four systems on this machine, equal answer lengths;
* :func:`decision_from_measurement` — the measurements fed into the cost model and the decision;
* :func:`knowledge_boundary` — questions nobody can answer: who abstains, who hallucinates;
* :func:`large_kb` — the same questions as look-alike documents grow the knowledge base to 10,000;
* :func:`one_document_changes` — many facts changed, each in its own document: RAG before and after.
* :func:`jargon` — an invented code book: base, few-shot, RAG over the code book, LoRA, LoRA + RAG.
* :func:`learning_curve` — accuracy against training pairs, at fixed epochs and at fixed steps,
  with forgetting on general questions.

>>> s = ExperimentSettings.for_model(None)
>>> s.n_facts, s.key("new_knowledge") == ExperimentSettings().key("new_knowledge")
(16, True)
"""

from __future__ import annotations

from .boundary import BOUNDARY_SYSTEMS, knowledge_boundary, outcome_table
from .cache import cached_json, cached_result, content_key, result_path
from .consistency import consistency
from .context import ContextTokens, measured_context_tokens, measured_few_shot_tokens
from .decision import decision_from_measurement
from .form import FORM_SYSTEMS, FormSettings, form_task
from .freshness import FRESHNESS_SYSTEMS, freshness, freshness_at_scale
from .headline import HEADLINE_SYSTEMS, HeadlineSettings, compare_systems, comparison_entry, headline, per_question
from .jargon import JARGON_SYSTEMS, JargonSettings, jargon, jargon_entry
from .lab import Lab, stratified_sample
from .large_kb import LargeKBSettings, kb_compare, kb_latency, kb_table, large_kb
from .learning_curve import LearningCurveSettings, general_questions, learning_curve
from .latency import INTERACTIVE_SLOS, LATENCY_SYSTEMS, LatencyRun, measure_latency, measured_latency
from .new_knowledge import new_knowledge
from .one_document import OneDocumentSettings, one_document_changes, one_document_compare
from .result import ExperimentResult, summarise
from .settings import APPROACHES_NEW_KNOWLEDGE, EXPERIMENTS_VERSION, JSON_SYSTEM, ExperimentSettings, SizedSettings, CachedSettings

__all__ = ["ExperimentSettings", "ExperimentResult", "Lab", "summarise", "stratified_sample", "new_knowledge",
           "freshness", "freshness_at_scale", "FRESHNESS_SYSTEMS", "consistency", "measure_latency", "measured_latency", "LatencyRun", "LATENCY_SYSTEMS",
           "INTERACTIVE_SLOS", "decision_from_measurement", "APPROACHES_NEW_KNOWLEDGE",
           "EXPERIMENTS_VERSION", "JSON_SYSTEM", "ContextTokens", "measured_context_tokens", "measured_few_shot_tokens",
           "content_key", "result_path", "cached_json", "cached_result",
           "HeadlineSettings", "headline", "HEADLINE_SYSTEMS", "per_question", "compare_systems", "comparison_entry",
           "FormSettings", "form_task", "FORM_SYSTEMS",
           "BOUNDARY_SYSTEMS", "knowledge_boundary", "outcome_table",
           "LargeKBSettings", "large_kb", "kb_table", "kb_compare", "kb_latency",
           "OneDocumentSettings", "one_document_changes", "one_document_compare",
           "JargonSettings", "jargon", "JARGON_SYSTEMS", "jargon_entry",
           "LearningCurveSettings", "learning_curve", "general_questions", "SizedSettings", "CachedSettings"]
