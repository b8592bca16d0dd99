"""Experiment 2, freshness: what each system answers after the knowledge changes, and how long the update takes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ConfigError, DataError
from ..evaluate import answer_contained, wilson_ci
from .cache import cached_result
from .lab import Lab, rag_prompts, timed
from .result import ExperimentResult
from .settings import ExperimentSettings

if TYPE_CHECKING:  # pragma: no cover
    from ..models import Generator
    from .headline import HeadlineSettings

__all__ = ["freshness", "freshness_at_scale", "FRESHNESS_SYSTEMS"]


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


#: The systems of :func:`freshness_at_scale`, in the order the book shows them.
FRESHNESS_SYSTEMS = ("rag (old index)", "rag (re-indexed)", "lora-aug (not retrained)",
                     "lora-aug+rag (not retrained, re-indexed)", "lora-aug (retrained)")
_AT_SCALE_VERSION = 1  # bump when the protocol below changes (part of the cache key)


def freshness_at_scale(settings: "HeadlineSettings | None" = None, *, use_cache: bool = True,
                       progress: bool | None = None) -> ExperimentResult:
    """Freshness on the headline's 200 test facts, every one of them changed: how each system answers
    right after the change, scored by log-likelihood like :func:`~ragft_lib.experiments.headline`.

    Protocol (fixed before scoring): every test fact of the headline run
    (``headline_facts``) gets a new value — another value of the
    same attribute, drawn with the settings' seed — and the documents stating it are rewritten
    (:meth:`ragft_lib.datasets.World.with_changes`). Each question (the held-out phrasing) has
    ``options`` candidate replies: the new value, the old value, and other values of the attribute;
    an answer is *correct* when the new value gets the highest likelihood and *stale* when the old
    one does. Systems: RAG over the old index and after ``Retriever.update`` of the changed
    documents (the headline's ``k``); the headline's adapters, not retrained (every seed), alone and
    inside re-indexed RAG; and the adapter retrained from the base on the changed facts (first seed,
    the headline's epochs). ``timings`` holds the index update and the retraining wall time.

    >>> res = freshness_at_scale()                                              # doctest: +SKIP
    >>> compare_systems(res, "rag (re-indexed)", "lora-aug (not retrained)")   # doctest: +SKIP
    """
    from .cache import cached_json, content_key
    from .headline import HeadlineSettings

    s = settings or HeadlineSettings()
    if not isinstance(s, HeadlineSettings):
        raise ConfigError(f"must be a HeadlineSettings, got {type(s).__name__}", field="settings")
    key = content_key({"experiment": "freshness_at_scale", "version": _AT_SCALE_VERSION, **s.to_dict()})
    data = cached_json("freshness_at_scale", key, lambda: _at_scale(s, progress).to_dict(), use_cache=use_cache)
    return ExperimentResult.from_dict(data)


def _changed_items(facts: Sequence[Any], world_facts: Sequence[Any], options: int,
                   seed: int) -> tuple[dict[str, str], list[tuple[list[str], int]], list[int]]:
    """The new value of every fact, its options (new, old, others of the attribute) and the old
    value's option index."""
    import random

    from .headline import option_texts

    changes, items, old_at = {}, [], []
    for f in facts:
        rng = random.Random(f"{seed}:{f.id}:changed")
        pool = sorted({g.answer for g in world_facts if g.attribute == f.attribute and g.answer != f.answer})
        if len(pool) < 2:
            raise DataError(f"{f.id}: the world has no second value of attribute {f.attribute!r} to change to")
        new = rng.choice(pool)
        others = rng.sample([v for v in pool if v != new], min(options - 2, len(pool) - 1))
        answers = [new, f.answer] + others
        rng.shuffle(answers)
        changes[f.id] = new
        items.append((option_texts(f, answers), answers.index(new)))
        old_at.append(answers.index(f.answer))
    return changes, items, old_at


def _at_scale(s: "HeadlineSettings", progress: bool | None) -> ExperimentResult:
    import time

    import pandas as pd

    from ..datasets import fact_examples
    from ..display import progress_enabled
    from ..finetune import train_or_load
    from .headline import headline, headline_adapter_config, headline_facts, mc_choice
    from .result import summarise

    show = progress_enabled(True if progress is None else progress)
    base = headline(s, progress=progress)  # k, epochs, rate and rank: chosen on validation there
    k, epochs, seeds = int(base.extra["k"]), int(base.extra["epochs"]), list(base.extra["seeds"])
    chosen = {"learning_rate": base.extra.get("learning_rate"), "rank": base.extra.get("rank")}  # on validation
    lab = Lab.get(ExperimentSettings(generator=s.generator))
    gen, world = lab.generator, lab.world
    test, val = headline_facts(s, world)
    changes, items, old_at = _changed_items(test, world.facts, s.options, s.seed)
    new_world = world.with_changes(changes)
    questions = [f.heldout_question for f in test]
    closed = [gen.format_prompt(q) for q in questions]
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    rows: list[dict[str, Any]] = []

    def add(approach: str, seed: int, choices: Sequence[int]) -> None:
        for f, c, (_, right), old in zip(test, choices, items, old_at):
            rows.append(dict(approach=approach, seed=seed, fact_id=f.id, attribute=f.attribute, scoring="mc",
                             correct=c == right, stale=c == old))
        if show:
            acc = sum(r["correct"] for r in rows[-len(test):]) / len(test)
            print(f"[freshness {time.perf_counter() - t0:6.0f} s] {approach} (seed {seed}): {acc:.3f}", flush=True)

    retriever = lab.retriever(world.documents)  # a fresh index: the update below changes it
    add("rag (old index)", -1, mc_choice(gen, rag_prompts(gen, retriever, questions, k, s.context_tokens)[0], items))
    touched = sorted({f.doc_id for f in test})
    _, timings["index_update_s"] = timed(lambda: retriever.update([new_world.document(d) for d in touched]))
    fresh_rag = rag_prompts(gen, retriever, questions, k, s.context_tokens)[0]
    add("rag (re-indexed)", -1, mc_choice(gen, fresh_rag, items))
    old_examples = fact_examples(list(test) + list(val), paraphrases=s.paraphrases)
    for seed in seeds:
        g = train_or_load(gen, old_examples, headline_adapter_config(s, epochs, seed, **chosen), progress=show).generator
        add("lora-aug (not retrained)", seed, mc_choice(g, closed, items))
        if seed == seeds[0]:
            add("lora-aug+rag (not retrained, re-indexed)", seed, mc_choice(g, fresh_rag, items))
    new_examples = fact_examples([new_world.fact(f.id) for f in test] + list(val), paraphrases=s.paraphrases)
    retrained = train_or_load(gen, new_examples, headline_adapter_config(s, epochs, seeds[0], **chosen),
                              progress=show)
    timings["retrain_s"] = retrained.metrics.wall_time_s
    add("lora-aug (retrained)", seeds[0], mc_choice(retrained.generator, closed, items))
    timings["total_s"] = time.perf_counter() - t0

    frame = pd.DataFrame(rows)
    summary = summarise(frame, by=["approach", "seed"])
    summary["stale"] = summarise(frame, by=["approach", "seed"], value="stale")["accuracy"]
    costs = {"documents_reindexed": len(touched), "retrain_examples": len(new_examples),
             "retrain_steps": retrained.metrics.steps}
    extra = {"k": k, "epochs": epochs, **chosen, "seeds": seeds, "changed_facts": len(test), "chance": 1 / s.options,
             "speedup": timings["retrain_s"] / max(timings["index_update_s"], 1e-9),
             "example_change": {"fact_id": test[0].id, "question": questions[0], "old": test[0].answer,
                                "new": changes[test[0].id]}}
    return ExperimentResult("freshness_at_scale", frame, summary, timings, costs, s.to_dict(), extra)
