"""How many training pairs does a LoRA adapter need? A learning curve on the invented world's facts,
at a fixed number of epochs and at a fixed number of optimizer steps, with forgetting measured on
general-knowledge questions.

Design (fixed before any test question is scored):

1. ``n_test`` test facts: a stratified subset of the headline experiment's test facts
   (:func:`~ragft_lib.experiments.headline`), so none of them is one of the validation facts on
   which the headline chose ``k`` and the epochs; this experiment chooses nothing itself.
2. The training pairs are ordered once: the first question phrasing of every test fact, then the
   second, the third, then the three statement phrasings ("What do you know about the founding
   year of X?" -> a statement of the fact), each block in a seeded order of the facts. A training
   set of ``N`` pairs is the first ``N`` pairs of that list, so the sets are **nested** (a smaller
   set is a prefix of every larger one) and every set contains every test fact at least once: the x
   axis means *more pairs about the same facts*, from one to up to six per fact. The question asked
   is each fact's last phrasing, which no training set contains.
3. ``n_sizes`` sizes spaced evenly on a log scale from ``n_test`` to ``max_pairs``.
4. **Fixed epochs**: every size is trained for ``epochs`` passes, so a larger set also gets more
   optimizer steps ("more data" and "more training" together, the practical reading).
   **Fixed steps**: every size is trained for the same ``fixed_steps`` optimizer steps (default:
   the middle size's steps at ``epochs``, so that run is shared), so every size sees the same number
   of examples: a smaller set is seen more often, a larger one partly ("more data" alone).
5. The smallest and the largest size of both curves are trained with ``seeds`` seeds; the other
   sizes with one.
6. Scoring is multiple choice by log-likelihood (Ovadia et al., 2023; ``options`` candidate
   replies, as in the headline experiment) on the test questions and on ``n_general``
   general-knowledge questions (:func:`general_questions`) asked of the base model and of every
   adapter (forgetting). RAG with the base model and no training pairs is the reference line.

>>> LearningCurveSettings().sizes()
[100, 150, 224, 334, 500]
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from .._fields import spec
from ..errors import ConfigError, DataError
from .cache import cached_json, content_key
from .result import ExperimentResult, summarise
from .settings import (ExperimentSettings, SizedSettings, chunks_field, context_budget_field, generator_field, learning_rate_field, options_field,
                       seed_field, seeds_field)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["LearningCurveSettings", "learning_curve", "nested_training_sets", "general_questions",
           "curve_points", "compare_points", "learning_curve_plot", "CURVES"]

#: The two curves: every size trained for the same epochs, or for the same optimizer steps.
CURVES = ("fixed-epochs", "fixed-steps")
_VERSION = 1  # bump when the protocol changes (part of the cache key)
_PAIRS_PER_FACT = 6  # three trainable question phrasings + three statement phrasings
_BATCH = 8


@dataclass
class LearningCurveSettings(SizedSettings):
    """Sizes of the learning-curve experiment, validated when built.

    >>> LearningCurveSettings(max_pairs=50)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: max_pairs: must be more than n_test (100 pairs, one per test fact), got 50
    """

    generator: str | None = generator_field()
    n_test: int = spec(100, "int", label="Test facts", unit="facts", min=2,
                       help="Facts asked about (one held-out question each); also the smallest training set "
                            "(one pair per fact). The book uses >= 100.")
    max_pairs: int = spec(500, "int", label="Largest training set", unit="pairs", min=3,
                          help="Pairs in the largest training set (at most six per test fact).")
    n_sizes: int = spec(5, "int", label="Training-set sizes", unit="sizes", min=2, max=12,
                        help="Sizes on the curve, spaced evenly on a log scale from n_test to max_pairs.")
    epochs: float = spec(1, "number", label="Epochs (fixed-epochs curve)", unit="epochs", min=0,
                         min_exclusive=True, max=10, help="Passes over each training set on the fixed-epochs curve.")
    fixed_steps: int | None = spec(None, "int", label="Steps (fixed-steps curve)", unit="steps", min=1,
                                   nullable=True, null_means="the middle size's steps at `epochs`",
                                   help="Optimizer steps of every size on the fixed-steps curve.")
    learning_rate: float = learning_rate_field(
        "Peak learning rate (the experiments' value for the 135M model, not re-tuned).")
    seeds: int = seeds_field("Training seeds at the smallest and the largest size of each curve.")
    n_general: int = spec(100, "int", label="General questions", unit="questions", min=4, max=300,
                          help="General-knowledge questions asked before and after training (forgetting).")
    options: int = options_field("Candidate replies per question (the true one and distractors of the same kind).")
    k: int = chunks_field("Chunks retrieved per question for the RAG line (the headline's choice on its validation "
                          "facts).")
    context_tokens: int = context_budget_field()
    seed: int = seed_field("Seed of the test sample, of the pair order, of the options and of the first adapter.")

    EXPERIMENT: ClassVar[str] = "learning_curve"
    VERSION: ClassVar[int] = _VERSION

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_pairs <= self.n_test:
            raise ConfigError(f"must be more than n_test ({self.n_test} pairs, one per test fact), got "
                              f"{self.max_pairs}", field="max_pairs")
        if self.max_pairs > _PAIRS_PER_FACT * self.n_test:
            raise ConfigError(f"must be at most {_PAIRS_PER_FACT} pairs per test fact "
                              f"({_PAIRS_PER_FACT * self.n_test} for n_test = {self.n_test}), got {self.max_pairs}",
                              field="max_pairs")
        if len(self.sizes()) < self.n_sizes:
            raise ConfigError(f"{self.n_sizes} distinct sizes do not fit between {self.n_test} and "
                              f"{self.max_pairs} pairs", field="n_sizes")

    def sizes(self) -> list[int]:
        """The training-set sizes: ``n_sizes`` values evenly spaced on a log scale (rounded, distinct)."""
        ratio = self.max_pairs / self.n_test
        raw = [round(self.n_test * ratio ** (i / (self.n_sizes - 1))) for i in range(self.n_sizes)]
        return sorted(set(raw))



# --------------------------------------------------------------------------------------------
# Training sets and question sets
# --------------------------------------------------------------------------------------------


def nested_training_sets(facts: Sequence[Any], sizes: Sequence[int], *, seed: int = 0) -> dict[int, list[dict]]:
    """``{size: examples}``: the first ``size`` pairs of one fixed order, so every smaller set is a
    prefix (a subset) of every larger one and every set of at least ``len(facts)`` pairs has each
    fact at least once. The order: question phrasing 0 of every fact, then phrasing 1, phrasing 2,
    then statement phrasings 0, 1, 2 (:func:`~ragft_lib.datasets.fact_examples`), each block in a
    seeded order of the facts.

    >>> from ragft_lib.datasets import load_world
    >>> sets = nested_training_sets(load_world().facts_in("train")[:4], [4, 6])
    >>> sets[6][:4] == sets[4]
    True
    """
    from ..datasets import fact_examples

    facts = list(facts)
    if not facts:
        raise DataError("nested_training_sets got no facts")
    per_fact = [fact_examples([f], paraphrases=3, statements=3) for f in facts]
    order: list[dict] = []
    for block in range(_PAIRS_PER_FACT):
        idx = list(range(len(facts)))
        random.Random(f"{seed}:block{block}").shuffle(idx)
        order += [per_fact[i][block] for i in idx]
    out = {}
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(order):
            raise ConfigError(f"each size must be an integer from 1 to {len(order)} ({_PAIRS_PER_FACT} pairs per "
                              f"fact), got {n!r}", field="sizes")
        out[n] = order[:n]
    return out


def general_questions(n: int = 100, *, options: int = 4, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` multiple-choice general-knowledge questions built from the Unicode CLDR data that ships
    with Babel (a Sphinx dependency, so in every build of this book): half "In which country is the
    city of X?" over the countries with exactly one time zone (the zone's city, e.g. Asia/Tokyo ->
    Tokyo, Japan), half "What is the currency of X?" (the territory's current tender, e.g. Japanese
    Yen). Distractors are the answers of other questions of the same kind. Nothing is chosen by how a
    model answers: the countries are a seeded sample of all that qualify. Each item: ``id``, ``kind``,
    ``question``, ``options`` (full reply sentences), ``right`` (index of the true one).

    Written here because no packaged general-knowledge question set exists on the offline machine;
    CLDR is maintained reference data, so the answers are not typed by hand.

    >>> qs = general_questions(4, seed=1)
    >>> len(qs), sorted({q["kind"] for q in qs})
    (4, ['city', 'currency'])
    """
    from babel.core import Locale, get_global
    from babel.numbers import get_territory_currencies

    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError(f"must be an integer >= 2, got {n!r}", field="n_general")
    if isinstance(options, bool) or not isinstance(options, int) or options < 2:
        raise ConfigError(f"must be an integer >= 2, got {options!r}", field="options")
    en = Locale("en")
    zones = get_global("territory_zones")
    cities, currencies = [], []
    for t, name in sorted(en.territories.items()):
        if len(t) != 2 or not t.isalpha() or t not in zones:
            continue
        tz = zones[t]
        if len(tz) == 1 and tz[0].count("/") == 1:
            city = tz[0].split("/")[1].replace("_", " ")
            if city.lower() not in name.lower() and name.lower() not in city.lower():
                cities.append((t, city, name))
        cur = get_territory_currencies(t)
        if cur and cur[0] in en.currencies:
            currencies.append((t, name, en.currencies[cur[0]]))
    kinds = {"city": (cities, lambda c: f"In which country is the city of {c[1]}?", lambda c: c[2],
                      lambda c, a: f"{c[1]} is in {a}."),
             "currency": (currencies, lambda c: f"What is the currency of {c[1]}?", lambda c: c[2],
                          lambda c, a: f"The currency of {c[1]} is the {a}.")}
    want = {"city": (n + 1) // 2, "currency": n // 2}
    out = []
    for kind, (pool, question, answer, sentence) in kinds.items():
        if want[kind] > len(pool):
            raise ConfigError(f"at most {2 * min(len(cities), len(currencies))} general questions can be built, "
                              f"got {n}", field="n_general")
        rng = random.Random(f"{seed}:{kind}")
        picked = rng.sample(pool, want[kind])
        values = sorted({answer(c) for c in pool})
        for c in picked:
            true = answer(c)
            wrong = rng.sample([v for v in values if v != true], options - 1)
            opts = wrong + [true]
            rng.shuffle(opts)
            out.append({"id": f"{kind}:{c[0]}", "kind": kind, "question": question(c),
                        "options": [sentence(c, a) for a in opts], "right": opts.index(true)})
    return out


def _test_facts(world: Any, s: LearningCurveSettings) -> list[Any]:
    from .headline import HeadlineSettings
    from .lab import stratified_sample

    hs = HeadlineSettings()
    pool = stratified_sample(world.facts_in("train"), hs.n_test, seed=hs.seed)
    if s.n_test > len(pool):
        raise ConfigError(f"must be at most {len(pool)} (the headline's test facts), got {s.n_test}", field="n_test")
    return stratified_sample(pool, s.n_test, seed=s.seed)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def learning_curve(settings: LearningCurveSettings | None = None, *, use_cache: bool = True,
                   progress: bool | None = None) -> ExperimentResult:
    """Run (or load from the result cache) the learning curve; see the module docstring.

    ``frame`` has one row per (run, question): ``curve`` (``"fixed-epochs"``, ``"fixed-steps"``,
    ``"closed-book"`` or ``"rag"``), ``pairs``, ``steps``, ``seed`` (-1 without training),
    ``questions`` (``"test"`` or ``"general"``), ``item`` and ``correct``. ``extra`` holds the
    sizes, the steps of each run, the chance level and the load of the machine while it ran. Each
    run's scores are also cached on their own, so a rerun with more sizes or seeds scores only the
    new runs; ``use_cache=False`` reruns everything.

    >>> res = learning_curve()                                                # doctest: +SKIP
    >>> curve_points(res).query("questions == 'test'")[["curve", "pairs", "accuracy"]]  # doctest: +SKIP
    """
    s = settings or LearningCurveSettings()
    if not isinstance(s, LearningCurveSettings):
        raise ConfigError(f"must be a LearningCurveSettings, got {type(s).__name__}", field="settings")
    data = cached_json("learning_curve", s.key(), lambda: _run(s, progress, use_cache).to_dict(),
                       use_cache=use_cache)
    return ExperimentResult.from_dict(data)


def _run(s: LearningCurveSettings, progress: bool | None, use_cache: bool = True) -> ExperimentResult:
    import pandas as pd

    from ..display import progress_enabled
    from ..finetune import LoRAConfig, train_or_load
    from .headline import mc_correct, mc_items
    from .lab import Lab, rag_prompts

    show = progress_enabled(True if progress is None else progress)
    lab = Lab.get(ExperimentSettings(generator=s.generator))
    gen, world = lab.generator, lab.world
    test = _test_facts(world, s)
    sizes = s.sizes()
    sets = nested_training_sets(test, sizes, seed=s.seed)
    general = general_questions(s.n_general, options=s.options, seed=s.seed)
    items = {"test": mc_items(test, world.facts, s.options, s.seed),
             "general": [(q["options"], q["right"]) for q in general]}
    ids = {"test": [f.id for f in test], "general": [q["id"] for q in general]}
    prompts = {"test": [gen.format_prompt(f.heldout_question) for f in test],
               "general": [gen.format_prompt(q["question"]) for q in general]}
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []

    def say(msg: str) -> None:
        if show:
            print(f"[learning curve {time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    # Each run's scores are cached on their own (keyed by what determines them), so a rerun with more
    # sizes or seeds scores only the new runs.
    run_key = {"experiment": "learning_curve_run", "version": _VERSION, "generator": s.generator,
               "n_test": s.n_test, "seed": s.seed, "n_general": s.n_general, "options": s.options}

    def score(pairs: int, steps: int, seed: int, g: Any, which: Sequence[str] = ("test", "general"),
              test_prompts: Sequence[str] | None = None) -> list[dict[str, Any]]:
        out = []
        for q in which:
            p = test_prompts if (q == "test" and test_prompts is not None) else prompts[q]
            for item, ok in zip(ids[q], mc_correct(g, p, items[q])):
                out.append(dict(pairs=pairs, steps=steps, seed=seed, questions=q, item=item, correct=bool(ok)))
        return out

    base = cached_json("learning_curve_run", content_key({**run_key, "run": "closed-book"}),
                       lambda: {"rows": score(0, 0, -1, gen)}, use_cache=use_cache)["rows"]
    rows += [dict(r, curve="closed-book") for r in base]

    def rag_rows() -> dict[str, Any]:
        rag_test = rag_prompts(gen, lab.retriever(), [f.heldout_question for f in test], s.k, s.context_tokens)[0]
        return {"rows": score(0, 0, -1, gen, ("test",), rag_test)}

    rag = cached_json("learning_curve_run", content_key({**run_key, "run": "rag", "k": s.k,
                                                         "context_tokens": s.context_tokens}), rag_rows,
                      use_cache=use_cache)["rows"]
    rows += [dict(r, curve="rag") for r in rag]
    say("base model and RAG scored")

    scored: dict[tuple[int, int, int], list[dict[str, Any]]] = {}  # (pairs, steps, seed): equal runs shared

    def run(curve: str, n: int, seed: int, *, epochs: float | None = None, steps: int | None = None) -> None:
        cfg = LoRAConfig(target_modules="all", learning_rate=s.learning_rate, max_length=72, batch_size=_BATCH,
                         seed=seed, epochs=epochs if epochs is not None else 1, max_steps=steps)
        expected = steps if steps is not None else math.ceil(math.ceil(n / _BATCH) * cfg.epochs)
        key = (n, expected, seed)
        if key not in scored:
            def train_and_score() -> dict[str, Any]:
                res = train_or_load(gen, sets[n], cfg, progress=show)
                m = res.metrics
                info = dict(pairs=n, steps=m.steps, seed=seed, train_s=m.wall_time_s, epochs_seen=m.steps * _BATCH / n,
                            loadavg=list(os.getloadavg()))
                return {"run": info, "rows": score(n, m.steps, seed, res.generator)}

            done = cached_json("learning_curve_run", content_key({**run_key, "run": "lora", "config": cfg.to_dict(),
                                                                  "pairs": n}),
                               train_and_score, use_cache=use_cache)
            runs.append(done["run"])
            scored[key] = done["rows"]
            say(f"{n} pairs, {done['run']['steps']} steps, seed {seed}: trained in {done['run']['train_s']:.0f} s, scored")
        rows.extend(dict(r, curve=curve) for r in scored[key])

    seeds = [s.seed + i for i in range(s.seeds)]
    ends = (sizes[0], sizes[-1])
    fe_steps = {n: math.ceil(math.ceil(n / _BATCH) * s.epochs) for n in sizes}
    steps = s.fixed_steps or fe_steps[sizes[len(sizes) // 2]]
    # every size with the first seed (both curves), then the other seeds at the two ends
    plan = [(curve, n, seeds[0]) for curve in CURVES for n in sizes]
    plan += [(curve, n, seed) for curve, n in (("fixed-steps", ends[0]), ("fixed-steps", ends[1]),
                                               ("fixed-epochs", ends[0]), ("fixed-epochs", ends[1]))
             for seed in seeds[1:]]
    for curve, n, seed in plan:
        if curve == "fixed-epochs" or fe_steps[n] == steps:  # the same run as on the fixed-epochs curve: shared
            run(curve, n, seed, epochs=s.epochs)
        else:
            run(curve, n, seed, steps=steps)
    total = time.perf_counter() - t0
    frame = pd.DataFrame(rows)
    summary = summarise(frame, by=["curve", "pairs", "questions"])
    extra = {"sizes": sizes, "fixed_steps": steps, "fixed_epochs": s.epochs, "seeds": seeds, "runs": runs,
             "chance": 1 / s.options, "n_test": len(test), "n_general": len(general), "batch_size": _BATCH,
             "general_kinds": sorted({q["kind"] for q in general}),
             "machine": {"cpus": os.cpu_count(), "loadavg_before": list(load_before),
                         "loadavg_after": list(os.getloadavg())}}
    return ExperimentResult("learning_curve", frame, summary, {"total_s": total}, {}, s.to_dict(), extra)


# --------------------------------------------------------------------------------------------
# Reading the result
# --------------------------------------------------------------------------------------------


def curve_points(result: ExperimentResult, *, seed: int | None = None) -> "pd.DataFrame":
    """One row per (curve, pairs, questions): ``accuracy`` with its 95 % Wilson interval (``lo``,
    ``hi``) for the run of ``seed`` (default: the first seed; the systems without training have one),
    ``steps``, ``n`` and, where several seeds were trained, ``seed_accuracies``."""
    import pandas as pd

    from ..evaluate import wilson_ci

    f = result.frame
    first = result.extra["seeds"][0] if seed is None else seed
    out = []
    for (curve, pairs, q), g in f.groupby(["curve", "pairs", "questions"], sort=False):
        one = g if (g["seed"] < 0).all() else g[g["seed"] == first]
        if one.empty:
            continue
        acc, lo, hi = wilson_ci(list(one["correct"]))
        per_seed = g[g["seed"] >= 0].groupby("seed")["correct"].mean()
        out.append(dict(curve=curve, pairs=int(pairs), questions=q, steps=int(one["steps"].iloc[0]),
                        accuracy=acc, lo=lo, hi=hi, n=len(one),
                        seed_accuracies=[round(float(v), 3) for v in per_seed] if len(per_seed) > 1 else None))
    return pd.DataFrame(out)


def _outcomes(result: ExperimentResult, curve: str, pairs: int, questions: str, field: str) -> "pd.Series":
    f = result.frame
    g = f[(f["curve"] == curve) & (f["pairs"] == pairs) & (f["questions"] == questions)]
    if g.empty:
        raise ConfigError(f"no {questions!r} rows for curve {curve!r} at {pairs} pairs", field=field)
    return g.groupby("item", sort=False)["correct"].mean()


def compare_points(result: ExperimentResult, a: tuple[str, int], b: tuple[str, int], *, questions: str = "test",
                   labels: tuple[str, str] | None = None) -> dict[str, Any]:
    """``a`` against ``b`` (each ``(curve, pairs)``; ``("closed-book", 0)`` or ``("rag", 0)`` for the
    systems without training) on the same questions. Outcomes are averaged over the seeds each was
    trained with; the interval is the paired bootstrap over questions when either side has several
    seeds, the exact paired comparison (:func:`~ragft_lib.evaluate.paired_compare`) when both have one.
    Returns the fields of an evidence entry: ``a``, ``b``, ``n``, ``value_a``, ``value_b``,
    ``difference``, ``ci``, ``test``, ``verdict`` and ``seeds`` (training seeds per side, 0 for a
    system without training)."""
    from ..evaluate import paired_bootstrap_ci, paired_compare, verdict

    xa = _outcomes(result, *a, questions, "a")
    xb = _outcomes(result, *b, questions, "b")
    shared = [q for q in xa.index if q in xb.index]
    va, vb = [float(xa[q]) for q in shared], [float(xb[q]) for q in shared]
    f = result.frame

    def n_seeds(side: tuple[str, int]) -> int:
        g = f[(f["curve"] == side[0]) & (f["pairs"] == side[1]) & (f["questions"] == questions)]
        return int(g.loc[g["seed"] >= 0, "seed"].nunique())

    la, lb = labels or (f"{a[0]}, {a[1]} pairs", f"{b[0]}, {b[1]} pairs")
    seeds = (n_seeds(a), n_seeds(b))
    if max(seeds) <= 1:
        c = paired_compare([bool(v) for v in va], [bool(v) for v in vb], a=la, b=lb)
        d, lo, hi, test = c.difference, c.ci[0], c.ci[1], c.test
    else:
        d, lo, hi = paired_bootstrap_ci(va, vb)
        test = f"paired bootstrap over questions, outcomes averaged over seeds ({seeds[0]} and {seeds[1]})"
    return dict(a=la, b=lb, n=len(shared), value_a=sum(va) / len(va), value_b=sum(vb) / len(vb),
                difference=d, ci=(lo, hi), test=test, verdict=verdict(lo, hi), seeds=seeds)


def learning_curve_plot(result: ExperimentResult) -> Any:
    """Two panels: test accuracy against training pairs (log scale) for both curves with 95 % Wilson
    intervals, the RAG, closed-book and chance lines; and general-question accuracy (forgetting)."""
    import matplotlib.pyplot as plt

    from ..plots import ci_errors

    pts = curve_points(result)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    style = {"fixed-epochs": ("tab:blue", "o", "-", 0.97), "fixed-steps": ("tab:orange", "s", "--", 1.03)}
    labels = {"fixed-epochs": f"fixed epochs ({result.extra['fixed_epochs']:g})",
              "fixed-steps": f"fixed steps ({result.extra['fixed_steps']})"}
    for ax, q in zip(axes, ("test", "general")):
        for curve, (color, marker, line, shift) in style.items():
            p = pts[(pts["curve"] == curve) & (pts["questions"] == q)].sort_values("pairs")
            ax.errorbar(p["pairs"] * shift, p["accuracy"], yerr=ci_errors(list(p["accuracy"]), list(p["lo"]),
                        list(p["hi"])), color=color, marker=marker, linestyle=line, capsize=3, label=labels[curve])
        for curve, color, name in (("rag", "tab:green", "RAG, no pairs"), ("closed-book", "tab:gray", "base model")):
            p = pts[(pts["curve"] == curve) & (pts["questions"] == q)]
            if len(p):
                r = p.iloc[0]
                ax.axhline(r["accuracy"], color=color, linestyle="-.", label=f"{name} ({r['accuracy']:.2f})")
                ax.axhspan(r["lo"], r["hi"], color=color, alpha=0.12)
        ax.axhline(result.extra["chance"], color="black", linestyle=":", linewidth=1, label="chance")
        ax.set_xscale("log")
        sizes = result.extra["sizes"]
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(v) for v in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training pairs (log scale)")
        ax.set_ylim(0, 1.05)
    axes[0].set_ylabel("accuracy (multiple choice, 95 % Wilson CI)")
    axes[0].set_title(f"Held-out phrasings of the {result.extra['n_test']} facts")
    axes[1].set_title(f"{result.extra['n_general']} general questions (forgetting)")
    axes[0].legend(loc="upper left", bbox_to_anchor=(0, 0.92), fontsize=8)
    axes[1].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig
