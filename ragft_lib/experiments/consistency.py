"""Experiment 3, consistency and format: answer variance under changed context or phrasing, and JSON validity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..evaluate import answer_agreement, answer_contained, bootstrap_ci, json_validity, parse_json_object, wilson_ci
from .cache import cached_result
from .lab import Lab, rag_prompts, stratified_sample, timed
from .result import ExperimentResult
from .settings import JSON_SYSTEM, ExperimentSettings

if TYPE_CHECKING:  # pragma: no cover
    from ..models import Generator

__all__ = ["consistency"]


def consistency(settings: ExperimentSettings | None = None, *, use_cache: bool = True) -> ExperimentResult:
    """Experiment 3: output-format validity and answer variance of RAG, LoRA and the hybrid.

    * **Variance**: each of ``n_consistency`` held-out questions is asked under four variants —
      for RAG and the hybrid (augmented LoRA + RAG) four retrieved contexts (top-``k``; the same
      chunks reversed; the top chunk only; the golden chunk among two random ones); for LoRA alone,
      which has no context to vary, the four phrasings of the question. ``agreement`` is the share
      of the variants giving the most common (normalised) answer.
    * **Format**: every experiment fact's held-out question, asked to reply with
      ``{"answer": ...}`` JSON: the share of replies that parse (:func:`~ragft_lib.evaluate.parse_json_object`: the
      whole reply is one JSON object), have exactly the key ``answer`` with a string value
      (:func:`~ragft_lib.evaluate.json_validity`), and whose answer is right (``format_accuracy``). Besides RAG,
      LoRA and the hybrid above, ``format-lora+rag`` is the framework's hybrid: an adapter trained
      only on the *format* (RAG prompts about *other* facts answered as JSON), facts retrieved, and
      ``few-shot+rag`` its fair baseline: the base model with the same RAG prompt, after three solved
      turns (three other facts' RAG prompts, each answered with the JSON object). ``rag``, ``few-shot+rag`` and ``format-lora+rag`` answer the same
      ``n_format`` questions (facts outside the experiment's sample, sampled across attributes);
      the fact adapters (``lora-aug``, ``lora-aug+rag``) are format-tested on the experiment's facts.
    """
    s = settings or ExperimentSettings()
    return cached_result(s, "consistency", lambda: _consistency(s), use_cache=use_cache)


def _consistency(s: ExperimentSettings) -> ExperimentResult:
    import json
    import random

    import pandas as pd

    from ..finetune import fact_examples
    from ..rag import RAG_SYSTEM, RAGPipeline

    lab = Lab.get(s)
    gen = lab.generator
    all_facts = lab.facts()
    rng = random.Random(s.seed)
    facts = rng.sample(all_facts, min(s.n_consistency, len(all_facts)))
    retriever = lab.retriever()
    lora = lab.train(fact_examples(all_facts, paraphrases=3)).generator
    all_chunks = [h for d in lab.world.documents[:40] for h in retriever.chunks_of(d.id)]
    rows = []
    timings: dict[str, float] = {}

    # The format test asks questions of facts outside the experiment's sample (format is not a fact
    # the adapters learned), n_format of them, sampled across attributes; the format-only adapter is
    # trained on yet other facts, and the few-shot examples come from those.
    used = {f.id for f in all_facts}
    others = [f for f in lab.world.facts_in("train") if f.id not in used]
    pool = stratified_sample(others, len(all_facts), seed=s.seed + 1)
    pool_ids = {f.id for f in pool}
    fmt_facts = stratified_sample([f for f in others if f.id not in pool_ids], s.n_format, seed=s.seed + 2)
    jpipe = RAGPipeline(retriever, gen, k=s.k, context_tokens=s.context_tokens, system=RAG_SYSTEM + " " + JSON_SYSTEM)
    # Few-shot as a chat model is prompted: three solved turns (the same RAG prompt layout, each
    # answered with the JSON object) before the question, not examples pasted into the instruction.
    shots: list[dict[str, str]] = []
    for f in pool[:3]:
        (_, user), _ = jpipe.build_messages(f.question, retriever.search(f.question, s.k))
        shots += [user, {"role": "assistant", "content": json.dumps({"answer": f.answer})}]

    def format_test(name: str, g: "Generator", with_context: bool, tests: Sequence[Any], few_shot: bool = False) -> None:
        """Each fact's held-out question in ``tests``, asked for ``{"answer": ...}`` JSON."""
        questions = [f.heldout_question for f in tests]
        if few_shot:
            fprompts = []
            for q in questions:
                (system, user), _ = jpipe.build_messages(q, retriever.search(q, s.k))
                fprompts.append(g.format_prompt([system, *shots, user]))
        elif with_context:
            fprompts = rag_prompts(g, retriever, questions, s.k, s.context_tokens, system=JSON_SYSTEM)[0]
        else:
            fprompts = [g.format_prompt(q, system=JSON_SYSTEM) for q in questions]
        fpreds, timings[f"format_{name}_s"] = timed(
            lambda: g.generate(fprompts, max_new_tokens=s.max_new_tokens + 16))
        for f, p in zip(tests, fpreds):
            obj = parse_json_object(p)
            rows.append(dict(approach=name, test="format", fact_id=f.id, variant="json", prediction=p,
                             correct=bool(answer_contained(str(obj.get("answer", "")) if obj else p, f.answer,
                                                            question=f.heldout_question)),
                             json_valid=obj is not None, schema_match=json_validity([p], ["answer"])[0]))

    for name, g in (("rag", gen), ("lora-aug+rag", lora), ("lora-aug", lora)):
        prompts, meta = [], []
        for f in facts:
            q = f.heldout_question
            if name == "lora-aug":
                for i, qq in enumerate(f.questions):
                    prompts.append(g.format_prompt(qq))
                    meta.append((f, f"phrasing {i + 1}"))
                continue
            pipe = RAGPipeline(retriever, g, k=s.k, context_tokens=s.context_tokens)
            hits = retriever.search(q, max(s.k, 2))
            gold = [h for h in retriever.chunks_of(f.doc_id) if answer_contained(h.text, f.answer)][:1]
            others = rng.sample([c for c in all_chunks if c.doc_id != f.doc_id], 2)
            variants = {"top-k": hits[: s.k], "reversed": list(reversed(hits[: s.k])), "top-1": hits[:1],
                        "gold+random": sorted(gold + others, key=lambda h: rng.random())}
            for vname, ctx in variants.items():
                prompts.append(pipe.build_prompt(q, ctx)[0])
                meta.append((f, vname))
        preds, sec = timed(lambda: g.generate(prompts, max_new_tokens=s.max_new_tokens))
        timings[f"variance_{name}_s"] = sec
        for (f, v), p in zip(meta, preds):
            rows.append(dict(approach=name, test="variance", fact_id=f.id, variant=v, prediction=p,
                             correct=bool(answer_contained(p, f.answer, question=f.heldout_question))))
        format_test(name, g, with_context=name != "lora-aug", tests=fmt_facts if name == "rag" else all_facts)
    format_test("few-shot+rag", gen, with_context=True, tests=fmt_facts, few_shot=True)
    # The framework's hybrid: an adapter trained for the *format* only — RAG prompts answered with
    # {"answer": ...} — on other facts of the world, while the facts themselves are still retrieved.
    fmt_examples = []
    for f in pool:
        (system, user), _ = jpipe.build_messages(f.question, retriever.search(f.question, s.k))
        fmt_examples.append({"system": system["content"], "prompt": user["content"],
                             "completion": json.dumps({"answer": f.answer})})
    fmt_res = lab.train(fmt_examples, context=True)
    timings["train_format_adapter_s"] = fmt_res.metrics.wall_time_s
    format_test("format-lora+rag", fmt_res.generator, with_context=True, tests=fmt_facts)
    frame = pd.DataFrame(rows)
    out = []
    for name, g in frame.groupby("approach", sort=False):
        var = g[g["test"] == "variance"]
        nan = float("nan")
        agree = var.groupby("fact_id")["prediction"].agg(lambda x: answer_agreement(list(x))).tolist()
        acc_by_fact = var.groupby("fact_id")["correct"].mean().tolist()
        fmt = g[g["test"] == "format"]
        a, alo, ahi = bootstrap_ci(agree, seed=s.seed) if agree else (nan, nan, nan)
        j, jlo, jhi = wilson_ci(fmt["json_valid"].astype(float).tolist())
        m, mlo, mhi = wilson_ci(fmt["schema_match"].astype(float).tolist())
        fa, falo, fahi = wilson_ci(fmt["correct"].astype(float).tolist())
        varied = "question phrasing" if name == "lora-aug" else ("retrieved context" if agree else "(not varied)")
        out.append(dict(approach=name, varied=varied, agreement=a, agreement_lo=alo, agreement_hi=ahi,
                        accuracy_under_variation=sum(acc_by_fact) / len(acc_by_fact) if acc_by_fact else nan,
                        json_valid=j, json_valid_lo=jlo, json_valid_hi=jhi, schema_match=m, schema_match_lo=mlo,
                        schema_match_hi=mhi, format_accuracy=fa, format_accuracy_lo=falo, format_accuracy_hi=fahi,
                        n_questions=len(agree), n_format=len(fmt)))
    summary = pd.DataFrame(out)
    return ExperimentResult("consistency", frame, summary, timings, {}, s.to_dict(),
                            {"n_questions": len(facts)})
