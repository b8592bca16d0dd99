"""Experiment 1, new knowledge: closed-book, RAG, LoRA, paraphrase-augmented LoRA, the hybrids and RAFT on the same held-out questions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ConfigError
from ..evaluate import mrr
from .cache import cached_result
from .lab import Lab, answer_rows, raft_prompts, rag_prompts, timed
from .result import ExperimentResult, summarise
from .settings import APPROACHES_NEW_KNOWLEDGE, ExperimentSettings

if TYPE_CHECKING:  # pragma: no cover
    from ..models import Generator

__all__ = ["new_knowledge", "AUG_PARAPHRASES"]

#: Question phrasings per fact of the paraphrase-augmented adapter (``lora-aug``) in this experiment.
AUG_PARAPHRASES = 3


def new_knowledge(settings: ExperimentSettings | None = None, *, approaches: Sequence[str] = APPROACHES_NEW_KNOWLEDGE,
                  use_cache: bool = True) -> ExperimentResult:
    """Experiment 1: which approach answers questions about facts the base model cannot know?

    On ``settings.n_facts`` facts of the invented world, each approach answers the **held-out**
    phrasing of every fact (a wording never used in training):

    * ``closed-book``: the base model alone;
    * ``rag``: the base model with the top-``k`` retrieved chunks;
    * ``lora``: LoRA trained on one phrasing per fact;
    * ``lora-aug``: LoRA trained on three phrasings per fact (paraphrase augmentation);
    * ``lora-aug+rag``: that adapter inside the RAG pipeline;
    * ``raft+rag``: LoRA trained RAFT-style (question + golden and distractor documents, answer
      quoting the golden one) and used with retrieved chunks in the same layout.
    """
    s = settings or ExperimentSettings()
    return cached_result(s, "new_knowledge", lambda: _new_knowledge(s, tuple(approaches)), use_cache=use_cache)


def _new_knowledge(s: ExperimentSettings, approaches: tuple[str, ...]) -> ExperimentResult:
    from ..finetune import fact_examples, raft_examples

    lab = Lab.get(s)
    gen, world = lab.generator, lab.world
    facts = lab.facts()
    questions = [f.heldout_question for f in facts]
    golds = [f.answer for f in facts]
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    costs: dict[str, Any] = {}
    retriever, timings["index_s"] = timed(lab.retriever)
    count = gen.count_tokens
    adapters: dict[str, Any] = {}

    def train(name: str, examples: Sequence[Any], context: bool = False) -> Any:
        res = lab.train(examples, context=context)
        adapters[name] = res
        timings[f"train_{name}_s"] = res.metrics.wall_time_s
        costs[f"train_{name}"] = dict(steps=res.metrics.steps, examples=len(examples),
                                      train_tokens=res.metrics.train_tokens, wall_time_s=res.metrics.wall_time_s,
                                      step_time_s=res.metrics.step_time_s, adapter_path=str(res.adapter_path))
        return res.generator

    def chat(g: "Generator", qs: Sequence[str]) -> tuple[list[str], float]:
        return timed(lambda: g.chat_batch(list(qs), max_new_tokens=s.max_new_tokens))

    for approach in approaches:
        if approach == "closed-book":
            preds, sec = chat(gen, questions)
            rows += answer_rows(approach, facts, questions, golds, preds, sec, [count(gen.format_prompt(q)) for q in questions])
        elif approach in ("rag", "lora-aug+rag"):
            g = gen
            if approach == "lora-aug+rag":
                g = adapters["lora-aug"].generator if "lora-aug" in adapters else train("lora-aug", fact_examples(facts, paraphrases=AUG_PARAPHRASES))
            prompts, cited, rsec = rag_prompts(g, retriever, questions, s.k, s.context_tokens)
            preds, sec = timed(lambda: g.generate(prompts, max_new_tokens=s.max_new_tokens))
            rows += answer_rows(approach, facts, questions, golds, preds, sec + sum(rsec), [count(p) for p in prompts], cited)
        elif approach in ("lora", "lora-aug"):
            g = train(approach, fact_examples(facts, paraphrases=1 if approach == "lora" else AUG_PARAPHRASES))
            preds, sec = chat(g, questions)
            rows += answer_rows(approach, facts, questions, golds, preds, sec, [count(g.format_prompt(q)) for q in questions])
        elif approach == "raft+rag":
            pairs = world.pairs(facts=facts, paraphrases=1)
            ex = raft_examples(pairs, world.documents, distractors=s.raft_distractors, seed=s.seed)
            g = train("raft", ex, context=True)
            prompts, cited = raft_prompts(g, retriever, questions, s.k)
            preds, sec = timed(lambda: g.generate(prompts, max_new_tokens=max(s.max_new_tokens, 64)))
            rows += answer_rows(approach, facts, questions, golds, preds, sec, [count(p) for p in prompts], cited)
        else:
            raise ConfigError(f"unknown approach {approach!r}; choose from {APPROACHES_NEW_KNOWLEDGE}", field="approaches")
    import pandas as pd

    frame = pd.DataFrame(rows)
    summary = summarise(frame)
    rag_rows = frame[frame["approach"] == "rag"] if "rag" in approaches else frame.iloc[:0]
    extra: dict[str, Any] = {"n_facts": len(facts), "generator": gen.name}
    if len(rag_rows):
        extra["retrieval"] = {"k": s.k, f"recall@{s.k}": float(rag_rows["recall"].mean()),
                              "mrr": mrr(rag_rows["retrieved"].tolist(), [f.doc_id for f in facts]),
                              "citation_precision": float(rag_rows["citation_precision"].mean())}
    return ExperimentResult("new_knowledge", frame, summary, timings, costs, s.to_dict(), extra)
