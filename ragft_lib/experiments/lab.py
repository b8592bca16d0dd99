"""The shared pieces of the experiments: the world, the base generator, a retriever, the facts
sampled for a run, and the prompt and row builders every experiment uses."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Sequence

from ..evaluate import answer_contained, citation_precision
from .settings import ExperimentSettings

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..models import Generator

__all__ = ["Lab", "experiment_retrieval", "stratified_sample", "timed", "rag_prompts", "raft_prompts", "answer_rows",
           "cached_experiment", "reporter", "best_on_validation", "seeded_adapters", "SeededAdapters", "adapter_config",
           "factor_grid", "validation_table", "choices_at_edge"]


def stratified_sample(facts: Sequence[Any], n: int, *, seed: int = 0, key: str = "attribute") -> list[Any]:
    """``n`` facts spread evenly over the values of ``key`` (round-robin over the groups, each group
    shuffled with ``seed``), returned in the input order: no attribute dominates, unlike the first
    ``n`` of a list sorted by entity.

    >>> from types import SimpleNamespace as F
    >>> facts = [F(id=i, attribute="mayor" if i < 8 else "river") for i in range(10)]
    >>> sorted(f.attribute for f in stratified_sample(facts, 4))
    ['mayor', 'mayor', 'river', 'river']
    """
    groups: dict[Any, list[Any]] = {}
    for f in facts:
        groups.setdefault(getattr(f, key), []).append(f)
    rng = random.Random(seed)
    for g in groups.values():
        rng.shuffle(g)
    picked: list[Any] = []
    order = sorted(groups, key=str)
    while len(picked) < min(n, len(facts)):
        for k in order:
            if groups[k] and len(picked) < n:
                picked.append(groups[k].pop())
    chosen = {id(f) for f in picked}
    return [f for f in facts if id(f) in chosen]


def experiment_retrieval() -> Any:
    """The retrieval settings of every experiment: hybrid search with weighted fusion at dense weight
    0.9, one hit per document, no title context — the library's default when the experiments'
    results were computed.

    Pinned here rather than read from :data:`ragft_lib.retrieval.DEFAULT_CONFIG`, because a cached
    result is keyed by the experiment's settings: if the library's default moved, a cached RAG
    accuracy would silently describe a retriever other than the one named. A change of these
    settings is a change of the experiments (bump ``EXPERIMENTS_VERSION``).
    """
    from ..retrieval import RetrievalConfig

    return RetrievalConfig(mode="hybrid", per_document=True, fusion="weighted", dense_weight=0.9, context="none")


class Lab:
    """The shared pieces of the experiments, loaded once: the world, the base generator, a retriever."""

    _instances: dict[Any, "Lab"] = {}

    def __init__(self, settings: ExperimentSettings):
        from ..datasets import load_world
        from ..models import load_generator

        self.settings = settings
        self.world = load_world(seed=0)
        self.generator = load_generator(settings.generator)
        self._retriever: Any = None

    @classmethod
    def get(cls, settings: ExperimentSettings) -> "Lab":
        key = (settings.generator,)
        if key not in cls._instances:
            cls._instances[key] = cls(settings)
        lab = cls._instances[key]
        lab.settings = settings
        return lab

    def retriever(self, documents: Sequence[Any] | None = None) -> Any:
        """A retriever over the world's documents (a fresh one when ``documents`` is given), with the
        experiments' pinned retrieval settings (``experiment_retrieval``)."""
        from ..retrieval import Retriever

        config = experiment_retrieval()
        if documents is not None:
            return Retriever.from_documents(list(documents), progress=False, config=config)
        if self._retriever is None:
            self._retriever = Retriever.from_documents(self.world.documents, progress=False, config=config)
        return self._retriever

    def facts(self) -> list[Any]:
        """The experiment's facts (world split ``train``): half of them change in the update batch,
        half do not, each half sampled evenly across the world's attributes with the settings' seed
        (:func:`stratified_sample`), not the first ``n_facts`` of the list."""
        n, seed = self.settings.n_facts, self.settings.seed
        changed = self.world.update.fact_ids
        train = self.world.facts_in("train")
        keep = {f.id for f in stratified_sample([f for f in train if f.id in changed], n // 2, seed=seed)}
        rest = [f for f in train if f.id not in changed]
        keep |= {f.id for f in stratified_sample(rest, n - len(keep), seed=seed)}
        return [f for f in train if f.id in keep]

    def train(self, examples: Sequence[Any], *, context: bool = False) -> Any:
        """``train_or_load`` with the settings' LoRA config (see :meth:`ExperimentSettings.lora_config`)."""
        from ..finetune import train_or_load

        return train_or_load(self.generator, examples, self.settings.lora_config(context=context), progress=False)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), seconds it took)``."""
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def rag_prompts(generator: "Generator", retriever: Any, questions: Sequence[str], k: int, context_tokens: int,
                system: str | None = None) -> tuple[list[str], list[list[Any]], list[float]]:
    """Prompts as :class:`~ragft_lib.rag.RAGPipeline` builds them, the hits each cites, retrieval seconds."""
    from ..rag import RAG_SYSTEM, RAGPipeline

    pipe = RAGPipeline(retriever, generator, k=k, context_tokens=context_tokens,
                       system=RAG_SYSTEM if system is None else RAG_SYSTEM + " " + system)
    prompts, cited, secs = [], [], []
    for q in questions:
        (hits, s) = timed(lambda q=q: retriever.search(q, k))
        prompt, used = pipe.build_prompt(q, hits)
        prompts.append(prompt)
        cited.append(used)
        secs.append(s)
    return prompts, cited, secs


def raft_prompts(generator: "Generator", retriever: Any, questions: Sequence[str], k: int) -> tuple[list[str], list[list[Any]]]:
    """RAFT-layout prompts (question + retrieved documents) and the hits each holds."""
    from ..documents import Document
    from ..finetune import raft_prompt

    prompts, cited = [], []
    for q in questions:
        hits = retriever.search(q, k)
        docs = [Document(id=h.chunk_id, text=h.text, source=h.source) for h in hits]
        prompts.append(generator.format_prompt(raft_prompt(q, docs)))
        cited.append(hits)
    return prompts, cited


def answer_rows(approach: str, facts: Sequence[Any], questions: Sequence[str], golds: Sequence[str],
                preds: Sequence[str], seconds: float, prompt_tokens: Sequence[int],
                cited: Sequence[Sequence[Any]] | None = None, **extra: Any) -> list[dict[str, Any]]:
    """One row per answer, scored strictly (:func:`~ragft_lib.evaluate.answer_contained` with the
    question: an answer that only echoes the question does not count)."""
    rows = []
    for i, (f, q, g, p) in enumerate(zip(facts, questions, golds, preds)):
        row = dict(approach=approach, fact_id=f.id, attribute=f.attribute, question=q, answer=g, prediction=p,
                   correct=bool(answer_contained(p, g, question=q)), seconds=seconds / max(len(preds), 1),
                   prompt_tokens=int(prompt_tokens[i]))
        if cited is not None:
            ids = [h.doc_id for h in cited[i]]
            row.update(retrieved=ids, recall=float(f.doc_id in ids),
                       citation_precision=citation_precision(cited[i], g))
        row.update({k: (v[i] if isinstance(v, (list, tuple)) else v) for k, v in extra.items()})
        rows.append(row)
    return rows


def cached_experiment(cls: type, settings: Any, run: Callable[[Any], Any], *, use_cache: bool = True) -> Any:
    """``run(settings)`` (an :class:`~ragft_lib.experiments.ExperimentResult`), or its cached copy:
    ``settings`` must be a ``cls`` (``None``: the defaults), whose ``EXPERIMENT`` and ``key()`` name
    the cached result (:class:`~ragft_lib.experiments.settings.SizedSettings`)."""
    from ..errors import ConfigError
    from .cache import cached_json
    from .result import ExperimentResult

    s = cls() if settings is None else settings
    if not isinstance(s, cls):
        raise ConfigError(f"must be a {cls.__name__}, got {type(s).__name__}", field="settings")
    return ExperimentResult.from_dict(cached_json(cls.EXPERIMENT, s.key(), lambda: run(s).to_dict(), use_cache=use_cache))


def reporter(name: str, show: bool) -> Callable[[str], None]:
    """A progress printer: ``say(msg)`` prints ``[name  seconds since now] msg`` when ``show``."""
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if show:
            print(f"[{name} {time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    return say


def best_on_validation(outcomes: Mapping[int, Sequence[bool]]) -> int:
    """The setting whose validation outcomes are right most often; ties go to the smaller value.

    >>> best_on_validation({1: [True, False], 2: [True, True], 3: [True, True]})
    2
    """
    return max(outcomes, key=lambda v: (sum(outcomes[v]), -v))


def adapter_config(*, epochs: int, seed: int, learning_rate: float, max_length: int, rank: int = 8) -> Any:
    """The LoRA configuration of the experiments' seeded adapters (all modules, batch 8, alpha = 2 x
    ``rank``): one place, so an experiment that reloads another's adapters (freshness at scale
    reuses the headline's) builds the same cache key."""
    from ..finetune import LoRAConfig

    return LoRAConfig(target_modules="all", epochs=epochs, learning_rate=learning_rate, max_length=max_length,
                      batch_size=8, seed=seed, r=rank, alpha=2 * rank)


def factor_grid(value: float, factor: float, *, integer: bool = False) -> list[float]:
    """``value`` and the values ``factor`` apart (divided and multiplied), sorted: the grid a
    coordinate search tries for a learning rate or a LoRA rank. ``factor`` 1 gives ``value`` alone.

    >>> factor_grid(3e-3, 3)
    [0.001, 0.003, 0.009]
    >>> factor_grid(8, 2, integer=True)
    [4, 8, 16]
    """
    if integer:
        return sorted({max(1, round(value / factor)), int(value), round(value * factor)})
    return sorted({float(f"{v:.6g}") for v in (value / factor, value, value * factor)})


class SeededAdapters(NamedTuple):
    """What :func:`seeded_adapters` chose on validation and trained."""

    epochs: int
    #: Validation outcomes per number of epochs (at the first learning rate and rank).
    validation: dict[int, list[bool]]
    #: ``{seed: adapter}``, every seed at the chosen epochs, learning rate and rank.
    adapters: dict[int, Any]
    learning_rate: float
    #: Validation outcomes per learning rate (at the chosen epochs; only the first when none other was tried).
    validation_lr: dict[float, list[bool]]
    rank: int = 8
    #: Validation outcomes per LoRA rank (at the chosen epochs and rate; only the first when none other was tried).
    validation_rank: Mapping[int, list[bool]] = {}

    def shares(self) -> dict[str, dict[str, float]]:
        """The validation accuracy of every value tried, by setting, keyed as the experiments store
        it in ``extra["validation"]``: ``{"epochs": {"1": ...}, "learning_rate": {"0.003": ...},
        "rank": {"8": ...}}``."""
        def share(outcomes: Sequence[bool]) -> float:
            return sum(outcomes) / len(outcomes)

        return {"epochs": {str(e): share(v) for e, v in self.validation.items()},
                "learning_rate": {f"{lr:g}": share(v) for lr, v in self.validation_lr.items()},
                "rank": {str(r): share(v) for r, v in self.validation_rank.items()}}


def seeded_adapters(generator: "Generator", examples: Sequence[Any], *, max_epochs: int, seeds: int, seed: int,
                    learning_rate: float, max_length: int, validate: Callable[[Any], list[bool]],
                    timings: dict[str, float], say: Callable[[str], None] = print,
                    progress: bool = False, learning_rates: Sequence[float] = (), rank: int = 8,
                    ranks: Sequence[int] = ()) -> SeededAdapters:
    """The adapters of an experiment, chosen on validation by a coordinate search: LoRA (all
    modules, batch 8, :func:`adapter_config`) trained for 1..``max_epochs`` epochs with ``seed`` at
    ``learning_rate`` and ``rank``, each scored by ``validate(adapter)``; the epochs of
    :func:`best_on_validation`. Then each of ``learning_rates`` at those epochs (ties keep
    ``learning_rate``); then each of ``ranks`` at those epochs and that rate (ties keep ``rank``).
    Then ``seeds - 1`` more seeds at the chosen epochs, rate and rank. Training times go into
    ``timings``. A coordinate search, not a grid: it trains ``max_epochs + len(learning_rates) +
    len(ranks)`` adapters where the grid would train their product.
    """
    from ..finetune import train_or_load

    def adapter(epochs: int, sd: int, lr: float, r: int) -> Any:
        cfg = adapter_config(epochs=epochs, seed=sd, learning_rate=lr, max_length=max_length, rank=r)
        res = train_or_load(generator, list(examples), cfg, progress=progress)
        name = f"train_e{epochs}_s{sd}" + ("" if lr == learning_rate else f"_lr{lr:g}") + \
            ("" if r == rank else f"_r{r}")
        timings[f"{name}_s"] = res.metrics.wall_time_s
        return res.generator

    def score(what: str, g: Any) -> list[bool]:
        right = validate(g)
        say(f"{what}: validation accuracy {sum(right) / len(right):.3f}")
        return right

    val_e: dict[int, list[bool]] = {}
    first: dict[int, Any] = {}
    for e in range(1, max_epochs + 1):
        first[e] = adapter(e, seed, learning_rate, rank)
        val_e[e] = score(f"epochs {e}", first[e])
    epochs = best_on_validation(val_e)
    say(f"epochs chosen on validation: {epochs}")

    def coordinate(name: str, start: Any, values: Sequence[Any], train: Callable[[Any], Any],
                   at_start: tuple[list[bool], Any]) -> tuple[Any, dict[Any, list[bool]], Any]:
        """One coordinate of the search: ``start`` (already trained and scored) and each of ``values``;
        the value right most often on validation (ties: ``start``), its outcomes and its adapter."""
        outcomes, trained = {start: at_start[0]}, {start: at_start[1]}
        for v in values:
            if v not in trained:
                trained[v] = train(v)
                outcomes[v] = score(f"{name} {v:g}", trained[v])
        best = max(outcomes, key=lambda v: (sum(outcomes[v]), v == start))
        if len(outcomes) > 1:
            say(f"{name} chosen on validation: {best:g}")
        return best, outcomes, trained[best]

    lr, val_lr, g = coordinate("learning rate", learning_rate, learning_rates,
                               lambda v: adapter(epochs, seed, v, rank), (val_e[epochs], first[epochs]))
    chosen_rank, val_r, g = coordinate("rank", rank, ranks, lambda v: adapter(epochs, seed, lr, v), (val_lr[lr], g))
    adapters = {seed: g}
    for i in range(1, seeds):
        adapters[seed + i] = adapter(epochs, seed + i, lr, chosen_rank)
    return SeededAdapters(epochs, val_e, adapters, lr, val_lr, chosen_rank, val_r)


def validation_table(result: Any, labels: Mapping[str, str]) -> "pd.DataFrame":
    """The settings an experiment chose on validation, one row per value tried: ``setting`` (the
    label of each key of ``labels``, in that order), ``value``, ``validation accuracy`` and
    ``chosen``. Reads ``result.extra["validation"][key]`` (value -> accuracy) and
    ``result.extra[key]`` (the chosen value), as the headline, jargon and form experiments write them.

    >>> from types import SimpleNamespace as R
    >>> validation_table(R(extra={"epochs": 2, "validation": {"epochs": {"1": 0.5, "2": 0.6}}}),
    ...                  {"epochs": "adapter epochs"}).values.tolist()
    [['adapter epochs', 1, 0.5, False], ['adapter epochs', 2, 0.6, True]]
    """
    import pandas as pd

    from ..errors import ConfigError

    rows = []
    for key, label in labels.items():
        if key not in result.extra.get("validation", {}) or key not in result.extra:
            raise ConfigError(f"the result records no validation choice {key!r}", field="labels")
        for value, acc in result.extra["validation"][key].items():
            v = float(value) if any(c in value for c in ".e") else int(value)
            rows.append({"setting": label, "value": v, "validation accuracy": acc,
                         "chosen": v == result.extra[key]})
    return pd.DataFrame(rows)


def choices_at_edge(result: Any, max_epochs: int) -> list[str]:
    """The validation choices of ``result`` (``extra["epochs"]``, ``["learning_rate"]``, ``["rank"]``)
    that lie at the edge of the range tried, in words: a search cannot say that a value beyond its
    range would not do better, and a page that reports the choice should say so.

    >>> from types import SimpleNamespace as R
    >>> choices_at_edge(R(extra={"epochs": 3, "learning_rate": 0.003, "rank": 16, "validation": {
    ...     "learning_rate": {"0.001": 0.5, "0.003": 0.7, "0.009": 0.6}, "rank": {"4": 0.6, "8": 0.7, "16": 0.9}}}), 3)
    ['3 epochs, the most tried', 'rank 16, the largest tried']
    """
    x = result.extra
    edges = [f"{x['epochs']} epochs, the most tried"] if max_epochs > 1 and x["epochs"] == max_epochs else []
    for what, key in (("learning rate", "learning_rate"), ("rank", "rank")):
        tried = [float(v) for v in x["validation"].get(key, {})]
        if len(tried) > 1 and float(x[key]) in (min(tried), max(tried)):
            edges.append(f"{what} {x[key]:g}, the {'largest' if float(x[key]) == max(tried) else 'smallest'} tried")
    return edges
