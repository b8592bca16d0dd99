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
3. ``k`` (chunks retrieved, 1..``max_k``) and the adapter's epochs (1..``max_epochs``) are chosen
   by accuracy on the validation questions only (ties: the smaller value), and frozen.
4. The adapter is trained with ``seeds`` seeds at the chosen epochs; every system answers the
   test questions; comparisons are paired on the same questions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from .._fields import spec, validate
from ..errors import ConfigError, DataError
from .cache import cached_json, content_key
from .lab import Lab, rag_prompts, stratified_sample
from .result import ExperimentResult, summarise
from .settings import (ExperimentSettings, answer_length_field, context_budget_field, generator_field,
                       learning_rate_field, options_field, seed_field, seeds_field)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..evaluate import PairedComparison

__all__ = ["HeadlineSettings", "headline", "HEADLINE_SYSTEMS", "per_question", "compare_systems", "mc_items",
           "mc_correct"]

#: The systems of the headline comparison, in the book's order (the vocabulary's names).
HEADLINE_SYSTEMS = ("closed-book", "rag", "lora-aug", "lora-aug+rag")
_VERSION = 1  # bump when the protocol changes (part of the cache key)


@dataclass
class HeadlineSettings:
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
                             help="Questions on other facts, used only to choose k and the epochs.")
    options: int = options_field("Candidate replies per question (the true one and distractors of the same attribute).")
    paraphrases: int = spec(2, "int", label="Training phrasings", unit="phrasings", min=1, max=3,
                            help="Question phrasings per fact the adapter is trained on.")
    max_epochs: int = spec(2, "int", label="Epochs tried", unit="epochs", min=1, max=6,
                           help="Adapter epochs tried on the validation questions: 1 to this.")
    learning_rate: float = learning_rate_field(
        "Peak learning rate of the adapter (the experiments' value, not re-tuned here).")
    max_k: int = spec(3, "int", label="Chunks tried", unit="chunks", min=1, max=8,
                      help="Chunks retrieved per question tried on the validation questions: 1 to this.")
    seeds: int = seeds_field("Training seeds of the adapter at the chosen epochs.")
    n_free_form: int = spec(100, "int", label="Free-form subset", unit="questions", min=0,
                            help="Test questions also answered free-form (generated, scored by the strict scorer).")
    max_new_tokens: int = answer_length_field()
    context_tokens: int = context_budget_field()
    seed: int = seed_field("Seed of the fact samples and of the first adapter.")

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def for_model(cls, generator: str | None = None, **overrides: Any) -> "HeadlineSettings":
        """The sizes for ``generator``: the same questions, seeds and grids for every model; the
        learning rate of :meth:`ExperimentSettings.for_model` (3e-3 for the packaged 135M model,
        2e-4 for a 1.5B model on a GPU).

        >>> HeadlineSettings.for_model(None).learning_rate
        0.003
        """
        lr = ExperimentSettings.for_model(generator).learning_rate
        return cls(**{"generator": generator, "learning_rate": lr, **overrides})

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        return dataclasses.asdict(self)

    def key(self) -> str:
        return content_key({"experiment": "headline", "version": _VERSION, **self.to_dict()})


def _option_texts(fact: Any, answers: Sequence[str]) -> list[str]:
    """Candidate replies: the fact's sentence with each candidate value (the bare value where the
    sentence does not contain the true one)."""
    sentence = fact.statement
    if fact.answer in sentence:
        return [sentence.replace(fact.answer, a) for a in answers]
    return list(answers)


def _mc_items(facts: Sequence[Any], world_facts: Sequence[Any], n: int, seed: int) -> list[tuple[list[str], int]]:
    from ..evaluate import mc_options

    items = []
    for f in facts:
        answers, right = mc_options(f, world_facts, n=n, seed=seed)
        if len(answers) < 2:
            raise DataError(f"{f.id}: no distractor of attribute {f.attribute!r} in the world")
        items.append((_option_texts(f, answers), right))
    return items


def _mc_correct(gen: Any, prompts: Sequence[str], items: Sequence[tuple[list[str], int]]) -> list[bool]:
    """For each question: does the true option get the highest log-likelihood?"""
    from ..evaluate import continuation_logprobs

    flat_p = [p for p, (opts, _) in zip(prompts, items) for _ in opts]
    flat_c = [o for _, (opts, _) in zip(prompts, items) for o in opts]
    scores = continuation_logprobs(gen, flat_p, flat_c)
    out, i = [], 0
    for opts, right in items:
        s = scores[i:i + len(opts)]
        i += len(opts)
        out.append(max(range(len(s)), key=s.__getitem__) == right)
    return out


#: Public names for the experiments that score the same way (the learning curve).
mc_items, mc_correct = _mc_items, _mc_correct


def headline(settings: HeadlineSettings | None = None, *, use_cache: bool = True,
             progress: bool | None = None) -> ExperimentResult:
    """Run (or load from the result cache) the headline comparison; see the module docstring.

    ``frame`` has one row per (system, seed, question, scoring): ``approach``, ``seed`` (-1 for
    the systems without training), ``fact_id``, ``attribute``, ``scoring`` (``"mc"`` or
    ``"free-form"``) and ``correct``; ``extra["validation"]`` holds the validation accuracies
    behind the chosen ``k`` and epochs.

    >>> res = headline()                                  # doctest: +SKIP
    >>> compare_systems(res, "rag", "lora-aug").words()   # doctest: +SKIP
    """
    s = settings or HeadlineSettings()
    if not isinstance(s, HeadlineSettings):
        raise ConfigError(f"must be a HeadlineSettings, got {type(s).__name__}", field="settings")
    data = cached_json("headline", s.key(), lambda: _run(s, progress).to_dict(), use_cache=use_cache)
    return ExperimentResult.from_dict(data)


def _run(s: HeadlineSettings, progress: bool | None) -> ExperimentResult:
    import pandas as pd

    from ..datasets import fact_examples
    from ..display import progress_enabled
    from ..evaluate import answer_contained
    from ..finetune import LoRAConfig, train_or_load

    show = progress_enabled(True if progress is None else progress)
    lab = Lab.get(ExperimentSettings(generator=s.generator))
    gen, world = lab.generator, lab.world
    pool = world.facts_in("train")
    test = stratified_sample(pool, s.n_test, seed=s.seed)
    taken = {f.id for f in test}
    val = stratified_sample([f for f in pool if f.id not in taken], s.n_validation, seed=s.seed + 1)
    if len(test) < s.n_test or len(val) < s.n_validation:
        raise ConfigError(f"the world has {len(pool)} trainable facts; n_test + n_validation = "
                          f"{s.n_test + s.n_validation} do not fit", field="n_test")
    retriever = lab.retriever()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def say(msg: str) -> None:
        if show:
            print(f"[headline {time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    def questions(facts: Sequence[Any]) -> list[str]:
        return [f.heldout_question for f in facts]

    items = {"test": _mc_items(test, world.facts, s.options, s.seed),
             "val": _mc_items(val, world.facts, s.options, s.seed)}
    closed = {name: [gen.format_prompt(q) for q in questions(fs)] for name, fs in (("test", test), ("val", val))}

    def rag(g: Any, fs: Sequence[Any], k: int) -> list[str]:
        return rag_prompts(g, retriever, questions(fs), k, s.context_tokens)[0]

    # 1. k on validation (RAG with the base model).
    val_k = {k: _mc_correct(gen, rag(gen, val, k), items["val"]) for k in range(1, s.max_k + 1)}
    k = max(val_k, key=lambda k: (sum(val_k[k]), -k))
    say(f"k chosen on validation: {k}")

    # 2. epochs on validation (seed s.seed), then the other seeds at the chosen epochs.
    examples = fact_examples(list(test) + list(val), paraphrases=s.paraphrases)

    def adapter(epochs: int, seed: int) -> Any:
        cfg = LoRAConfig(target_modules="all", epochs=epochs, learning_rate=s.learning_rate, max_length=72,
                         batch_size=8, seed=seed)
        res = train_or_load(gen, examples, cfg, progress=show)
        timings[f"train_e{epochs}_s{seed}_s"] = res.metrics.wall_time_s
        return res.generator

    val_e: dict[int, list[bool]] = {}
    first: dict[int, Any] = {}
    for e in range(1, s.max_epochs + 1):
        first[e] = adapter(e, s.seed)
        val_e[e] = _mc_correct(first[e], closed["val"], items["val"])
        say(f"epochs {e}: validation accuracy {sum(val_e[e]) / len(val):.3f}")
    epochs = max(val_e, key=lambda e: (sum(val_e[e]), -e))
    say(f"epochs chosen on validation: {epochs}")

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
    add("closed-book", -1, _mc_correct(gen, closed["test"], items["test"]))
    add("rag", -1, _mc_correct(gen, rag_test, items["test"]))
    adapters = {s.seed: first[epochs]}
    for i in range(1, s.seeds):
        adapters[s.seed + i] = adapter(epochs, s.seed + i)
    for seed, g in adapters.items():
        add("lora-aug", seed, _mc_correct(g, closed["test"], items["test"]))
        add("lora-aug+rag", seed, _mc_correct(g, rag_test, items["test"]))
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
        "validation": {"k": {str(kk): sum(v) / n_val for kk, v in val_k.items()},
                       "epochs": {str(e): sum(v) / n_val for e, v in val_e.items()}},
        "seeds": sorted(adapters), "training_examples": len(examples), "chance": 1 / s.options,
        "attributes": sorted({f.attribute for f in test}),
    }
    return ExperimentResult("headline", frame, summary, timings, {}, s.to_dict(), extra)


def per_question(result: ExperimentResult, approach: str, *, scoring: str = "mc", seed: int | None = None,
                 field: str = "approach") -> "pd.Series":
    """Correctness per test question of ``approach``, indexed by ``fact_id``: averaged over the
    adapter's seeds (0, 1/3, 2/3 or 1 with three seeds; 0 or 1 for the systems without training),
    or of one ``seed`` only (ignored for systems without training). ``field`` names the argument
    in the error raised when there are no such rows."""
    f = result.frame
    f = f[(f["approach"] == approach) & (f["scoring"] == scoring)]
    if seed is not None and (f["seed"] >= 0).any():
        f = f[f["seed"] == seed]
    if f.empty:
        raise ConfigError(f"no {scoring!r} rows of approach {approach!r}" + (f" for seed {seed}" if seed is not None else ""),
                          field=field)
    return f.groupby("fact_id", sort=False)["correct"].mean()


def compare_systems(result: ExperimentResult, a: str, b: str, *, seed: int | None = None,
                    scoring: str = "mc") -> "PairedComparison | tuple[float, float, float]":
    """``a`` against ``b`` on the same test questions.

    With ``seed`` (or when neither system was trained): an exact paired comparison of the two
    0/1 outcomes (:func:`~ragft_lib.evaluate.paired_compare`). Without ``seed``: the difference of
    the seed-averaged accuracies with a paired bootstrap 95 % interval over questions,
    ``(difference, low, high)`` (:func:`~ragft_lib.evaluate.paired_bootstrap_ci`).
    """
    from ..evaluate import paired_bootstrap_ci, paired_compare

    xa = per_question(result, a, scoring=scoring, seed=seed, field="a")
    xb = per_question(result, b, scoring=scoring, seed=seed, field="b")
    shared = [q for q in xa.index if q in xb.index]
    va, vb = [float(xa[q]) for q in shared], [float(xb[q]) for q in shared]
    binary = all(v in (0.0, 1.0) for v in va + vb)
    if binary:
        return paired_compare([bool(v) for v in va], [bool(v) for v in vb], a=a, b=b)
    return paired_bootstrap_ci(va, vb)
