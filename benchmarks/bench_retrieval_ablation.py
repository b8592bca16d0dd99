"""Retrieval ablation on real question -> passage corpora, every row against raw dense in the same run.

    python benchmarks/bench_retrieval_ablation.py                     # all corpora, no fine-tuning
    python benchmarks/bench_retrieval_ablation.py --tune              # + the embedder tuned on each corpus
    python benchmarks/bench_retrieval_ablation.py --corpora debian-faq --json out.json
    python benchmarks/bench_retrieval_ablation.py --splits validation   # choose settings without seeing test

A corpus whose Debian package is missing is skipped with the loader's reason; the output and the
JSON say which corpora ran (``corpora_run``) and which were skipped (``skipped``). The ``lead``
rows score each document by ``lead_weight`` x its first chunk + the rest x its best chunk
(:class:`~ragft_lib.retrieval.RetrievalConfig`). The JSON also keeps, for the test split, every
question's outcome under raw dense and the default, and ``paired`` holds the paired intervals
(:func:`~ragft_lib.evaluate.paired_compare`) per corpus and pooled.

Corpora (``ragft_lib.corpora``): ``debian-faq`` (apt-get install debian-faq), ``python-faq``
(apt-get install python3.11-doc), ``pydoc-topics`` (ships with Python). Each has a seeded
validation and test split of its questions (disjoint); the documents are the same.

Baseline **raw dense**: the packaged MiniLM (``load_embedder()``) + ``faiss.IndexFlatIP`` over the
L2-normalised embeddings of whole documents, which the model truncates at 256 word pieces: what a
naive user gets. Every other row is a :class:`~ragft_lib.retrieval.Retriever` configuration (or,
for the BM25 tokenisation rows, bm25s with other tokenisers). Metrics per split: recall@1 and
recall@5 (gold document among the first 1 / 5 distinct documents), MRR over the first 10 distinct
documents, ``R@5 hits`` (gold among the first 5 hits as returned, what a RAG prompt with k=5
sees; several chunks of one document use up slots), and ``x R@1`` = recall@1 / raw dense's.

Selection: among the Retriever configurations (not the tuned embedder, which is an option with a
cost), the one with the best mean validation recall@1 over the corpora (ties: mean validation
MRR) is printed as "selected on validation" beside the library's ``DEFAULT_CONFIG``. The test
split is never used to choose anything.

Query time: raw dense (encode + flat search) against ``Retriever.search(q, k=5)`` with the
default configuration, per query, interleaved (order alternating), medians over all calls.
Results: benchmarks/RESULTS_retrieval.md; ``--json`` writes every figure (the book reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragft_lib.corpora import CORPORA, SPLITS, lexical_overlap, load_corpus  # noqa: E402
from ragft_lib.errors import DataError  # noqa: E402
from ragft_lib.retrieval import (  # noqa: E402
    DEFAULT_CONFIG, EmbeddingCache, Retriever, RetrievalConfig,
)

WEIGHTS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: ``lead_weight`` values (document score = lead_weight * first chunk + rest * best chunk) and the
#: fusion weights they are combined with (the grid was fixed before any test figure was printed).
LEAD_WEIGHTS = (0.5, 0.7, 1.0)
LEAD_FUSION_WEIGHTS = (0.6, 0.7, 0.8)
DEPTH = 10  # distinct documents ranked per question (MRR is over these)


def cached_encode(emb, texts: list[str], cache: EmbeddingCache) -> np.ndarray:
    found, missing = cache.get(texts)
    out = np.zeros((len(texts), emb.dimension), dtype=np.float32)
    for i, v in found.items():
        out[i] = v
    if missing:
        vecs = emb.encode([texts[i] for i in missing])
        out[missing] = vecs
        cache.put([texts[i] for i in missing], vecs)
    return out


def scores(ranked: list[list[str]], hits5: list[list[str]], gold: list[str]) -> dict[str, float]:
    r1 = float(np.mean([r[:1] == [g] for r, g in zip(ranked, gold)]))
    r5 = float(np.mean([g in r[:5] for r, g in zip(ranked, gold)]))
    mrr = float(np.mean([1.0 / (r.index(g) + 1) if g in r else 0.0 for r, g in zip(ranked, gold)]))
    h5 = float(np.mean([g in h for h, g in zip(hits5, gold)]))
    return {"r1": r1, "r5": r5, "mrr": mrr, "r5_hits": h5}


def distinct(doc_ids: list[str], k: int) -> list[str]:
    return list(dict.fromkeys(doc_ids))[:k]


def retriever_rows(r: Retriever, qvecs: np.ndarray, questions: list[str], configs: dict[str, RetrievalConfig]
                   ) -> dict[str, tuple[list[list[str]], list[list[str]]]]:
    """For each named config: (distinct documents ranked, doc ids of the first 5 hits) per question."""
    out = {}
    base = r.config
    for name, cfg in configs.items():
        r.config = cfg
        ranked, hits5 = [], []
        for q, v in zip(questions, qvecs):
            k = DEPTH if cfg.per_document else 4 * DEPTH
            scored = r.search_vector(v[None, :], k, query=q)
            docs = [r.document_of(c) for c, _ in scored]
            ranked.append(distinct(docs, DEPTH))
            hits5.append(docs[:5])
        out[name] = (ranked, hits5)
    r.config = base
    return out


def bm25_variants(r: Retriever, questions: list[str]) -> dict[str, tuple[list[list[str]], list[list[str]]]]:
    """BM25 over the same chunks with four tokenisations (the library uses stemming + stopwords)."""
    import bm25s
    import snowballstemmer

    recs = list(r.store.records())
    ids = [x.chunk_id for x in recs]
    out = {}
    for label, stem, stop in (("stem+stopwords", True, "en"), ("stopwords only", False, "en"),
                              ("stem only", True, None), ("neither", False, None)):
        st = snowballstemmer.stemmer("english") if stem else None
        model = bm25s.BM25()
        model.index(bm25s.tokenize([x.text for x in recs], stopwords=stop, stemmer=st, show_progress=False),
                    show_progress=False)
        ranked, hits5 = [], []
        for q in questions:
            qt = bm25s.tokenize([q], stopwords=stop, stemmer=st, show_progress=False, return_ids=False)
            if not qt[0]:
                ranked.append([]), hits5.append([])
                continue
            idx, sc = model.retrieve(qt, k=min(len(ids), 4 * DEPTH), show_progress=False, n_threads=1)
            scored = [(ids[int(i)], float(s)) for i, s in zip(idx[0], sc[0]) if s > 0]
            docs = distinct([r.document_of(c) for c, _ in scored], DEPTH)
            ranked.append(docs), hits5.append(docs[:5])
        out[f"bm25 tokenised: {label}"] = (ranked, hits5)
    return out


def timing(emb, index, doc_ids: list[str], r: Retriever, questions: list[str], rounds: int) -> dict[str, float]:
    """Median ms per query: raw dense (encode + flat search + ids) vs Retriever.search, interleaved."""
    model = emb.model

    def raw(q: str) -> list[str]:
        v = model.encode([q], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        _, ids = index.search(np.ascontiguousarray(v, dtype=np.float32), 5)
        return [doc_ids[i] for i in ids[0]]

    def ours(q: str) -> list:
        return r.search(q, k=5)

    for q in questions[:10]:
        raw(q), ours(q)
    t_raw, t_ours = [], []
    for rnd in range(rounds):
        for i, q in enumerate(questions):
            pair = ((raw, t_raw), (ours, t_ours))
            for fn, acc in (pair if (i + rnd) % 2 == 0 else pair[::-1]):
                t = time.perf_counter()
                fn(q)
                acc.append(time.perf_counter() - t)
    raw_ms, ours_ms = statistics.median(t_raw) * 1e3, statistics.median(t_ours) * 1e3
    return {"raw_ms": raw_ms, "default_ms": ours_ms, "ratio": ours_ms / raw_ms, "calls": len(t_raw),
            "ratio_of_totals": sum(t_ours) / sum(t_raw), "loadavg": list(os.getloadavg()), "cpus": os.cpu_count()}


def configs() -> dict[str, RetrievalConfig]:
    c = {
        "dense chunks (old default)": RetrievalConfig(mode="dense", per_document=False),
        "dense, per document (MaxP)": RetrievalConfig(mode="dense", per_document=True),
        "bm25, per document": RetrievalConfig(mode="bm25", per_document=True),
        "hybrid RRF chunks (old hybrid)": RetrievalConfig(mode="hybrid", per_document=False, fusion="rrf"),
        "hybrid RRF, per document": RetrievalConfig(mode="hybrid", per_document=True, fusion="rrf"),
    }
    for w in WEIGHTS:
        c[f"hybrid weighted w={w}, per document"] = RetrievalConfig(mode="hybrid", per_document=True, dense_weight=w)
    for w in (0.8, 0.9):
        c[f"hybrid weighted w={w}, chunks"] = RetrievalConfig(mode="hybrid", per_document=False, dense_weight=w)
    for lw in LEAD_WEIGHTS:  # a document's dense score: lw * its first chunk's + (1 - lw) * its best chunk's
        c[f"dense, lead {lw}, per document"] = RetrievalConfig(mode="dense", per_document=True, lead_weight=lw)
        for w in LEAD_FUSION_WEIGHTS:
            c[f"hybrid w={w}, lead {lw}, per document"] = RetrievalConfig(
                mode="hybrid", per_document=True, dense_weight=w, lead_weight=lw)
    return c


def title_configs() -> dict[str, RetrievalConfig]:
    c = {"title context: dense, per document": RetrievalConfig(mode="dense", per_document=True, context="title")}
    for w in (0.8, 0.9):
        c[f"title context: hybrid w={w}, per document"] = RetrievalConfig(
            mode="hybrid", per_document=True, dense_weight=w, context="title")
    return c


def run_corpus(name: str, emb, cache_folder: Path, tune: bool, rounds: int, which: tuple[str, ...] = SPLITS) -> dict:
    import faiss

    corpus = load_corpus(name)
    splits = {s: corpus.split(s) for s in which}
    cache = EmbeddingCache(emb.name, emb.dimension, cache_folder)
    docs = corpus.documents
    doc_ids = [d.id for d in docs]
    t0 = time.perf_counter()
    dv = cached_encode(emb, [d.text for d in docs], cache)
    index = faiss.IndexFlatIP(dv.shape[1])
    index.add(dv)
    base = RetrievalConfig(mode="dense", per_document=False)
    r_plain = Retriever.from_documents(docs, embedder=emb, cache=cache_folder, index="flat", config=base, progress=False)
    r_title = Retriever.from_documents(docs, embedder=emb, cache=cache_folder, index="flat",
                                       config=replace(base, context="title"), progress=False)
    build_s = time.perf_counter() - t0
    out = {"corpus": name, "documents": len(docs), "chunks": r_plain.num_chunks, "description": corpus.description,
           "build_s": build_s, "splits": {}, "lexical_overlap": lexical_overlap(corpus.questions, docs)}
    tuned = None
    if tune:
        from ragft_lib.embedder_tuning import TuningConfig, tune_embedder

        tuned = tune_embedder(docs, embedder=emb, config=TuningConfig(queries_per_chunk=2), progress=False)
        out["tuning"] = tuned.to_dict()
        tcache = EmbeddingCache(tuned.embedder.name, tuned.embedder.dimension, cache_folder)
        tdv = cached_encode(tuned.embedder, [d.text for d in docs], tcache)
        tindex = faiss.IndexFlatIP(tdv.shape[1])
        tindex.add(tdv)
        r_tuned = Retriever.from_documents(docs, embedder=tuned.embedder, cache=cache_folder, index="flat",
                                           config=DEFAULT_CONFIG, progress=False)
    for split, qs in splits.items():
        questions, gold = [q.text for q in qs], [q.doc_id for q in qs]
        qv = cached_encode(emb, questions, cache)
        rows: dict[str, dict[str, float]] = {}
        _, ids = index.search(qv, DEPTH)
        ranked = [[doc_ids[i] for i in row] for row in ids]
        rows["raw dense (baseline)"] = scores(ranked, [x[:5] for x in ranked], gold)
        raw_ranked = ranked
        for label, (rk, h5) in retriever_rows(r_plain, qv, questions, configs()).items():
            rows[label] = scores(rk, h5, gold)
        for label, (rk, h5) in bm25_variants(r_plain, questions).items():
            rows[label] = scores(rk, h5, gold)
        for label, (rk, h5) in retriever_rows(r_title, qv, questions, title_configs()).items():
            rows[label] = scores(rk, h5, gold)
        for label, (rk, h5) in retriever_rows(r_plain, qv, questions, {"library default": DEFAULT_CONFIG}).items():
            rows[label] = scores(rk, h5, gold)
            default_ranked = rk
        # per question (for paired intervals): gold ranked first / among the first 5, raw dense and default
        outcomes = {name: {"r1": [int(r[:1] == [g]) for r, g in zip(rk, gold)],
                           "r5": [int(g in r[:5]) for r, g in zip(rk, gold)]}
                    for name, rk in (("raw", raw_ranked), ("default", default_ranked))}
        if tuned is not None:
            tq = cached_encode(tuned.embedder, questions, tcache)
            _, ids = tindex.search(tq, DEPTH)
            ranked = [[doc_ids[i] for i in row] for row in ids]
            rows["tuned embedder: raw dense"] = scores(ranked, [x[:5] for x in ranked], gold)
            for label, (rk, h5) in retriever_rows(r_tuned, tq, questions, {"tuned embedder: library default": DEFAULT_CONFIG}).items():
                rows[label] = scores(rk, h5, gold)
        out["splits"][split] = {"n": len(qs), "rows": rows, "outcomes": outcomes}
    r_default = Retriever.from_documents(docs, embedder=emb, cache=cache_folder, index="flat", progress=False)
    out["timing"] = timing(emb, index, doc_ids, r_default, [q.text for q in splits[which[-1]]], rounds)
    return out


def print_corpus(res: dict) -> None:
    print(f"\n## {res['corpus']}: {res['documents']} documents, {res['chunks']} chunks; {res['description']}; "
          f"question words found in the gold passage: {res['lexical_overlap']:.2f}")
    if "tuning" in res:
        t = res["tuning"]
        print(f"   tuned embedder: {t['examples']} pseudo-query pairs, {t['steps']} steps, "
              f"{t['original_seconds']:.0f} s of training{' (loaded from cache)' if t['cached'] else ''}")
    for split in res["splits"]:
        s = res["splits"][split]
        base = s["rows"]["raw dense (baseline)"]
        print(f"\n   {split} ({s['n']} questions)")
        print(f"   {'configuration':44s} {'R@1':>6s} {'R@5':>6s} {'MRR':>6s} {'R@5hits':>7s} {'x R@1':>6s} {'dR@1':>6s}")
        for label, m in s["rows"].items():
            print(f"   {label:44s} {m['r1']:6.3f} {m['r5']:6.3f} {m['mrr']:6.3f} {m['r5_hits']:7.3f} "
                  f"{m['r1'] / base['r1']:6.2f} {m['r1'] - base['r1']:+6.3f}")
    t = res["timing"]
    print(f"\n   query time: raw dense {t['raw_ms']:.2f} ms | library default {t['default_ms']:.2f} ms | "
          f"ratio {t['ratio']:.2f}x (median of {t['calls']} calls each, interleaved; ratio of totals "
          f"{t['ratio_of_totals']:.2f}x; load average {t['loadavg'][0]:.1f} on {t['cpus']} CPUs)")


def select(results: list[dict]) -> tuple[str, dict[str, float]]:
    candidates = list(configs()) + list(title_configs())
    mean = {}
    for label in candidates:
        r1 = np.mean([res["splits"]["validation"]["rows"][label]["r1"] for res in results])
        mrr = np.mean([res["splits"]["validation"]["rows"][label]["mrr"] for res in results])
        mean[label] = (float(r1), float(mrr))
    best = max(candidates, key=lambda c: mean[c])
    return best, {"validation_r1": mean[best][0], "validation_mrr": mean[best][1]}


def paired_summary(results: list[dict]) -> dict[str, dict]:
    """Default vs raw dense per question, paired (Newcombe interval): each corpus's test split and all pooled."""
    from ragft_lib.evaluate import paired_compare

    out = {}
    for metric in ("r1", "r5"):
        pooled_a, pooled_b = [], []
        for res in results:
            oc = res["splits"].get("test", {}).get("outcomes")
            if not oc:
                continue
            a, b = oc["default"][metric], oc["raw"][metric]
            pooled_a += a
            pooled_b += b
            c = paired_compare(a, b, a="default", b="raw dense")
            out[f"{res['corpus']} test {metric}"] = {"difference": c.difference, "low": c.ci[0], "high": c.ci[1],
                                                     "n": len(a), "verdict": c.verdict}
        if pooled_a:
            c = paired_compare(pooled_a, pooled_b, a="default", b="raw dense")
            out[f"pooled test {metric}"] = {"difference": c.difference, "low": c.ci[0], "high": c.ci[1],
                                            "n": len(pooled_a), "verdict": c.verdict}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpora", default=",".join(CORPORA))
    p.add_argument("--tune", action="store_true", help="also fine-tune the embedder on each corpus (minutes each)")
    p.add_argument("--rounds", type=int, default=2, help="timing rounds over the test questions")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ragft-bench-embeddings"))
    p.add_argument("--splits", default=",".join(SPLITS),
                   help="validation,test (default) or validation alone, to choose settings without seeing test")
    p.add_argument("--json", default=None, help="write all figures to this JSON file")
    a = p.parse_args()
    import faiss

    from ragft_lib.models import load_embedder

    emb = load_embedder()
    print(f"# Retrieval ablation: {emb.name}, faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads); "
          f"library DEFAULT_CONFIG = {asdict(DEFAULT_CONFIG)}")
    results, skipped = [], {}
    for name in a.corpora.split(","):
        try:
            load_corpus(name)
        except DataError as exc:  # a Debian package not installed: say so and go on with the others
            skipped[name] = str(exc)
            print(f"\n## {name}: SKIPPED ({exc})")
            continue
        t = time.perf_counter()
        res = run_corpus(name, emb, Path(a.cache), a.tune, a.rounds, tuple(a.splits.split(",")))
        res["seconds"] = time.perf_counter() - t
        print_corpus(res)
        results.append(res)
    if not results:
        raise SystemExit("no corpus could be loaded: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    print(f"\ncorpora run: {', '.join(r['corpus'] for r in results)}"
          + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    best, means = select(results)
    default_label = next((label for label, cfg in {**configs(), **title_configs()}.items() if cfg == DEFAULT_CONFIG), None)
    print(f"\nselected on validation (best mean R@1 over {len(results)} corpora, ties by MRR): {best!r} "
          f"(mean validation R@1 {means['validation_r1']:.3f}, MRR {means['validation_mrr']:.3f}); "
          f"library DEFAULT_CONFIG is {default_label!r}")
    paired = paired_summary(results)
    for key, c in paired.items():
        print(f"paired, {key}: default - raw dense {c['difference'] * 100:+.1f} points "
              f"(95% CI {c['low'] * 100:+.1f} to {c['high'] * 100:+.1f}, n={c['n']}, {c['verdict']})")
    if a.json:
        Path(a.json).write_text(json.dumps({"default_config": asdict(DEFAULT_CONFIG), "selected": best,
                                            "default_label": default_label, "corpora": results,
                                            "corpora_run": [r["corpus"] for r in results], "skipped": skipped,
                                            "selection_means": means, "paired": paired}, indent=1))
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
