"""How the hybrid retriever normalises scores before fusing them: min-max (the library's), z-score
and divide-by-max, each with the document's dense score taken from its first chunk (``lead_weight``
1.0) or half first / half best chunk (0.5, the default), on the retrieval ablation's corpora.

Validation split by default: this explores, it chooses nothing (``--split test`` prints the test
figures of the same grid; the library's default was not changed by it). Scores are computed for
every document exactly, in numpy over the benchmark's cached MiniLM vectors, and reproduce the
library default's recall@1 (the row "library default" must equal the ablation's).

    PYTHONPATH=$PWD python benchmarks/bench_fusion_normalisation.py [--split validation]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from bench_retrieval_ablation import CORPORA, cached_encode
from ragft_lib.corpora import load_corpus
from ragft_lib.models import load_embedder
from ragft_lib.retrieval import EmbeddingCache, RetrievalConfig, Retriever

DEPTH = 40  # the retriever fuses the top 40 of each ranking (search_vector's depth for k <= 10)


def document_scores(name: str, split: str, emb, folder: Path) -> dict[str, np.ndarray]:
    """Per question x document: raw whole-document cosine, first-chunk and best-chunk cosine, BM25 (best chunk)."""
    c = load_corpus(name)
    qs, docs = c.split(split), c.documents
    ids = [d.id for d in docs]
    cache = EmbeddingCache(emb.name, emb.dimension, folder)
    r = Retriever.from_documents(docs, embedder=emb, cache=folder, index="flat",
                                 config=RetrievalConfig(mode="dense", per_document=False), progress=False)
    qv = cached_encode(emb, [q.text for q in qs], cache)
    raw = qv @ cached_encode(emb, [d.text for d in docs], cache).T
    cids = [cid for d in ids for cid in r._doc_chunks[d]]
    col = {cid: j for j, cid in enumerate(cids)}
    cs = qv @ np.asarray(r.store.vectors(cids), dtype=np.float32).T
    first = np.stack([cs[:, col[r._doc_chunks[d][0]]] for d in ids], 1)
    best = np.stack([cs[:, [col[x] for x in r._doc_chunks[d]]].max(1) for d in ids], 1)
    bm = np.zeros_like(raw)
    where = {d: j for j, d in enumerate(ids)}
    for i, q in enumerate(qs):
        for cid, s in r._bm25_index().search(q.text, len(cids)):
            j = where[r.document_of(cid)]
            bm[i, j] = max(bm[i, j], s)
    return {"raw": raw, "first": first, "best": best, "bm25": bm, "gold": np.array([where[q.doc_id] for q in qs])}


def normalised(scores: np.ndarray, how: str) -> np.ndarray:
    """Each row's top ``DEPTH`` scores normalised (``how``); the rest get the lowest normalised value."""
    out = np.zeros_like(scores)
    for i, s in enumerate(scores):
        top = np.argsort(-s)[:DEPTH]
        v = s[top]
        n = {"min-max": lambda: (v - v.min()) / (np.ptp(v) or 1.0),
             "z-score": lambda: (v - v.mean()) / (v.std() or 1.0),
             "divide by max": lambda: v / (v.max() or 1.0)}[how]()
        out[i] = n.min() if how == "z-score" else 0.0
        out[i, top] = n
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="validation", choices=("validation", "test"))
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ragft-bench-embeddings"))
    a = p.parse_args()
    emb = load_embedder()
    data = {}
    for name in CORPORA:
        try:
            data[name] = document_scores(name, a.split, emb, Path(a.cache))
        except Exception as e:  # a corpus whose Debian package is missing
            print(f"## {name}: SKIPPED ({e})")
    r1 = {n: float(np.mean(d["raw"].argmax(1) == d["gold"])) for n, d in data.items()}
    rows = []
    for lead in (0.5, 1.0):
        for how in ("min-max", "z-score", "divide by max"):
            for w in (0.6, 0.7, 0.8, 0.9):
                got = {}
                for n, d in data.items():
                    dense = lead * d["first"] + (1 - lead) * d["best"]
                    s = w * normalised(dense, how) + (1 - w) * normalised(d["bm25"], how)
                    got[n] = float(np.mean(s.argmax(1) == d["gold"]))
                name = f"lead {lead}, {how}, dense weight {w}" + (" (library default)" if (lead, how, w) == (0.5, "min-max", 0.7) else "")
                rows.append((float(np.mean(list(got.values()))), name, got))
    print(f"# Fusion normalisation, {a.split} split: recall@1 (points over raw whole-document dense)")
    print("raw dense: " + ", ".join(f"{n} {v:.3f}" for n, v in r1.items()))
    for mean, name, got in sorted(rows, key=lambda x: -x[0]):
        print(f"{name:52s} mean {mean:.3f} | " + " ".join(f"{n} {v:.3f} ({100 * (v - r1[n]):+.1f})" for n, v in got.items()))


if __name__ == "__main__":
    main()
