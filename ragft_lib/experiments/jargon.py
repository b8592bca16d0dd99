"""Specialised jargon: an invented code book the base model cannot know, learned by prompting, by
retrieval and by fine-tuning, scored by log-likelihood on held-out case descriptions.

Protocol (fixed before any test item is scored):

1. A code book of ``n_codes`` invented procedure codes (:func:`~ragft_lib.jargon.invent_code_book`)
   and its case -> code items (:func:`~ragft_lib.jargon.jargon_items`): training phrasings,
   one validation phrasing and two test phrasings per code, worded differently in each split.
2. Every item is multiple choice: the model reads the case (and, per system, examples or retrieved
   code book entries) and the experiment compares the log-likelihood of ``options`` codes as its
   reply — the true code and codes of the same division (:func:`~ragft_lib.jargon.code_options`).
3. The systems: ``closed-book`` (the base model, the bare question), ``few-shot`` (solved training
   items as earlier turns), ``rag`` (the code book as documents, retrieved with the experiments'
   retriever), ``lora`` (an adapter trained on the training items), ``lora+rag``.
4. Few-shot's number of shots (powers of two up to ``max_shots``), RAG's ``k`` (1..``max_k``) and
   the adapter's epochs (1..``max_epochs``, at ``learning_rate``) are chosen on the validation items
   only (ties: the smaller value), then its learning rate among ``learning_rate`` and the rates
   ``lr_factor`` apart, at those epochs (ties: ``learning_rate``); all are frozen and the adapter
   is then trained with ``seeds`` seeds.

The frame has the columns of :func:`~ragft_lib.experiments.headline.headline`'s (``approach``,
``seed``, ``fact_id`` — here the item id —, ``attribute`` — the division —, ``scoring``,
``correct``), so :func:`~ragft_lib.experiments.compare_systems` and
:func:`~ragft_lib.experiments.per_question` read it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .._fields import spec
from .headline import compare_systems, mc_correct
from .lab import Lab, best_on_validation, cached_experiment, factor_grid, rag_prompts, reporter, seeded_adapters
from .result import ExperimentResult, summarise
from .settings import (ExperimentSettings, SizedSettings, context_budget_field, epochs_tried_field, generator_field,
                       learning_rate_field, lr_factor_field, options_field, seed_field, seeds_field)

__all__ = ["JargonSettings", "jargon", "JARGON_SYSTEMS", "jargon_entry"]

#: The systems of the jargon comparison, in the book's order.
JARGON_SYSTEMS = ("closed-book", "few-shot", "rag", "lora", "lora+rag")


@dataclass
class JargonSettings(SizedSettings):
    """Sizes of the jargon experiment, validated when built.

    >>> JargonSettings().n_codes
    60
    >>> JargonSettings(n_codes=3)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: n_codes: must be >= 6 codes, got 3
    """

    generator: str | None = generator_field()
    n_codes: int = spec(60, "int", label="Codes", unit="codes", min=6, max=960,
                        help="Codes in the invented code book (two test items and one validation item each).")
    options: int = options_field("Candidate replies per question (the true code and codes of the same division).")
    max_shots: int = spec(8, "int", label="Shots tried", unit="examples", min=1, max=32,
                          help="Few-shot examples tried on the validation items: 1, 2, 4, ... up to this.")
    max_k: int = spec(3, "int", label="Entries tried", unit="entries", min=1, max=8,
                      help="Code book entries retrieved per item tried on the validation items: 1 to this.")
    max_epochs: int = epochs_tried_field(6, "items")
    learning_rate: float = learning_rate_field(
        "Peak learning rate of the adapter: the epochs are chosen at it, then it and the rates lr_factor "
        "apart are tried at those epochs on the validation items.")
    lr_factor: float = lr_factor_field()
    seeds: int = seeds_field("Training seeds of the adapter at the chosen epochs.")
    context_tokens: int = context_budget_field()
    seed: int = seed_field("Seed of the code book, the items, the options and the first adapter.")

    EXPERIMENT: ClassVar[str] = "jargon"
    VERSION: ClassVar[int] = 1  # bump when the protocol changes (part of the cache key)

    def shot_grid(self) -> list[int]:
        """The numbers of shots tried: powers of two up to ``max_shots`` (and ``max_shots``).

        >>> JargonSettings(max_shots=6).shot_grid()
        [1, 2, 4, 6]
        """
        grid = [1 << i for i in range(6) if 1 << i <= self.max_shots]
        return sorted(set(grid + [self.max_shots]))


def jargon(settings: JargonSettings | None = None, *, use_cache: bool = True,
           progress: bool | None = None) -> ExperimentResult:
    """Run (or load from the result cache) the jargon comparison; see the module docstring.

    ``extra`` holds the chosen ``shots``, ``k`` and ``epochs`` with the validation accuracies
    behind them (``extra["validation"]``), ``n_test``, ``chance`` and ``retrieval_recall``
    (the share of test items whose code is among the ``k`` retrieved entries).

    >>> res = jargon()                                   # doctest: +SKIP
    >>> compare_systems(res, "lora", "few-shot")         # doctest: +SKIP
    """
    return cached_experiment(JargonSettings, settings, lambda s: _run(s, progress), use_cache=use_cache)


def _run(s: JargonSettings, progress: bool | None) -> ExperimentResult:
    import pandas as pd

    from ..datasets import few_shot_messages
    from ..display import progress_enabled
    from ..jargon import code_options, invent_code_book, jargon_items

    show = progress_enabled(True if progress is None else progress)
    lab = Lab.get(ExperimentSettings(generator=s.generator))
    gen = lab.generator
    book = invent_code_book(s.n_codes, seed=s.seed)
    train = jargon_items(book, "train", seed=s.seed)
    val = jargon_items(book, "validation", seed=s.seed)
    test = jargon_items(book, "test", seed=s.seed)
    items = {"val": code_options(val, book, s.options, seed=s.seed),
             "test": code_options(test, book, s.options, seed=s.seed)}
    retriever = lab.retriever(book.documents())
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    say = reporter("jargon", show)

    def closed(its: Sequence[dict]) -> list[str]:
        return [gen.format_prompt(it["prompt"]) for it in its]

    # Shots: training items of distinct codes, in a seeded order (the first n of it for n shots).
    order = random.Random(f"shots:{s.seed}").sample(train, len(train))
    pool = list({it["code"]: it for it in order}.values())

    def few(its: Sequence[dict], n: int) -> list[str]:
        return [gen.format_prompt(few_shot_messages(pool[:n], it["prompt"])) for it in its]

    def rag(its: Sequence[dict], k: int) -> list[str]:
        return rag_prompts(gen, retriever, [it["prompt"] for it in its], k, s.context_tokens)[0]

    def acc(v: Sequence[bool]) -> float:
        return sum(v) / len(v)

    # 1. shots and k on validation (base model).
    val_shots = {n: mc_correct(gen, few(val, n), items["val"]) for n in s.shot_grid()}
    shots = best_on_validation(val_shots)
    val_k = {k: mc_correct(gen, rag(val, k), items["val"]) for k in range(1, s.max_k + 1)}
    k = best_on_validation(val_k)
    say(f"shots chosen on validation: {shots}; k: {k}")

    # 2. epochs on validation (seed s.seed), then the other seeds at the chosen epochs.
    examples = [{"prompt": it["prompt"], "completion": it["completion"]} for it in train]

    closed_val = closed(val)
    rates = factor_grid(s.learning_rate, s.lr_factor)
    chosen = seeded_adapters(
        gen, examples, max_epochs=s.max_epochs, seeds=s.seeds, seed=s.seed, learning_rate=s.learning_rate,
        max_length=96, validate=lambda g: mc_correct(g, closed_val, items["val"]), timings=timings, say=say,
        progress=show, learning_rates=rates)
    epochs, val_e, adapters = chosen.epochs, chosen.validation, chosen.adapters

    rows: list[dict[str, Any]] = []

    def add(approach: str, seed: int, correct: Sequence[bool]) -> None:
        for it, c in zip(test, correct):
            rows.append(dict(approach=approach, seed=seed, fact_id=it["id"], attribute=it["division"],
                             scoring="mc", correct=bool(c)))

    # 3. the test items: prompts built once (an adapter shares the base model's template).
    closed_test, rag_test = closed(test), rag(test, k)
    add("closed-book", -1, mc_correct(gen, closed_test, items["test"]))
    add("few-shot", -1, mc_correct(gen, few(test, shots), items["test"]))
    add("rag", -1, mc_correct(gen, rag_test, items["test"]))
    for seed, g in adapters.items():
        add("lora", seed, mc_correct(g, closed_test, items["test"]))
        add("lora+rag", seed, mc_correct(g, rag_test, items["test"]))
        say(f"seed {seed} scored")
    hits = [retriever.search(it["prompt"], k) for it in test]
    recall = acc([it["code"] in {h.doc_id for h in hs} for it, hs in zip(test, hits)])
    timings["total_s"] = time.perf_counter() - t0

    frame = pd.DataFrame(rows)
    tokens = {"closed-book": closed_test[0], "few-shot": few(test[:1], shots)[0], "rag": rag_test[0]}
    extra = {
        "shots": shots, "k": k, "epochs": epochs, "learning_rate": chosen.learning_rate, "n_codes": len(book),
        "n_test": len(test),
        "n_validation": len(val), "training_examples": len(examples), "chance": 1 / s.options,
        "validation": {"shots": {str(n): acc(v) for n, v in val_shots.items()},
                       "k": {str(kk): acc(v) for kk, v in val_k.items()},
                       "epochs": {str(e): acc(v) for e, v in val_e.items()},
                       "learning_rate": {f"{lr:g}": acc(v) for lr, v in sorted(chosen.validation_lr.items())}},
        "seeds": sorted(adapters), "retrieval_recall": recall,
        "prompt_tokens": {name: gen.count_tokens(p) for name, p in tokens.items()},
        "example": {"test_case": test[0]["case"], "code": test[0]["code"], "code_book": book[test[0]["code"]].text,
                    "training_cases": [it["case"] for it in train if it["code"] == test[0]["code"]]},
    }
    return ExperimentResult("jargon", frame, summarise(frame, by="approach"), timings, {}, s.to_dict(), extra)


def jargon_entry(result: ExperimentResult, a: str, b: str, *, id: str, claim: str, chapter: str = "20",
                 framework: str | None = None) -> Any:
    """The ledger :class:`~ragft_lib.evidence.Entry` for ``a`` against ``b`` on the test items
    (dimension ``jargon``): an exact paired test when neither side was trained, else the
    difference of the seed-averaged accuracies with a paired bootstrap interval over items, with
    every seed's own verdict in the note.

    >>> jargon_entry(jargon(), "lora", "few-shot", id="jargon-lora-vs-few-shot", claim="...")  # doctest: +SKIP
    """
    from ..evidence import entry_from_comparison, entry_from_interval

    x = result.extra
    metric = (f"accuracy (multiple choice by log-likelihood over {result.settings['options']} codes of one "
              "division; held-out case wordings)")
    lr = f", learning rate {x['learning_rate']:g}" if "learning_rate" in x else ""
    note = (f"{x['n_codes']} invented codes; {x['shots']} shots, k={x['k']} and {x['epochs']} epoch(s){lr} chosen on "
            f"{x['n_validation']} validation items")
    cmp = compare_systems(result, a, b)
    if not isinstance(cmp, tuple):
        return entry_from_comparison(cmp, id=id, dimension="jargon", chapter=chapter, claim=claim, metric=metric,
                                     framework=framework, note=note)
    d, lo, hi = cmp
    per = [compare_systems(result, a, b, seed=sd) for sd in x["seeds"]]
    va = sum(c.value_a for c in per) / len(per)
    vb = sum(c.value_b for c in per) / len(per)
    return entry_from_interval(id=id, dimension="jargon", chapter=chapter, claim=claim, metric=metric, a=a, b=b,
                               n=per[0].n, value_a=va, value_b=vb, difference=d, ci=(min(lo, d), max(hi, d)),
                               framework=framework,
                               test=f"paired bootstrap over items, outcomes averaged over {len(per)} seeds",
                               note=note + "; per seed: " + ", ".join(f"{sd}: {c.verdict}"
                                                                      for sd, c in zip(x["seeds"], per)))
