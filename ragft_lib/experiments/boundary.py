"""Experiment: the knowledge boundary — what each system does with questions its knowledge does not cover."""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

from .._fields import require
from ..errors import ConfigError
from .cache import cached_json, content_key
from .lab import Lab, stratified_sample, timed
from .result import ExperimentResult
from .settings import EXPERIMENTS_VERSION, ExperimentSettings

__all__ = ["BOUNDARY_SYSTEMS", "NO_THRESHOLD", "knowledge_boundary", "outcome_table"]

#: The systems of the experiment, in the order of the book's table. ``rag (no threshold)`` is the
#: same RAG answers with only the model's own "I do not know" counted (no retrieval threshold).
BOUNDARY_SYSTEMS: tuple[str, ...] = ("closed-book", "lora-aug", "rag (no threshold)", "rag", "lora-aug+rag")
NO_THRESHOLD = "rag (no threshold)"
_VERSION = 1  # bump when a change alters the results


def knowledge_boundary(settings: ExperimentSettings | None = None, *, n_unanswerable: int = 200,
                       n_answerable: int = 100, n_validation: int = 100, max_new_tokens: int = 20,
                       use_cache: bool = True) -> ExperimentResult:
    """What closed-book, LoRA, RAG and LoRA + RAG do with questions nobody can answer, beside answerable ones.

    Questions (all over the invented world, :func:`~ragft_lib.datasets.load_world`):

    * ``n_unanswerable`` **test** questions of :func:`~ragft_lib.unanswerable.unanswerable_questions`
      (half about entities that exist nowhere, half about attributes the documents never state);
    * ``n_answerable`` answerable **test** questions, each the held-out phrasing of one fact: the
      ``settings.n_facts`` facts the LoRA adapter was trained on plus facts sampled evenly across
      attributes (column ``trained`` says which);
    * ``n_validation`` answerable and ``n_validation`` unanswerable **validation** questions
      (other facts, another phrasing; the unanswerable set's validation split), used only to
      calibrate the retrieval threshold with :func:`~ragft_lib.unanswerable.calibrate_abstention`.

    Systems (``BOUNDARY_SYSTEMS``): the base model closed-book; ``lora-aug``, the
    new-knowledge experiment's paraphrase-augmented adapter (loaded from the adapter cache,
    trained only if absent); RAG as :class:`~ragft_lib.rag.RAGPipeline` builds it; that adapter in
    the RAG pipeline. The RAG systems abstain when :func:`~ragft_lib.rag.retrieval_confidence` is
    below the calibrated threshold — applied to answers generated for every question, so the
    frame also yields ``rag (no threshold)`` and the coverage curve without generating twice —
    and every system abstains when its text says it does not know
    (:func:`~ragft_lib.rag.says_unknown`). Each answer gets an ``outcome``
    (:func:`~ragft_lib.unanswerable.classify_outcome`). Greedy decoding, ``max_new_tokens`` per answer.

    ``extra`` holds the calibration (threshold and its validation figures, the validation
    scores), the number of questions, and the machine's load and CPU count beside the wall times
    in ``timings``. Cached by content (settings, sizes, version).
    """
    s = settings or ExperimentSettings()
    sizes = dict(n_unanswerable=require("n_unanswerable", n_unanswerable, "int", min=2),
                 n_answerable=require("n_answerable", n_answerable, "int", min=1),
                 n_validation=require("n_validation", n_validation, "int", min=2),
                 max_new_tokens=require("max_new_tokens", max_new_tokens, "int", min=1))
    key = content_key({"experiment": "knowledge_boundary", "version": EXPERIMENTS_VERSION, "boundary": _VERSION,
                       "settings": s.to_dict(), **sizes})
    data = cached_json("knowledge_boundary", key, lambda: _run(s, **sizes).to_dict(), use_cache=use_cache)
    return ExperimentResult.from_dict(data)


def _questions(lab: Lab, n_unanswerable: int, n_answerable: int, n_validation: int) -> dict[str, list[dict[str, Any]]]:
    """Test and validation questions as row dicts (``qid``, ``question``, ``kind``, ``answerable``, ``answer``, ``trained``)."""
    from ..unanswerable import unanswerable_questions

    s, world = lab.settings, lab.world
    # n_validation validation and n_unanswerable test questions: the builder's split fraction fits both.
    total = n_unanswerable + n_validation
    unans = unanswerable_questions(world, n=total, seed=s.seed, validation_fraction=n_validation / total)
    trained = lab.facts()
    if n_answerable < len(trained):
        raise ConfigError(f"must be at least the {len(trained)} facts the adapter learned, got {n_answerable}",
                          field="n_answerable")
    taken = {f.id for f in trained}
    rest = [f for f in world.facts if f.id not in taken]
    extra = stratified_sample(rest, n_answerable - len(trained), seed=s.seed)
    taken |= {f.id for f in extra}
    val_facts = stratified_sample([f for f in world.facts if f.id not in taken], n_validation, seed=s.seed + 1)
    trained_ids = {f.id for f in trained}

    def fact_row(f: Any, phrasing: int) -> dict[str, Any]:
        return dict(qid=f.id, question=f.questions[phrasing], kind="answerable", answerable=True, answer=f.answer,
                    attribute=f.attribute, trained=f.id in trained_ids)

    def unans_row(q: Any) -> dict[str, Any]:
        return dict(qid=q.id, question=q.question, kind=q.kind, answerable=False, answer="", attribute=q.attribute,
                    trained=False)

    return {"test": [fact_row(f, -1) for f in trained + extra] + [unans_row(q) for q in unans if q.split == "test"],
            "validation": [fact_row(f, 1) for f in val_facts] + [unans_row(q) for q in unans if q.split == "validation"]}


def _run(s: ExperimentSettings, *, n_unanswerable: int, n_answerable: int, n_validation: int,
         max_new_tokens: int) -> ExperimentResult:
    import pandas as pd

    from ..datasets import fact_examples
    from ..evaluate import answer_contained
    from ..rag import RAGPipeline, retrieval_confidence, says_unknown
    from ..unanswerable import calibrate_abstention, classify_outcome

    t_start = time.perf_counter()
    lab = Lab.get(s)
    gen = lab.generator
    retriever, index_s = timed(lab.retriever)
    qs = _questions(lab, n_unanswerable, n_answerable, n_validation)
    timings: dict[str, float] = {"index_s": index_s}

    # 1. Calibrate the threshold on the validation questions only.
    val_scores, timings["validation_scores_s"] = timed(
        lambda: [retrieval_confidence(retriever, r["question"]) for r in qs["validation"]])
    cal = calibrate_abstention([sc for sc, r in zip(val_scores, qs["validation"]) if r["answerable"]],
                               [sc for sc, r in zip(val_scores, qs["validation"]) if not r["answerable"]])
    threshold = cal.threshold

    # 2. Every system answers every test question (greedy, max_new_tokens).
    test = qs["test"]
    questions = [r["question"] for r in test]
    scores = [retrieval_confidence(retriever, q) for q in questions]
    pipe = RAGPipeline(retriever, gen, k=s.k, context_tokens=s.context_tokens, abstain_below=None)
    prompts = []
    for q in questions:
        prompt, _ = pipe.build_prompt(q, retriever.search(q, s.k))
        prompts.append(prompt)
    answers: dict[str, list[str]] = {}
    answers["closed-book"], timings["closed-book_s"] = timed(
        lambda: gen.chat_batch(questions, max_new_tokens=max_new_tokens))
    answers["rag"], timings["rag_s"] = timed(lambda: gen.generate(prompts, max_new_tokens=max_new_tokens))
    # The new-knowledge experiment's lora-aug adapter: the same examples and settings give the same
    # cache key, so train_or_load loads it when that experiment has run (it trains only otherwise).
    adapter, timings["adapter_load_s"] = timed(lambda: lab.train(fact_examples(lab.facts(), paraphrases=3)))
    lora = adapter.generator
    answers["lora-aug"], timings["lora-aug_s"] = timed(
        lambda: lora.chat_batch(questions, max_new_tokens=max_new_tokens))
    answers["lora-aug+rag"], timings["lora-aug+rag_s"] = timed(
        lambda: lora.generate(prompts, max_new_tokens=max_new_tokens))

    # 3. Classify.
    rows = []
    sources = {"closed-book": "closed-book", "lora-aug": "lora-aug", NO_THRESHOLD: "rag", "rag": "rag",
               "lora-aug+rag": "lora-aug+rag"}
    for system in BOUNDARY_SYSTEMS:
        thresholded = system in ("rag", "lora-aug+rag")
        for r, text, sc in zip(test, answers[sources[system]], scores):
            by_model = says_unknown(text)
            by_retrieval = thresholded and sc < threshold
            abstained = by_model or by_retrieval
            correct = bool(r["answerable"] and not abstained and answer_contained(text, r["answer"],
                                                                                question=r["question"]))
            rows.append(dict(approach=system, **r, prediction=text, score=sc, model_abstained=by_model,
                             retrieval_abstained=by_retrieval, abstained=abstained,
                             outcome=classify_outcome(answerable=r["answerable"], abstained=abstained, correct=correct),
                             correct=correct))
    frame = pd.DataFrame(rows)
    for o in ("hallucinated", "abstained", "wrong"):
        frame[o] = frame["outcome"] == o
    timings["total_s"] = time.perf_counter() - t_start
    extra = {"calibration": cal.to_dict(), "threshold": threshold, "generator": gen.name,
             "adapter_path": str(adapter.adapter_path), "max_new_tokens": max_new_tokens,
             "validation": [dict(question=r["question"], answerable=r["answerable"], kind=r["kind"], score=sc)
                            for r, sc in zip(qs["validation"], val_scores)],
             "n": {"answerable": sum(r["answerable"] for r in test),
                   "unanswerable": sum(not r["answerable"] for r in test),
                   "validation_answerable": sum(r["answerable"] for r in qs["validation"]),
                   "validation_unanswerable": sum(not r["answerable"] for r in qs["validation"])},
             "machine": {"loadavg": list(os.getloadavg()), "cpu_count": os.cpu_count()}}
    return ExperimentResult("knowledge_boundary", frame, outcome_table(frame), timings, {}, s.to_dict(), extra)


def outcome_table(frame: Any, systems: Sequence[str] = BOUNDARY_SYSTEMS) -> Any:
    """Share of each outcome per system and question set (answerable / unanswerable / each kind),
    with its 95 % Wilson interval and ``n``: one row per (approach, questions, outcome)."""
    import pandas as pd

    from ..evaluate import wilson_ci
    from ..unanswerable import OUTCOMES

    rows = []
    for system in systems:
        f = frame[frame["approach"] == system]
        groups = [("answerable", f[f["answerable"]]), ("unanswerable", f[~f["answerable"]])]
        groups += [(k, f[f["kind"] == k]) for k in ("absent-entity", "unstated-attribute")]
        for name, g in groups:
            if not len(g):
                continue
            for o in OUTCOMES:
                est, lo, hi = wilson_ci((g["outcome"] == o).astype(float).tolist())
                rows.append(dict(approach=system, questions=name, outcome=o, rate=est, lo=lo, hi=hi, n=len(g)))
    return pd.DataFrame(rows)
