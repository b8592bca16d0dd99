"""How many tokens RAG, and a few-shot prompt, add to each request in this book's own pipeline:
measured, not assumed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError
from .lab import Lab, rag_prompts, stratified_sample
from .settings import ExperimentSettings

__all__ = ["ContextTokens", "measured_context_tokens", "measured_few_shot_tokens"]


@dataclass(frozen=True)
class ContextTokens:
    """Extra prompt tokens per request that retrieval adds (RAG prompt minus the closed-book prompt of
    the same question), over ``n`` held-out questions: mean, median, 95th percentile and range."""

    n: int
    mean: float
    p50: float
    p95: float
    low: int
    high: int
    k: int
    context_budget: int
    what: str = "RAG"

    def __str__(self) -> str:
        return (f"{self.what} adds {self.mean:,.0f} prompt tokens per request on average (median {self.p50:,.0f}, "
                f"p95 {self.p95:,.0f}, range {self.low:,}-{self.high:,}; k={self.k}, n={self.n} questions)")


def _cached(name: str, s: ExperimentSettings, params: dict, run: "Callable[[], ContextTokens]",
            use_cache: bool) -> ContextTokens:
    """A measurement through the experiments' content-keyed cache (it is deterministic: tokens, not timings)."""
    from dataclasses import asdict

    from .cache import cached_json, content_key

    key = content_key({"settings": s.key(name), **params})
    return ContextTokens(**cached_json(name, key, lambda: asdict(run()), use_cache=use_cache))


def measured_context_tokens(settings: ExperimentSettings | None = None, *, n_questions: int = 100,
                            use_cache: bool = True) -> ContextTokens:
    """Build the RAG prompt of ``n_questions`` held-out questions (sampled evenly across the world's
    attributes with the settings' seed) as :class:`~ragft_lib.rag.RAGPipeline` does, and count the
    tokens retrieval adds to each.

    No generation and no training: it loads the generator's tokenizer and the retriever only. The
    result is cached by content (``ragft_lib.experiments.cache``): tokens, not timings.

    >>> measured_context_tokens().mean > 100    # doctest: +SKIP
    True
    """
    s = settings or ExperimentSettings()
    if isinstance(n_questions, bool) or not isinstance(n_questions, int) or n_questions < 1:
        raise ConfigError(f"must be an integer >= 1, got {n_questions!r}", field="n_questions")
    return _cached("context_tokens", s, {"n": n_questions}, lambda: _context_tokens(s, n_questions), use_cache)


def _context_tokens(s: ExperimentSettings, n_questions: int) -> ContextTokens:
    import numpy as np

    lab = Lab.get(s)
    gen = lab.generator
    facts = stratified_sample(lab.world.facts, n_questions, seed=s.seed)
    questions = [f.heldout_question for f in facts]
    prompts, _, _ = rag_prompts(gen, lab.retriever(), questions, s.k, s.context_tokens)
    extra = np.array([gen.count_tokens(p) - gen.count_tokens(gen.format_prompt(q)) for p, q in zip(prompts, questions)])
    return ContextTokens(n=len(extra), mean=float(extra.mean()), p50=float(np.median(extra)),
                         p95=float(np.percentile(extra, 95)), low=int(extra.min()), high=int(extra.max()), k=s.k,
                         context_budget=s.context_tokens)


def measured_few_shot_tokens(settings: ExperimentSettings | None = None, *, n_questions: int = 100,
                             shots: int = 3, use_cache: bool = True) -> ContextTokens:
    """The tokens a few-shot prompt adds to each request: ``shots`` solved turns (the question and
    answer of other training facts, as chat turns before the question, as chapter 32's few-shot arm
    is prompted) minus the closed-book prompt of the same question, over ``n_questions`` held-out
    questions. Tokenizer only: no generation, no index.

    >>> measured_few_shot_tokens(n_questions=10).mean > 0      # doctest: +SKIP
    True
    """
    s = settings or ExperimentSettings()
    for name, value, lo in (("n_questions", n_questions, 1), ("shots", shots, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ConfigError(f"must be an integer >= {lo}, got {value!r}", field=name)
    return _cached("few_shot_tokens", s, {"n": n_questions, "shots": shots},
                   lambda: _few_shot_tokens(s, n_questions, shots), use_cache)


def _few_shot_tokens(s: ExperimentSettings, n_questions: int, shots: int) -> ContextTokens:
    import numpy as np

    from ..datasets import few_shot_messages

    lab = Lab.get(s)
    gen = lab.generator
    facts = stratified_sample(lab.world.facts, n_questions, seed=s.seed)
    used = {f.id for f in facts}
    pool = stratified_sample([f for f in lab.world.facts_in("train") if f.id not in used], shots, seed=s.seed + 1)
    examples = [{"prompt": f.question, "completion": f.answer} for f in pool]
    extra = np.array([gen.count_tokens(gen.format_prompt(few_shot_messages(examples, f.heldout_question)))
                      - gen.count_tokens(gen.format_prompt(f.heldout_question)) for f in facts])
    return ContextTokens(n=len(extra), mean=float(extra.mean()), p50=float(np.median(extra)),
                         p95=float(np.percentile(extra, 95)), low=int(extra.min()), high=int(extra.max()), k=shots,
                         context_budget=0, what=f"A {shots}-example few-shot prompt")
