"""Experiment 4: the measurements of experiments 1-3 fed into the cost model and the decision engine."""

from __future__ import annotations

from typing import Any, Mapping

from .result import ExperimentResult

__all__ = ["decision_from_measurement"]


def decision_from_measurement(nk: ExperimentResult, fresh: ExperimentResult | None = None,
                              cons: ExperimentResult | None = None, *, latency: Mapping[str, Any] | None = None,
                              quality_target: float = 0.6, **scenario: Any) -> dict[str, Any]:
    """Experiment 4: the measurements of experiments 1–3 fed into the cost model and :func:`~ragft_lib.decision.recommend`.

    Measured inputs: ``rag_quality_sufficient`` (RAG's held-out accuracy >= ``quality_target``),
    ``finetune_quality_sufficient`` (the best closed-book adapter's, ``lora`` or ``lora-aug``; it
    replaces the label-count gate), ``labeled_examples`` (the training examples), ``strict_format`` stays the scenario's choice,
    the RAG context tokens per request (from the prompts actually built), the output tokens, and
    the latency percentiles (``latency``, e.g. :func:`measured_latency`). Returns the scenario,
    the cost inputs, the recommendation and a table of the measured quality per approach.
    """
    from ..cost import CostInputs, costs, crossover
    from ..decision import Scenario, recommend

    summ = nk.summary.set_index("approach")
    rag_acc = float(summ.loc["rag", "accuracy"]) if "rag" in summ.index else None
    ctx = (float(summ.loc["rag", "prompt_tokens"] - summ.loc["closed-book", "prompt_tokens"])
           if {"rag", "closed-book"} <= set(summ.index) else None)
    n_examples = max((v.get("examples", 0) for k, v in nk.costs.items() if k.startswith("train_")), default=0)
    tuned = [float(summ.loc[a, "accuracy"]) for a in ("lora", "lora-aug") if a in summ.index]
    sc = dict(stage="production", labeled_examples=int(n_examples), kb_documents=140,
              rag_quality_sufficient=None if rag_acc is None else rag_acc >= quality_target,
              finetune_quality_sufficient=max(tuned) >= quality_target if tuned else None)
    sc.update(scenario)
    sce = Scenario.from_dict(sc)
    ci_kwargs: dict[str, Any] = {"requests_per_day": sce.requests_per_day, "knowledge_update_days": sce.knowledge_update_days,
                                 "hosting": sce.hosting}
    if ctx is not None and ctx > 0:
        ci_kwargs["rag_context_tokens_per_request"] = ctx
    ci = CostInputs.from_dict(ci_kwargs)
    rec = recommend(sce, cost_inputs=ci, latency=latency, latency_kind="measured" if latency is not None else None)
    quality = nk.summary[["approach", "accuracy", "lo", "hi", "n"]].copy()
    out = {"scenario": sce, "cost_inputs": ci, "costs": costs(ci), "crossover": crossover(ci),
           "recommendation": rec, "quality": quality, "measured_context_tokens": ctx, "rag_accuracy": rag_acc}
    if fresh is not None:
        out["freshness_s"] = {"rag": fresh.timings["index_update_s"], "lora": fresh.timings["retrain_s"]}
    if cons is not None:
        out["consistency"] = cons.summary
    return out
