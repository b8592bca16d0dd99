"""Per-request latency of the book's systems, measured one request at a time on this machine."""

from __future__ import annotations

from .lab import Lab, timed
from .settings import ExperimentSettings

__all__ = ["measured_latency"]


def measured_latency(settings: ExperimentSettings | None = None, n: int = 8) -> dict[str, dict[str, float]]:
    """Per-request latency percentiles (ms) measured one request at a time on this machine:
    ``fine-tune`` = the LoRA model answering closed-book, ``rag`` = retrieve + generate with the
    base model, ``hybrid`` = retrieve + generate with the LoRA model."""
    import numpy as np

    from ..finetune import fact_examples
    from ..rag import RAGPipeline

    s = settings or ExperimentSettings()
    lab = Lab.get(s)
    facts = lab.facts()[:n]
    lora = lab.train(fact_examples(lab.facts(), paraphrases=3)).generator
    retriever = lab.retriever()
    out: dict[str, dict[str, float]] = {}
    for name, fn in (
        ("fine-tune", lambda q: lora.chat(q, max_new_tokens=s.max_new_tokens)),
        ("rag", lambda q: RAGPipeline(retriever, lab.generator, k=s.k, context_tokens=s.context_tokens,
                                      max_new_tokens=s.max_new_tokens).answer(q)),
        ("hybrid", lambda q: RAGPipeline(retriever, lora, k=s.k, context_tokens=s.context_tokens,
                                         max_new_tokens=s.max_new_tokens).answer(q)),
    ):
        ms = [1000 * timed(lambda q=f.heldout_question: fn(q))[1] for f in facts]
        out[name] = {p: float(np.percentile(ms, int(p[1:]))) for p in ("p50", "p95", "p99")}
    return out
