"""Experiment 2, freshness: what each system answers after the knowledge changes, and how long the update takes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..evaluate import answer_contained, wilson_ci
from .cache import cached_result
from .lab import Lab, rag_prompts, timed
from .result import ExperimentResult
from .settings import ExperimentSettings

if TYPE_CHECKING:  # pragma: no cover
    from ..models import Generator

__all__ = ["freshness"]


def freshness(settings: ExperimentSettings | None = None, *, use_cache: bool = True) -> ExperimentResult:
    """Experiment 2: the world's update batch arrives. How long until each approach answers with the new value?

    Both systems start from the old world: RAG over the old documents, and the paraphrase-augmented
    LoRA of experiment 1 (the same adapter, reused from the cache). At time 0 the update batch
    arrives. RAG re-indexes the changed documents (``Retriever.update``);
    LoRA is retrained from the base on the updated facts. Two phrasings of every changed fact, one
    trained on and the held-out one, are asked before and after; ``frame`` holds the timeline
    (approach, ``t_s``, accuracy on the new value, share still giving the old value) and
    ``extra["answers"]`` every answer.
    """
    s = settings or ExperimentSettings()
    return cached_result(s, "freshness", lambda: _freshness(s), use_cache=use_cache)


def _freshness(s: ExperimentSettings) -> ExperimentResult:
    import pandas as pd

    from ..finetune import fact_examples

    lab = Lab.get(s)
    gen, world = lab.generator, lab.world
    facts = lab.facts()
    new_world = world.apply_update()
    changed = [f for f in facts if f.id in world.update.fact_ids]
    new_facts = [new_world.fact(f.id) for f in facts]
    qs = [(f, q, new_world.fact(f.id).answer, f.answer) for f in changed for q in (f.questions[0], f.heldout_question)]
    questions = [q for _, q, _, _ in qs]
    timings: dict[str, float] = {}
    answers: list[dict[str, Any]] = []

    def score(approach: str, phase: str, preds: Sequence[str]) -> dict[str, Any]:
        new_ok = [answer_contained(p, new, question=q) for p, (_, q, new, _) in zip(preds, qs)]
        old_ok = [answer_contained(p, old, question=q) for p, (_, q, _, old) in zip(preds, qs)]
        for (f, q, new, old), p, a, b in zip(qs, preds, new_ok, old_ok):
            answers.append(dict(approach=approach, phase=phase, fact_id=f.id, question=q, new=new, old=old,
                                prediction=p, new_correct=bool(a), stale=bool(b)))
        est, lo, hi = wilson_ci([float(x) for x in new_ok])
        return dict(accuracy=est, lo=lo, hi=hi, stale=sum(old_ok) / len(old_ok), n=len(preds))

    def rag_answer(g: "Generator", retriever: Any) -> list[str]:
        prompts, _, _ = rag_prompts(g, retriever, questions, s.k, s.context_tokens)
        return g.generate(prompts, max_new_tokens=s.max_new_tokens)

    retriever, timings["index_build_s"] = timed(lambda: lab.retriever(world.documents))
    old = lab.train(fact_examples(facts, paraphrases=3))
    timeline = []
    before_rag = score("rag", "before", rag_answer(gen, retriever))
    before_lora = score("lora", "before", old.generator.chat_batch(questions, max_new_tokens=s.max_new_tokens))
    changed_docs = [d for d in new_world.documents if d.id in {f.doc_id for f in changed}]
    _, timings["index_update_s"] = timed(lambda: retriever.update(changed_docs))
    after_rag = score("rag", "after", rag_answer(gen, retriever))
    hybrid_stale = score("lora+rag", "after index update", rag_answer(old.generator, retriever))
    new, load_s = timed(lambda: lab.train(fact_examples(new_facts, paraphrases=3)))
    timings["retrain_s"] = new.metrics.wall_time_s
    timings["retrain_load_s"] = load_s
    after_lora = score("lora", "after", new.generator.chat_batch(questions, max_new_tokens=s.max_new_tokens))
    t_rag, t_lora = timings["index_update_s"], timings["retrain_s"]
    for approach, before, after, t in (("rag", before_rag, after_rag, t_rag), ("lora", before_lora, after_lora, t_lora)):
        timeline.append(dict(approach=approach, phase="update arrives", t_s=0.0, **before))
        timeline.append(dict(approach=approach, phase="index updated" if approach == "rag" else "retrained", t_s=t, **after))
    timeline.append(dict(approach="lora+rag (old adapter)", phase="index updated", t_s=t_rag, **hybrid_stale))
    frame = pd.DataFrame(timeline)
    summary = frame[frame["phase"] != "update arrives"].reset_index(drop=True)
    costs = {"documents_reindexed": len(changed_docs), "retrain_examples": 3 * len(new_facts),
             "retrain_steps": new.metrics.steps, "retrain_tokens": new.metrics.train_tokens}
    extra = {"answers": answers, "changed_facts": len(changed), "questions": len(questions),
             "speedup": t_lora / max(t_rag, 1e-9)}
    return ExperimentResult("freshness", frame, summary, timings, costs, s.to_dict(), extra)
