"""Changing one document changes RAG's answer at once: many facts, each changed in its own document.

``n_changes`` facts of different entities (sampled evenly over the world's attributes) each get a
new value — another value of the same attribute — in a copy of the world
(:meth:`~ragft_lib.datasets.World.with_changes`). RAG answers the held-out question of every
changed fact before the change and again after only the changed documents were re-indexed, one
:meth:`~ragft_lib.retrieval.Retriever.update` call per document, each timed. Answers are scored
by log-likelihood multiple choice over ``options`` candidates that always include both the old and
the new value, so each answer is "new", "old" or another value; the base model reads the ``k``
retrieved chunks through the experiments' pinned retriever.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .._fields import spec
from ..errors import ConfigError
from .cache import cached_json
from .lab import Lab, rag_prompts, stratified_sample
from .result import ExperimentResult, summarise
from .settings import (CachedSettings, ExperimentSettings, chunks_field, context_budget_field, generator_field, options_field,
                       seed_field)

__all__ = ["OneDocumentSettings", "one_document_changes", "one_document_compare"]
_VERSION = 1


@dataclass
class OneDocumentSettings(CachedSettings):
    """Sizes of the one-document-change experiment, validated when built.

    >>> OneDocumentSettings(n_changes=10)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: n_changes: must be >= 100 facts, got 10
    """

    generator: str | None = generator_field()
    n_changes: int = spec(120, "int", label="Changed facts", unit="facts", min=100, max=140,
                          help="Facts changed, one per entity (the world has 140 entities).")
    options: int = options_field("Candidate answers per question: the new value, the old one and other values.",
                                 minimum=3)
    k: int = chunks_field("Retrieved chunks in the RAG prompt (the headline experiment's k).")
    context_tokens: int = context_budget_field()
    seed: int = seed_field("Seed of the facts changed, their new values and the options.")

    EXPERIMENT: ClassVar[str] = "one_document"
    VERSION: ClassVar[int] = _VERSION


def one_document_changes(settings: OneDocumentSettings | None = None, *, use_cache: bool = True) -> ExperimentResult:
    """Run (or load from the result cache) the experiment of the module docstring.

    ``frame``: one row per (phase, changed fact): ``phase`` (``"before"`` / ``"after"``),
    ``fact_id``, ``attribute``, ``old``, ``new``, ``choice`` (the option picked), ``correct``
    (picked the new value), ``stale`` (picked the old one). ``extra["update_ms"]`` holds the
    milliseconds of each one-document :meth:`~ragft_lib.retrieval.Retriever.update`.
    """
    s = settings or OneDocumentSettings()
    if not isinstance(s, OneDocumentSettings):
        raise ConfigError(f"must be a OneDocumentSettings, got {type(s).__name__}", field="settings")
    data = cached_json("one_document", s.key(), lambda: _run(s).to_dict(), use_cache=use_cache)
    return ExperimentResult.from_dict(data)


def _choices(gen: Any, prompts: Sequence[str], options: Sequence[Sequence[str]]) -> list[int]:
    """For each prompt, the index of the option with the highest log-likelihood."""
    from ..evaluate import continuation_logprobs

    scores = continuation_logprobs(gen, [p for p, opts in zip(prompts, options) for _ in opts],
                                   [o for opts in options for o in opts])
    out, i = [], 0
    for opts in options:
        part = scores[i:i + len(opts)]
        i += len(opts)
        out.append(max(range(len(part)), key=part.__getitem__))
    return out


def _run(s: OneDocumentSettings) -> ExperimentResult:
    import pandas as pd

    from .headline import option_texts

    lab = Lab.get(ExperimentSettings(generator=s.generator))
    gen, world = lab.generator, lab.world
    rng = random.Random(f"one-document:{s.seed}")
    by_entity: dict[str, list[Any]] = {}
    for f in world.facts_in("train"):
        by_entity.setdefault(f.entity_id, []).append(f)
    one_each = [rng.choice(fs) for _, fs in sorted(by_entity.items())]
    facts = stratified_sample(one_each, s.n_changes, seed=s.seed)
    if len(facts) < s.n_changes:
        raise ConfigError(f"only {len(facts)} entities have a trainable fact", field="n_changes")
    values: dict[str, list[str]] = {}
    for f in world.facts:
        values.setdefault(f.attribute, [])
        if f.answer not in values[f.attribute]:
            values[f.attribute].append(f.answer)
    changes, options, idx = {}, [], []
    for f in facts:
        new = rng.choice([v for v in values[f.attribute] if v != f.answer])
        others = rng.sample([v for v in values[f.attribute] if v not in (f.answer, new)], s.options - 2)
        opts = [new, f.answer] + others
        rng.shuffle(opts)
        changes[f.id] = new
        options.append(option_texts(f, opts))
        idx.append((opts.index(new), opts.index(f.answer)))
    new_world = world.with_changes(changes)
    questions = [f.heldout_question for f in facts]
    retriever = lab.retriever(world.documents)  # a fresh index: the shared one stays as it is
    rows: list[dict[str, Any]] = []

    def score(phase: str) -> None:
        prompts = rag_prompts(gen, retriever, questions, s.k, s.context_tokens)[0]
        for f, c, (i_new, i_old) in zip(facts, _choices(gen, prompts, options), idx):
            rows.append(dict(phase=phase, fact_id=f.id, attribute=f.attribute, old=f.answer, new=changes[f.id],
                             choice=c, correct=c == i_new, stale=c == i_old))

    t0 = time.perf_counter()
    score("before")
    update_ms = []
    for f in facts:  # one document at a time, as an editor would change them
        t = time.perf_counter()
        retriever.update([new_world.document(f.doc_id)])
        update_ms.append(1000 * (time.perf_counter() - t))
    score("after")
    frame = pd.DataFrame(rows)
    summary = summarise(frame, by="phase")
    extra = {"update_ms": update_ms, "n": len(facts), "chance": 1 / s.options,
             "machine": {"cpu_count": os.cpu_count(), "loadavg": list(os.getloadavg())},
             "example": {"question": questions[0], "old": facts[0].answer, "new": changes[facts[0].id]}}
    return ExperimentResult("one_document", frame, summary, {"total_s": time.perf_counter() - t0}, {},
                            s.to_dict(), extra)


def one_document_compare(result: ExperimentResult) -> "Any":
    """After the one-document updates against before, on the same changed facts: the share of
    answers that pick the new value (a :class:`~ragft_lib.evaluate.PairedComparison`)."""
    from ..evaluate import paired_compare

    f = result.frame
    before = f[f["phase"] == "before"].set_index("fact_id")["correct"]
    after = f[f["phase"] == "after"].set_index("fact_id")["correct"]
    if before.empty or after.empty:
        raise ConfigError("the result has no 'before' or no 'after' rows", field="result")
    return paired_compare([float(after[i]) for i in before.index], [float(before[i]) for i in before.index],
                          a="rag after the one-document update", b="rag before it")
