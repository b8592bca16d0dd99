"""The headline comparison at scale: closed-book, RAG, LoRA and LoRA + RAG on 200 held-out questions,
scored by log-likelihood (Ovadia et al., 2023), with settings chosen on validation facts and the
adapter trained with several seeds.

The experiment of :func:`~ragft_lib.experiments.new_knowledge` generates free-form answers, which on
this CPU limits it to a few dozen facts. Here every answer is scored the way Ovadia et al. score
theirs: the model reads the question (and, for RAG, the retrieved context) and the experiment
compares the log-likelihood it gives to ``options`` candidate replies — the fact's own sentence
with the true value and with values of other facts of the same attribute. Scoring needs one
forward pass per option and no generation, so 200 questions fit. Free-form short answers are
generated on a stratified subset as a check that the two scorings agree.

Protocol (fixed before any test question is scored):

1. ``n_test`` test facts and ``n_validation`` validation facts, disjoint, each sampled evenly over
   the world's attributes with ``seed`` (:func:`~ragft_lib.experiments.lab.stratified_sample`).
2. The adapter learns every sampled fact (test and validation) from ``paraphrases`` question
   phrasings; the last phrasing of each fact is never trained on and is the question asked.
3. ``k`` (chunks retrieved, 1..``max_k``) is chosen by accuracy on the validation questions only
   (ties: the smaller value); then the adapter's settings by a coordinate search on the same
   questions: epochs (1..``max_epochs``, at ``learning_rate`` and ``rank``; ties: fewer), then the
   learning rate (``learning_rate`` and the rates ``lr_factor`` apart, at those epochs; ties:
   ``learning_rate``), then the rank (``rank`` and the ranks ``rank_factor`` apart; ties: ``rank``).
   All are frozen before a test question is scored.
4. The adapter is trained with ``seeds`` seeds at the chosen settings; every system answers the
   test questions; comparisons are paired on the same questions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from .._fields import spec
from ..errors import ConfigError, DataError
from .lab import (Lab, adapter_config, best_on_validation, cached_experiment, factor_grid, rag_prompts, reporter,
                  seeded_adapters, stratified_sample)
from .result import ExperimentResult, summarise
from .settings import (ExperimentSettings, SizedSettings, answer_length_field, context_budget_field, epochs_tried_field,
                       generator_field, learning_rate_field, lr_factor_field, options_field, rank_factor_field,
                       rank_field, seed_field, seeds_field)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..evaluate import PairedComparison

__all__ = ["HeadlineSettings", "headline", "HEADLINE_SYSTEMS", "per_question", "compare_systems", "headline_facts",
           "headline_adapter_config", "mc_items", "mc_choice", "mc_correct", "option_texts", "comparison_entry",
           "HEADLINE_CLAIMS", "headline_entries"]

#: The systems of the headline comparison, in the book's order (the vocabulary's names).
HEADLINE_SYSTEMS = ("closed-book", "rag", "lora-aug", "lora-aug+rag")
_MAX_LENGTH = 72  # tokens per training example of the headline adapter


@dataclass
class HeadlineSettings(SizedSettings):
    """Sizes of the headline experiment, validated when built.

    >>> HeadlineSettings(n_test=50)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: n_test: must be >= 100 questions, got 50
    """

    generator: str | None = generator_field()
    n_test: int = spec(200, "int", label="Test questions", unit="questions", min=100,
                       help="Held-out questions every system answers (the book's headline needs >= 200).")
    n_validation: int = spec(44, "int", label="Validation questions", unit="questions", min=11,
                             help="Questions on other facts, used only to choose k and the adapter's "
                                  "epochs, learning rate and rank.")
    options: int = options_field("Candidate replies per question (the true one and distractors of the same attribute).")
    paraphrases: int = spec(2, "int", label="Training phrasings", unit="phrasings", min=1, max=3,
                            help="Question phrasings per fact the adapter is trained on.")
    max_epochs: int = epochs_tried_field(3, "questions")
    learning_rate: float = learning_rate_field(
        "Peak learning rate of the adapter: the epochs are chosen at it, then it and the rates lr_factor "
        "apart are tried at those epochs on the validation questions.")
    lr_factor: float = lr_factor_field()
    rank: int = rank_field()
    rank_factor: float = rank_factor_field()
    max_k: int = spec(3, "int", label="Chunks tried", unit="chunks", min=1, max=8,
                      help="Chunks retrieved per question tried on the validation questions: 1 to this.")
    seeds: int = seeds_field("Training seeds of the adapter at the chosen epochs.")
    n_free_form: int = spec(100, "int", label="Free-form subset", unit="questions", min=0,
                            help="Test questions also answered free-form (generated, scored by the strict scorer).")
    max_new_tokens: int = answer_length_field()
    context_tokens: int = context_budget_field()
    seed: int = seed_field("Seed of the fact samples and of the first adapter.")

    EXPERIMENT: ClassVar[str] = "headline"
    VERSION: ClassVar[int] = 1  # bump when the protocol changes (part of the cache key)



def option_texts(fact: Any, answers: Sequence[str]) -> list[str]:
    """Candidate replies: the fact's sentence with each candidate value (the bare value where the
    sentence does not contain the true one)."""
    sentence = fact.statement
    if fact.answer in sentence:
        return [sentence.replace(fact.answer, a) for a in answers]
    return list(answers)


def mc_items(facts: Sequence[Any], world_facts: Sequence[Any], n: int, seed: int) -> list[tuple[list[str], int]]:
    from ..evaluate import mc_options

    items = []
    for f in facts:
        answers, right = mc_options(f, world_facts, n=n, seed=seed)
        if len(answers) < 2:
            raise DataError(f"{f.id}: no distractor of attribute {f.attribute!r} in the world")
        items.append((option_texts(f, answers), right))
    return items


def mc_choice(gen: Any, prompts: Sequence[str], items: Sequence[tuple[list[str], int]]) -> list[int]:
    """For each question: the index of the option with the highest log-likelihood."""
    from ..evaluate import continuation_logprobs

    flat_p = [p for p, (opts, _) in zip(prompts, items) for _ in opts]
    flat_c = [o for _, (opts, _) in zip(prompts, items) for o in opts]
    scores = continuation_logprobs(gen, flat_p, flat_c)
    out, i = [], 0
    for opts, _ in items:
        s = scores[i:i + len(opts)]
        i += len(opts)
        out.append(max(range(len(s)), key=s.__getitem__))
    return out


def mc_correct(gen: Any, prompts: Sequence[str], items: Sequence[tuple[list[str], int]]) -> list[bool]:
    """For each question: does the true option get the highest log-likelihood?"""
    return [c == right for c, (_, right) in zip(mc_choice(gen, prompts, items), items)]


def headline_facts(s: HeadlineSettings, world: Any) -> tuple[list[Any], list[Any]]:
    """The headline's ``(test, validation)`` facts: disjoint, each stratified over the attributes.

    >>> from ragft_lib.datasets import load_world
    >>> test, val = headline_facts(HeadlineSettings(), load_world())
    >>> len(test), len(val), bool({f.id for f in test} & {f.id for f in val})
    (200, 44, False)
    """
    pool = world.facts_in("train")
    test = stratified_sample(pool, s.n_test, seed=s.seed)
    taken = {f.id for f in test}
    val = stratified_sample([f for f in pool if f.id not in taken], s.n_validation, seed=s.seed + 1)
    if len(test) < s.n_test or len(val) < s.n_validation:
        raise ConfigError(f"the world has {len(pool)} trainable facts; n_test + n_validation = "
                          f"{s.n_test + s.n_validation} do not fit", field="n_test")
    return test, val


def headline_adapter_config(s: HeadlineSettings, epochs: int, seed: int, *, learning_rate: float | None = None,
                            rank: int | None = None) -> Any:
    """The LoRA configuration of the headline's adapter: ``epochs``, ``seed`` and the rate and rank
    chosen on validation (``result.extra["learning_rate"]``, ``["rank"]``; default: the settings')."""
    return adapter_config(epochs=epochs, seed=seed, learning_rate=s.learning_rate if learning_rate is None else learning_rate,
                          max_length=_MAX_LENGTH, rank=s.rank if rank is None else rank)


def headline(settings: HeadlineSettings | None = None, *, use_cache: bool = True,
             progress: bool | None = None) -> ExperimentResult:
    """Run (or load from the result cache) the headline comparison; see the module docstring.

    ``frame`` has one row per (system, seed, question, scoring): ``approach``, ``seed`` (-1 for
    the systems without training), ``fact_id``, ``attribute``, ``scoring`` (``"mc"`` or
    ``"free-form"``) and ``correct``; ``extra["validation"]`` holds the validation accuracies
    behind the chosen ``k``, epochs, learning rate and rank (``extra["k"]``, ``["epochs"]``,
    ``["learning_rate"]``, ``["rank"]``).

    >>> res = headline()                                  # doctest: +SKIP
    >>> compare_systems(res, "rag", "lora-aug").words()   # doctest: +SKIP
    """
    return cached_experiment(HeadlineSettings, settings, lambda s: _run(s, progress), use_cache=use_cache)


def _run(s: HeadlineSettings, progress: bool | None) -> ExperimentResult:
    import pandas as pd

    from ..datasets import fact_examples
    from ..display import progress_enabled
    from ..evaluate import answer_contained

    show = progress_enabled(True if progress is None else progress)
    lab = Lab.get(ExperimentSettings(generator=s.generator))
    gen, world = lab.generator, lab.world
    test, val = headline_facts(s, world)
    retriever = lab.retriever()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    say = reporter("headline", show)

    def questions(facts: Sequence[Any]) -> list[str]:
        return [f.heldout_question for f in facts]

    items = {"test": mc_items(test, world.facts, s.options, s.seed),
             "val": mc_items(val, world.facts, s.options, s.seed)}
    closed = {name: [gen.format_prompt(q) for q in questions(fs)] for name, fs in (("test", test), ("val", val))}

    def rag(g: Any, fs: Sequence[Any], k: int) -> list[str]:
        return rag_prompts(g, retriever, questions(fs), k, s.context_tokens)[0]

    # 1. k on validation (RAG with the base model).
    val_k = {k: mc_correct(gen, rag(gen, val, k), items["val"]) for k in range(1, s.max_k + 1)}
    k = best_on_validation(val_k)
    say(f"k chosen on validation: {k}")

    # 2. epochs on validation (seed s.seed), then the other seeds at the chosen epochs.
    examples = fact_examples(list(test) + list(val), paraphrases=s.paraphrases)

    chosen = seeded_adapters(
        gen, examples, max_epochs=s.max_epochs, seeds=s.seeds, seed=s.seed, learning_rate=s.learning_rate,
        max_length=_MAX_LENGTH, validate=lambda g: mc_correct(g, closed["val"], items["val"]), timings=timings, say=say,
        progress=show, learning_rates=factor_grid(s.learning_rate, s.lr_factor), rank=s.rank,
        ranks=factor_grid(s.rank, s.rank_factor, integer=True))
    epochs, val_e, adapters = chosen.epochs, chosen.validation, chosen.adapters

    rows: list[dict[str, Any]] = []

    def add(approach: str, seed: int, correct: Sequence[bool], scoring: str = "mc",
            preds: Sequence[str] | None = None, facts: Sequence[Any] = test) -> None:
        for i, (f, c) in enumerate(zip(facts, correct)):
            row = dict(approach=approach, seed=seed, fact_id=f.id, attribute=f.attribute, scoring=scoring,
                       correct=bool(c))
            if preds is not None:
                row["prediction"] = preds[i]
            rows.append(row)

    # 3. the test questions. An adapter shares the base model's tokenizer and chat template, so
    # the prompts (closed-book and RAG) are built once and every system reads the same text.
    rag_test = rag(gen, test, k)
    add("closed-book", -1, mc_correct(gen, closed["test"], items["test"]))
    add("rag", -1, mc_correct(gen, rag_test, items["test"]))
    for seed, g in adapters.items():
        add("lora-aug", seed, mc_correct(g, closed["test"], items["test"]))
        add("lora-aug+rag", seed, mc_correct(g, rag_test, items["test"]))
        say(f"seed {seed} scored")

    # 4. free-form answers on a stratified subset (first seed's adapter).
    if s.n_free_form:
        sub = stratified_sample(test, s.n_free_form, seed=s.seed)
        qs = questions(sub)
        sub_rag = rag(gen, sub, k)
        g0 = adapters[s.seed]
        sub_closed = [gen.format_prompt(q) for q in qs]
        runs = {"closed-book": (gen, sub_closed), "rag": (gen, sub_rag), "lora-aug": (g0, sub_closed),
                "lora-aug+rag": (g0, sub_rag)}
        for name, (g, prompts) in runs.items():
            preds = g.generate(prompts, max_new_tokens=s.max_new_tokens)
            ok = [answer_contained(p, f.answer, question=q) for p, f, q in zip(preds, sub, qs)]
            add(name, -1 if name in ("closed-book", "rag") else s.seed, ok, "free-form", preds, sub)
        say("free-form subset scored")
    timings["total_s"] = time.perf_counter() - t0

    frame = pd.DataFrame(rows)
    mc = frame[frame["scoring"] == "mc"]
    summary = summarise(mc, by="approach")
    n_val = len(val)
    extra = {
        "k": k, "epochs": epochs, "n_validation": n_val, "n_test": len(test),
        "learning_rate": chosen.learning_rate, "rank": chosen.rank,
        "validation": {"k": {str(kk): sum(v) / n_val for kk, v in val_k.items()}, **chosen.shares()},
        "seeds": sorted(adapters), "training_examples": len(examples), "chance": 1 / s.options,
        "attributes": sorted({f.attribute for f in test}),
    }
    return ExperimentResult("headline", frame, summary, timings, {}, s.to_dict(), extra)


def per_question(result: ExperimentResult, approach: str, *, scoring: str = "mc", seed: int | None = None,
                 field: str = "approach", value: str = "correct") -> "pd.Series":
    """Correctness (the column ``value``) per test question of ``approach``, indexed by
    ``fact_id``: averaged over the adapter's seeds (0, 1/3, 2/3 or 1 with three seeds; 0 or 1 for
    the systems without training), or of one ``seed`` only (ignored for systems without training).
    ``field`` names the argument in the error raised when there are no such rows."""
    f = result.frame
    f = f[(f["approach"] == approach) & (f["scoring"] == scoring)]
    if seed is not None and (f["seed"] >= 0).any():
        f = f[f["seed"] == seed]
    if f.empty:
        raise ConfigError(f"no {scoring!r} rows of approach {approach!r}" + (f" for seed {seed}" if seed is not None else ""),
                          field=field)
    if value not in f.columns:
        raise ConfigError(f"the result has no column {value!r}; it has {sorted(f.columns)}", field="value")
    return f.groupby("fact_id", sort=False)[value].mean()


def compare_systems(result: ExperimentResult, a: str, b: str, *, seed: int | None = None,
                    scoring: str = "mc", value: str = "correct") -> "PairedComparison | tuple[float, float, float]":
    """``a`` against ``b`` on the same test questions.

    With ``seed`` (or when neither system was trained): an exact paired comparison of the two
    0/1 outcomes (:func:`~ragft_lib.evaluate.paired_compare`). Without ``seed``, or when ``value``
    is not 0/1 (e.g. a share of fields right): the difference of the (seed-averaged) means with a
    paired bootstrap 95 % interval over questions, ``(difference, low, high)``
    (:func:`~ragft_lib.evaluate.paired_bootstrap_ci`).
    """
    from ..evaluate import paired_bootstrap_ci, paired_compare

    xa = per_question(result, a, scoring=scoring, seed=seed, field="a", value=value)
    xb = per_question(result, b, scoring=scoring, seed=seed, field="b", value=value)
    shared = [q for q in xa.index if q in xb.index]
    va, vb = [float(xa[q]) for q in shared], [float(xb[q]) for q in shared]
    binary = all(v in (0.0, 1.0) for v in va + vb)
    if binary:
        return paired_compare([bool(v) for v in va], [bool(v) for v in vb], a=a, b=b)
    d, lo, hi = paired_bootstrap_ci(va, vb)
    # the percentile interval can miss d by a rounding error when every difference is equal
    return d, min(lo, d), max(hi, d)


def comparison_entry(result: ExperimentResult, a: str, b: str, *, id: str, dimension: str, chapter: str,
                     claim: str, metric: str, note: str = "", framework: str | None = None, scoring: str = "mc",
                     value: str = "correct", **extra: Any) -> tuple[Any, list[Any]]:
    """The ledger entry for ``a`` against ``b`` on ``result``'s questions, and the per-seed comparisons.

    When neither system was trained, or the two share one seed (e.g. an adapter trained once against
    one trained with three seeds: only the shared seed is compared), the entry is the exact paired
    comparison (:func:`compare_systems`); otherwise its difference and interval are the seed-averaged paired
    bootstrap, its values the mean of the per-seed accuracies, and its note lists each seed's verdict
    (the seed spread). ``scoring`` and ``value`` pick the rows and the column compared
    (:func:`compare_systems`); a ``value`` that is not 0/1 is compared by the paired bootstrap
    throughout. Returns ``(entry, per_seed)`` (``per_seed`` empty for untrained systems; a
    per-seed item is a :class:`~ragft_lib.evaluate.PairedComparison`, or ``(difference, low,
    high)`` for a value that is not 0/1).

    >>> entry, per_seed = comparison_entry(res, "rag", "lora-aug", id="x", dimension="new-knowledge",
    ...                                    chapter="35", claim="...", metric="accuracy")  # doctest: +SKIP
    """
    from ..evaluate import verdict
    from ..evidence import entry_from_comparison, entry_from_interval

    def seeds_of(system: str) -> set[int]:
        f = result.frame
        return {int(x) for x in f.loc[(f["approach"] == system) & (f["seed"] >= 0), "seed"].unique()}

    sa, sb = seeds_of(a), seeds_of(b)
    seeds = sorted(sa & sb) if sa and sb else sorted(sa | sb)
    how = {"scoring": scoring, "value": value}
    at = seeds[0] if len(seeds) == 1 else None  # one seed both systems have: compare on it alone
    if len(seeds) <= 1:  # untrained, or one seed shared by both: the exact paired test on that seed
        averaged = compare_systems(result, a, b, seed=at, **how)
        if seeds and (len(sa) > 1 or len(sb) > 1):
            note = (note + f"; seed {seeds[0]} only (the seed both systems have)").lstrip("; ")
        if not isinstance(averaged, tuple):
            return entry_from_comparison(averaged, id=id, dimension=dimension, chapter=chapter, claim=claim,
                                         metric=metric, note=note, framework=framework, **extra), []
        per = [averaged] if seeds else []  # a share (not 0/1): the paired bootstrap, entry built below
    else:
        averaged = compare_systems(result, a, b, **how)
        per = [compare_systems(result, a, b, seed=seed, **how) for seed in seeds]

    def interval(c: Any) -> tuple[float, float, float]:  # a bootstrap triple, or an exact test's
        return c if isinstance(c, tuple) else (c.difference, c.ci[0], c.ci[1])

    def reading(c: Any) -> str:
        d_, lo_, hi_ = interval(c)
        return f"{verdict(lo_, hi_)} ({d_:+.3f})"

    d, lo, hi = interval(averaged)
    xa, xb = (per_question(result, x, scoring=scoring, seed=at, value=value) for x in (a, b))
    shared = [q for q in xa.index if q in xb.index]
    spread = "; per seed: " + ", ".join(f"{seed}: {reading(c)}" for seed, c in zip(seeds, per)) if seeds else ""
    over = f", outcomes averaged over {len(seeds)} seeds" if len(seeds) > 1 else ""
    test = (f"paired bootstrap over questions{over}" if isinstance(averaged, tuple) else
            f"{averaged.test} (every seed gave the same outcome on every question)")
    entry = entry_from_interval(id=id, dimension=dimension, framework=framework, chapter=chapter, claim=claim,
                                metric=metric, a=a, b=b, n=len(shared),
                                value_a=float(xa[shared].mean()), value_b=float(xb[shared].mean()),
                                difference=d, ci=(lo, hi), test=test,
                                note=(note + spread).lstrip("; "), **({"seeds": seeds} if seeds else {}), **extra)
    return entry, per


#: The claims the headline run decides: ``(id, a, b, dimension, framework, claim)``, ``a`` the
#: system the claim favours.
HEADLINE_CLAIMS = (
    ("headline-rag-vs-closed-book", "rag", "closed-book", "new-knowledge", "rag-new-knowledge",
     "Retrieval adds knowledge the base model lacks."),
    ("headline-lora-vs-closed-book", "lora-aug", "closed-book", "new-knowledge", "rag-new-knowledge",
     "A LoRA adapter trained on the facts answers more of them than the base model."),
    ("headline-rag-vs-lora", "rag", "lora-aug", "new-knowledge", "rag-new-knowledge",
     "RAG answers questions about new facts better than a LoRA adapter trained on them."),
    ("headline-hybrid-vs-rag", "lora-aug+rag", "rag", "hybrid", "hybrid",
     "Fine-tuning the facts into the weights as well as retrieving them beats retrieval alone."),
)


def headline_entries(result: ExperimentResult, *, chapter: str = "35", note: str = "") -> dict[str, tuple[Any, list[Any]]]:
    """The ledger entries of :data:`HEADLINE_CLAIMS` on a :func:`headline` result, by id:
    ``{id: (entry, per_seed)}`` (see :func:`comparison_entry`). Every chapter that quotes the
    headline uses these, so the numbers agree wherever they appear.

    >>> entries = headline_entries(headline())   # doctest: +SKIP
    >>> entries["headline-rag-vs-lora"][0].verdict   # doctest: +SKIP
    'supported'
    """
    x, opts = result.extra, result.settings.get("options")
    metric = f"accuracy (multiple choice by log-likelihood, {opts} options; held-out phrasing)"
    why = f"k={x['k']} and {x['epochs']} epoch(s) chosen on {x['n_validation']} validation questions"
    return {id_: comparison_entry(result, a, b, id=id_, dimension=dim, framework=fw, chapter=chapter, claim=claim,
                                  metric=metric, note=f"{note}; {why}" if note else why)
            for id_, a, b, dim, fw, claim in HEADLINE_CLAIMS}


# The names the first version of this module used (kept for code written against them).
_option_texts, _mc_items, _mc_choice, _mc_correct = option_texts, mc_items, mc_choice, mc_correct
