"""Large knowledge bases: does RAG keep answering the same questions as look-alike documents pile up?

The knowledge base grows from the world's documents to ``largest`` documents (1,000, 3,000,
10,000, ... on the way) by adding :func:`~ragft_lib.distractors.distractors`: invented towns,
companies and people written with the world's own templates, half of them named as
near-duplicates of real entities. The world's documents are unchanged, so every question keeps one
right document and one right answer.

At each size, on the same questions (the held-out phrasing of a stratified sample of facts, and a
second set that *describes* the entity instead of naming it,
:func:`~ragft_lib.distractors.described_questions`):

* retrieval quality — recall@1 and recall@``recall_k`` of the right document — through the
  experiments' pinned retriever (:func:`~ragft_lib.experiments.lab.experiment_retrieval`) over an
  exact (flat) faiss index and over two approximate ones (IVF, HNSW) whose ``nprobe`` /
  ``ef_search`` is the smallest of a grid whose dense recall@10 against exact search reaches
  ``target_recall`` on *validation* questions (other facts), shown with the recall it then gives
  on the test questions;
* answer accuracy — the base model with ``k`` retrieved chunks, scored by log-likelihood over
  ``options`` candidate answers (:func:`~ragft_lib.experiments.headline.mc_correct`): one forward
  pass per option, no generation. A prompt identical to one already scored (the same chunks
  retrieved at another size) is scored once;
* query latency — milliseconds per retrieval (query embedding, search, fetch), every retriever
  timed in turn on each question, ``timing_rounds`` times, with the load average beside it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .._fields import spec
from ..errors import ConfigError
from .cache import cached_json
from .lab import Lab, experiment_retrieval, stratified_sample
from .result import ExperimentResult, summarise
from .settings import (CachedSettings, ExperimentSettings, chunks_field, context_budget_field, generator_field, options_field,
                       seed_field)

__all__ = ["LargeKBSettings", "large_kb", "INDEXES", "kb_sizes", "kb_table", "kb_compare", "kb_latency"]

#: The faiss index kinds compared; ``flat`` is exact search, the reference for recall.
INDEXES = ("flat", "ivf", "hnsw")
_LADDER = (1_000, 3_000, 10_000, 30_000, 100_000)
_GRIDS = {"ivf": ("nprobe", (1, 2, 4, 8, 16, 32, 64, 128, 256)), "hnsw": ("ef_search", (16, 32, 64, 128, 256, 512))}
_VERSION = 1  # bump when the protocol changes (part of the cache key)


def kb_sizes(world_documents: int, largest: int) -> list[int]:
    """The knowledge-base sizes measured: the world's, then 1,000, 3,000, 10,000, ... up to ``largest``.

    >>> kb_sizes(140, 10_000)
    [140, 1000, 3000, 10000]
    """
    return [world_documents] + [n for n in _LADDER if world_documents < n < largest] + [largest]


@dataclass
class LargeKBSettings(CachedSettings):
    """Sizes of the large-knowledge-base experiment, validated when built.

    >>> LargeKBSettings(n_questions=20)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: n_questions: must be >= 100 questions, got 20
    """

    generator: str | None = generator_field()
    largest: int = spec(10_000, "int", label="Largest knowledge base", unit="documents", min=1_000, max=100_000,
                        help="Documents of the largest knowledge base; the sizes are the world's, 1,000, 3,000, ... up to it.")
    n_questions: int = spec(100, "int", label="Named questions", unit="questions", min=100,
                            help="Held-out questions that name their entity, asked at every size.")
    n_described: int = spec(100, "int", label="Described questions", unit="questions", min=0,
                            help="Questions that describe their entity instead of naming it, asked at every size.")
    n_validation: int = spec(50, "int", label="Validation questions", unit="questions", min=10,
                             help="Questions on other facts, used only to choose nprobe and ef_search.")
    options: int = options_field("Candidate answers per question (the true one and values of the same attribute).")
    k: int = chunks_field("Retrieved chunks in the RAG prompt (the headline experiment's k, chosen on its validation "
                          "questions).")
    recall_k: int = spec(5, "int", label="Recall depth", unit="documents", min=1, max=10,
                         help="Depth of the retrieval recall reported beside recall@1.")
    target_recall: float = spec(0.95, "float", label="Target recall", min=0.5, max=1,
                                help="Dense recall@10 against exact search an approximate index must reach on validation.")
    timing_rounds: int = spec(2, "int", label="Timing rounds", unit="rounds", min=1, max=20,
                              help="Times every retriever is timed on each named question.")
    near_share: float = spec(0.5, "float", label="Near-duplicate share", min=0, max=1,
                             help="Share of distractor names made as near-duplicates of real ones.")
    context_tokens: int = context_budget_field()
    seed: int = seed_field("Seed of the question samples and of the distractors.")

    EXPERIMENT: ClassVar[str] = "large_kb"
    VERSION: ClassVar[int] = _VERSION


def large_kb(settings: LargeKBSettings | None = None, *, use_cache: bool = True,
             progress: bool | None = None) -> ExperimentResult:
    """Run (or load from the result cache) the experiment of the module docstring.

    ``frame``: one row per (question set, approach, size, index, question) — ``questions``
    (``"named"`` / ``"described"``), ``approach`` (``"rag"``, or ``"closed-book"`` with size 0),
    ``size``, ``index``, ``fact_id``, ``attribute``, ``correct`` (multiple choice), ``rank`` (of the
    right document, 0 when not in the top ``recall_k``), ``r1``, ``rk`` and ``top1_near_duplicate``
    (the first document imitates the right entity's name). ``extra`` holds ``sizes``, ``index``
    (the nprobe / ef_search chosen per size, with the validation and test recall against exact
    search), ``latency`` (per size and index: p50 / p95 ms and each named question's mean ms),
    ``machine`` (CPU count, load average) and ``examples`` (distractor names beside the real ones).

    >>> res = large_kb()                      # doctest: +SKIP
    """
    s = settings or LargeKBSettings()
    if not isinstance(s, LargeKBSettings):
        raise ConfigError(f"must be a LargeKBSettings, got {type(s).__name__}", field="settings")
    data = cached_json("large_kb", s.key(), lambda: _run(s, progress).to_dict(), use_cache=use_cache)
    return ExperimentResult.from_dict(data)


def _pick(recalls: dict[int, float], target: float) -> int:
    """The smallest grid value whose recall reaches ``target`` (the largest when none does)."""
    ok = [v for v, r in sorted(recalls.items()) if r >= target]
    return ok[0] if ok else max(recalls)


def _overlap(a: Sequence[Sequence[tuple[str, float]]], b: Sequence[Sequence[tuple[str, float]]]) -> float:
    """Mean share of ``b``'s ids (exact search) that ``a`` also returns: recall against exact."""
    shares = [len({c for c, _ in x} & {c for c, _ in y}) / max(len(y), 1) for x, y in zip(a, b)]
    return sum(shares) / len(shares)


def _run(s: LargeKBSettings, progress: bool | None) -> ExperimentResult:
    import numpy as np
    import pandas as pd

    from ..display import progress_enabled
    from ..distractors import described_questions, distractors
    from ..evaluate import mc_options
    from ..rag import RAG_SYSTEM, RAGPipeline
    from ..retrieval import Retriever
    from .headline import mc_correct, mc_items

    show = progress_enabled(True if progress is None else progress)
    t0 = time.perf_counter()
    machine = {"cpu_count": os.cpu_count(), "loadavg_start": list(os.getloadavg())}

    def say(msg: str) -> None:
        if show:
            print(f"[large_kb {time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    lab = Lab.get(ExperimentSettings(generator=s.generator))
    gen, world = lab.generator, lab.world
    sizes = kb_sizes(len(world.documents), s.largest)
    more = distractors(world, s.largest - len(world.documents), seed=s.seed, near_share=s.near_share)
    docs = list(world.documents) + list(more.documents)
    near_of = {d.id: d.metadata.get("near_duplicate_of") for d in more.documents}
    pool = world.facts_in("train")
    named = stratified_sample(pool, s.n_questions, seed=s.seed)
    described_q = described_questions(pool, list(world.facts) + list(more.facts))
    described = stratified_sample([f for f in pool if f.id in described_q], s.n_described, seed=s.seed)
    taken = {f.id for f in named} | {f.id for f in described}
    val = stratified_sample([f for f in pool if f.id not in taken], s.n_validation, seed=s.seed + 1)
    if len(named) < s.n_questions or len(described) < s.n_described or len(val) < s.n_validation:
        raise ConfigError(f"the world has too few facts for {s.n_questions} named, {s.n_described} described and "
                          f"{s.n_validation} validation questions ({len(described_q)} facts can be described)",
                          field="n_described" if len(described) < s.n_described else "n_questions")
    sets = {"named": (named, [f.heldout_question for f in named], mc_items(named, world.facts, s.options, s.seed)),
            "described": (described, [described_q[f.id] for f in described],
                          [mc_options(f, world.facts, n=s.options, seed=s.seed) for f in described])}
    sets = {k: v for k, v in sets.items() if v[0]}
    val_vectors = lab.retriever().embedder.encode([f.question for f in val], progress=False)
    config = experiment_retrieval()
    timings: dict[str, float] = {}

    # 1. Build every retriever (embeddings come from the on-disk cache after the first build).
    retrievers: dict[tuple[int, str], Any] = {}
    index_rows: list[dict[str, Any]] = []
    set_vectors = {name: lab.retriever().embedder.encode(qs, progress=False) for name, (_, qs, _) in sets.items()}
    test_vectors = np.concatenate(list(set_vectors.values()))
    for n in sizes:
        t = time.perf_counter()
        for kind in INDEXES:
            retrievers[(n, kind)] = Retriever.from_documents(docs[:n], config=config, index=kind, progress=False)
        timings[f"build_{n}_s"] = time.perf_counter() - t
        flat = retrievers[(n, "flat")].store
        exact_val, exact_test = flat.search(val_vectors, 10), flat.search(test_vectors, 10)
        for kind, (param, grid) in _GRIDS.items():
            store = retrievers[(n, kind)].store
            limit = store.faiss_index.nlist if kind == "ivf" else max(grid)
            recalls = {}
            for v in [g for g in grid if g <= limit] or [limit]:
                store.set_search_params(**{param: v})
                recalls[v] = _overlap(store.search(val_vectors, 10), exact_val)
            chosen = _pick(recalls, s.target_recall)
            store.set_search_params(**{param: chosen})
            index_rows.append(dict(size=n, index=kind, param=param, value=chosen, val_recall=recalls[chosen],
                                   test_recall=_overlap(store.search(test_vectors, 10), exact_test),
                                   grid={str(k): r for k, r in recalls.items()},
                                   **({"nlist": int(limit)} if kind == "ivf" else {})))
        say(f"{n:,} documents indexed ({timings[f'build_{n}_s']:.0f} s)")

    # 2. Retrieval quality and the RAG prompts of every (set, retriever, question).
    pipe = RAGPipeline(lab.retriever(), gen, k=s.k, context_tokens=s.context_tokens, system=RAG_SYSTEM)
    rows: list[dict[str, Any]] = []
    prompts: dict[str, dict[tuple[int, str], list[str]]] = {name: {} for name in sets}
    for (n, kind), r in retrievers.items():
        for name, (facts, qs, _) in sets.items():
            ps = []
            for f, q, v in zip(facts, qs, set_vectors[name]):
                hits = r.fetch(r.search_vector(v[None], s.recall_k, query=q))  # search() less the query embedding
                ids = [h.doc_id for h in hits]
                rank = ids.index(f.doc_id) + 1 if f.doc_id in ids else 0
                ps.append(pipe.build_prompt(q, hits[:s.k])[0])
                rows.append(dict(questions=name, approach="rag", size=n, index=kind, fact_id=f.id,
                                 attribute=f.attribute, rank=rank, r1=rank == 1, rk=rank > 0,
                                 top1_near_duplicate=bool(ids) and near_of.get(ids[0]) == f.entity))
            prompts[name][(n, kind)] = ps
    say("retrieval scored")

    # 3. Answers: each distinct prompt scored once per question.
    correct: dict[tuple[str, int, str], bool] = {}
    for name, (facts, qs, items) in sets.items():
        todo: dict[tuple[str, int], tuple[str, Any]] = {}
        for ps in prompts[name].values():
            for i, p in enumerate(ps):
                todo.setdefault((p, i), (p, items[i]))
        keys = list(todo)
        ok = mc_correct(gen, [todo[k][0] for k in keys], [todo[k][1] for k in keys])
        got = dict(zip(keys, ok))
        for (n, kind), ps in prompts[name].items():
            for i, p in enumerate(ps):
                correct[(name, n, kind, i)] = got[(p, i)]
        closed = mc_correct(gen, [gen.format_prompt(q) for q in qs], items)
        for i, f in enumerate(facts):
            rows.append(dict(questions=name, approach="closed-book", size=0, index="none", fact_id=f.id,
                             attribute=f.attribute, rank=0, r1=False, rk=False, top1_near_duplicate=False,
                             correct=bool(closed[i])))
        timings[f"score_{name}_prompts"] = len(keys)
        say(f"{name}: {len(keys)} distinct prompts scored")
    position: dict[tuple[str, int, str], int] = {}
    for row in rows:
        if row["approach"] == "rag":
            key = (row["questions"], row["size"], row["index"])
            i = position.get(key, 0)
            position[key] = i + 1
            row["correct"] = bool(correct[(row["questions"], row["size"], row["index"], i)])

    # 4. Latency: every retriever in turn on each named question, timing_rounds times.
    named_qs = sets["named"][1]
    ms: dict[tuple[int, str], list[list[float]]] = {key: [[] for _ in named_qs] for key in retrievers}
    for _ in range(s.timing_rounds):
        for i, q in enumerate(named_qs):
            for key, r in retrievers.items():
                t = time.perf_counter()
                r.search(q, s.k)
                ms[key][i].append(1000 * (time.perf_counter() - t))
    latency = []
    for (n, kind), per_q in ms.items():
        flat_ms = [x for row in per_q for x in row]
        latency.append(dict(size=n, index=kind, p50_ms=float(np.percentile(flat_ms, 50)),
                            p95_ms=float(np.percentile(flat_ms, 95)),
                            per_question_ms=[float(np.mean(row)) for row in per_q]))
    machine["loadavg_end"] = list(os.getloadavg())
    timings["total_s"] = time.perf_counter() - t0
    say("latency timed")

    frame = pd.DataFrame(rows)
    summary = summarise(frame, by=["questions", "approach", "index", "size"])
    examples = [dict(distractor=str(d.metadata["entity"]), imitates=near_of[d.id]) for d in more.documents[:40]
                if near_of[d.id]][:8]
    extra = {"sizes": sizes, "index": index_rows, "latency": latency, "machine": machine, "examples": examples,
             "n": {name: len(v[0]) for name, v in sets.items()}, "n_validation": len(val), "chance": 1 / s.options,
             "near_duplicates": sum(1 for v in near_of.values() if v), "distractors": len(more.documents),
             "described_example": sets["described"][1][0] if "described" in sets else ""}
    return ExperimentResult("large_kb", frame, summary, timings, {}, s.to_dict(), extra)


# --------------------------------------------------------------------------------------------
# Reading the result
# --------------------------------------------------------------------------------------------


def kb_table(result: ExperimentResult, questions: str = "named") -> "Any":
    """One row per (size, index) of ``questions``: recall@1, recall@k and answer accuracy, each with
    its 95 % Wilson interval, and the share of questions whose first document imitates the right
    entity's name.

    >>> kb_table(large_kb())                   # doctest: +SKIP
    """
    import pandas as pd

    from ..evaluate import wilson_ci

    f = result.frame
    f = f[(f["questions"] == questions) & (f["approach"] == "rag")]
    if f.empty:
        raise ConfigError(f"no rows of question set {questions!r}", field="questions")
    out = []
    for (n, kind), g in f.groupby(["size", "index"], sort=False):
        row: dict[str, Any] = {"documents": int(n), "index": kind, "n": len(g)}
        for col, name in (("r1", "recall@1"), ("rk", f"recall@{result.settings['recall_k']}"), ("correct", "accuracy")):
            est, lo, hi = wilson_ci(g[col].astype(float).tolist())
            row.update({name: est, f"{name} lo": lo, f"{name} hi": hi})
        row["top-1 near-duplicate"] = float(g["top1_near_duplicate"].mean())
        out.append(row)
    return pd.DataFrame(out)


def kb_compare(result: ExperimentResult, questions: str = "named", *, index: str = "flat",
               size: int | None = None, against: int | None = None) -> "Any":
    """Answer accuracy at ``size`` (default: the largest) against ``against`` (default: the world's
    size) on the same questions: a :class:`~ragft_lib.evaluate.PairedComparison` (``against="closed-book"``
    is allowed as well)."""
    from ..evaluate import paired_compare

    sizes = result.extra["sizes"]
    size = sizes[-1] if size is None else size
    against = sizes[0] if against is None else against
    f = result.frame[result.frame["questions"] == questions]

    def outcomes(n: Any) -> "Any":
        if n == "closed-book":
            g = f[f["approach"] == "closed-book"]
        else:
            g = f[(f["approach"] == "rag") & (f["size"] == n) & (f["index"] == index)]
        if g.empty:
            raise ConfigError(f"no {questions!r} rows for {n!r} with index {index!r}", field="size")
        return g.set_index("fact_id")["correct"]

    a, b = outcomes(size), outcomes(against)
    name = (lambda n: "closed-book" if n == "closed-book" else f"rag, {n:,} documents")
    return paired_compare([float(a[i]) for i in a.index], [float(b[i]) for i in a.index], a=name(size), b=name(against))


def kb_latency(result: ExperimentResult, *, index: str = "flat", size: int | None = None,
               against: int | None = None) -> dict[str, float]:
    """Retrieval milliseconds per named question at ``size`` (default: the largest) and ``against``
    (default: the world's size) with ``index``: both medians (``ms``, ``ms_against``), both means
    (``mean_ms``, ``mean_ms_against``), the ratio of the means and the mean paired difference with
    its 95 % percentile-bootstrap interval over the questions."""
    from ..evaluate import paired_bootstrap_ci

    sizes = result.extra["sizes"]
    size = sizes[-1] if size is None else size
    against = sizes[0] if against is None else against
    rows = {(r["size"], r["index"]): r for r in result.extra["latency"]}
    for n in (size, against):
        if (n, index) not in rows:
            raise ConfigError(f"no latency measured for {n!r} documents with index {index!r}", field="size")
    a, b = rows[(size, index)]["per_question_ms"], rows[(against, index)]["per_question_ms"]
    d, lo, hi = paired_bootstrap_ci(a, b)
    return {"ms": rows[(size, index)]["p50_ms"], "ms_against": rows[(against, index)]["p50_ms"],
            "mean_ms": sum(a) / len(a), "mean_ms_against": sum(b) / len(b),
            "ratio": sum(a) / sum(b), "difference": d, "lo": lo, "hi": hi, "n": len(a)}
