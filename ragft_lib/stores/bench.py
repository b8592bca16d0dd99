"""Measuring stores: embedding-like test vectors, one latency/recall loop, size arithmetic.

Used by ``benchmarks/bench_stores.py``, ``benchmarks/bench_retrieval.py`` and the chapters "When to
use RAG" and "Scaling out". :func:`embedding_like_vectors` is the one generator of test data;
:func:`search_quality` the one measurement loop (:func:`benchmark_store` and
:func:`benchmark_indexes` build stores and call it).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Sequence

from .._fields import require
from ..errors import ConfigError, StoreError
from .faiss import INDEX_KINDS, FaissStore
from .protocol import ChunkRecord, check_k

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["embedding_like_vectors", "clustered_vectors", "exact_neighbours", "store_bytes", "benchmark_store",
           "search_quality", "footprint", "BENCH_PARAMS", "benchmark_indexes"]


def embedding_like_vectors(n: int, d: int = 384, *, clusters: int = 2000, latent: int = 32, seed: int = 0,
                           block: int = 100_000) -> "np.ndarray":
    """``(n, d)`` float32 unit vectors shaped like sentence embeddings, for index benchmarks.

    Cluster centres (topics) + a spread inside a shared ``latent``-d subspace (within-topic cosine
    about 0.6, as for MiniLM) + small isotropic noise. Sentence embeddings are neither uniform on
    the sphere nor full-rank: they sit on a few dozen effective dimensions around topics, and
    uniform random vectors are a worst case for every graph index (recall@10 near 0.06 at the
    usual settings), so benchmarks use these. Same ``seed`` -> same data; another ``seed`` draws
    other vectors (around other topics) from the same distribution.

    >>> x = embedding_like_vectors(5, 8, clusters=2, latent=2)
    >>> x.shape, x.dtype.name, bool(abs((x * x).sum(1) - 1).max() < 1e-5)
    ((5, 8), 'float32', True)
    """
    import numpy as np

    n = require("n", n, "int", min=0)
    d, clusters, latent, block = (require(name, v, "int", min=1) for name, v in
                                  (("d", d), ("clusters", clusters), ("latent", latent), ("block", block)))
    if n == 0:
        return np.empty((0, d), dtype=np.float32)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    basis = rng.normal(size=(latent, d)).astype(np.float32) / np.sqrt(latent)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, block):
        m = min(block, n - s)
        x = centres[rng.integers(0, clusters, m)]
        x += (0.8 / np.sqrt(d)) * rng.normal(size=(m, latent)).astype(np.float32) @ basis
        x += (0.2 / np.sqrt(d)) * rng.normal(size=(m, d)).astype(np.float32)
        out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def clustered_vectors(n: int, d: int = 384, *, clusters: int = 2000, latent: int = 32, seed: int = 0,
                      block: int = 100_000) -> "np.ndarray":
    """:func:`embedding_like_vectors` under its older name, for at least one vector (``n >= 1``).

    >>> bool((clustered_vectors(3, 8, seed=1) == embedding_like_vectors(3, 8, seed=1)).all())
    True
    """
    require("n", n, "int", min=1)
    return embedding_like_vectors(n, d, clusters=clusters, latent=latent, seed=seed, block=block)


def exact_neighbours(vectors: "np.ndarray", queries: "np.ndarray", k: int = 10) -> "np.ndarray":
    """Row indices of the exact top-``k`` inner-product neighbours of each query (faiss brute force)."""
    import faiss
    import numpy as np

    _, idx = faiss.knn(np.ascontiguousarray(queries, np.float32), np.ascontiguousarray(vectors, np.float32),
                       check_k(k), metric=faiss.METRIC_INNER_PRODUCT)
    return idx


def store_bytes(store: Any) -> int | None:
    """What a store's vectors + index occupy: faiss in RAM, PostgreSQL on disk (table + TOAST + indexes)."""
    if isinstance(store, FaissStore):
        return store.memory_bytes()
    size = getattr(store, "size_bytes", None)
    return int(size()["total"]) if callable(size) else None


def benchmark_store(store: Any, vectors: "np.ndarray", queries: "np.ndarray", *, k: int = 10,
                    truth: "np.ndarray | None" = None, name: str | None = None,
                    search_threads: int | None = 1) -> dict[str, Any]:
    """Load ``vectors`` into an empty ``store`` and measure it; returns one row of a results table.

    ``build_s``: one :meth:`~ragft_lib.stores.VectorStore.add` of every vector (for a database:
    COPY + index build, inside one transaction). ``p50_ms`` / ``p99_ms`` / ``recall``: see
    :func:`search_quality`, with ``truth`` computed by :func:`exact_neighbours` if not given.
    ``bytes`` and ``bytes_per_vector``: :func:`store_bytes`. Chunk ids are ``"v<row>"``.

    faiss builds with all its OpenMP threads and, with ``search_threads=1`` (the default), searches
    on one: a database backend also answers one query in one process, and on a shared machine an
    OpenMP parallel region around a single query waits for descheduled threads (tens of ms).
    """
    import numpy as np

    k = check_k(k)
    if store.count():
        raise StoreError(f"{store!r} already holds {store.count()} chunks: benchmark an empty store")
    vecs = np.ascontiguousarray(vectors, np.float32)
    qs = np.ascontiguousarray(queries, np.float32)
    if truth is None:
        truth = exact_neighbours(vecs, qs, k)
    records = [ChunkRecord(f"v{i}", f"v{i}", "", "", 0, 0) for i in range(len(vecs))]
    t = time.perf_counter()
    store.add(records, vecs)
    build = time.perf_counter() - t
    del records
    nbytes = store_bytes(store)
    quality = search_quality(store, qs, truth, k=k, search_threads=search_threads)
    return {"store": name or type(store).__name__, "n": len(vecs), "build_s": build, **quality, "bytes": nbytes,
            "bytes_per_vector": (nbytes / len(vecs)) if nbytes and len(vecs) else None}


def search_quality(store: Any, queries: "np.ndarray", truth: "np.ndarray", *, k: int = 10,
                   search_threads: int | None = 1) -> dict[str, Any]:
    """p50 / p99 latency of one-query searches and recall@``k`` against ``truth`` (ids ``"v<row>"``).

    One :meth:`~ragft_lib.stores.VectorStore.search` per query, one query at a time (what a RAG
    request does); ``recall`` is the mean fraction of each query's exact top-``k`` (the rows of
    ``truth``) found. ``search_threads``: faiss OpenMP threads while searching (``None``: leave
    them as they are; see :func:`benchmark_store`).
    """
    import faiss
    import numpy as np

    k = check_k(k)
    qs = np.ascontiguousarray(queries, np.float32)
    if not len(qs):
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "recall": float("nan"), "queries": 0}
    threads = faiss.omp_get_max_threads()
    if search_threads:
        faiss.omp_set_num_threads(search_threads)
    lat, hits = [], 0
    try:
        for i in range(len(qs)):
            t = time.perf_counter()
            res = store.search(qs[i : i + 1], k)[0]
            lat.append(time.perf_counter() - t)
            hits += len({int(c[1:]) for c, _ in res} & set(truth[i, :k].tolist()))
    finally:
        faiss.omp_set_num_threads(threads)
    lat_ms = np.array(lat) * 1e3
    return {"p50_ms": float(np.percentile(lat_ms, 50)), "p99_ms": float(np.percentile(lat_ms, 99)),
            "recall": hits / (k * len(qs)), "queries": len(qs)}


def footprint(bytes_per_vector: float, sizes: Sequence[int] = (10_000_000, 100_000_000), *,
              node_gib: float = 256.0, usable: float = 0.7) -> list[dict[str, Any]]:
    """Extrapolate a measured ``bytes_per_vector`` to corpus sizes: the arithmetic of the chapter.

    For each size: ``gib`` = size x bytes_per_vector / 2**30, and ``nodes``, how many machines of
    ``node_gib`` GiB are needed when ``usable`` of it may hold the index (the rest is the OS, the
    query working set, a rebuild's second copy). An HNSW index is only fast in RAM, so a node holds
    ``node_gib x usable x 2**30 / bytes_per_vector`` vectors; past that, shard.

    >>> [round(r["gib"], 1) for r in footprint(1700, (10_000_000,))]
    [15.8]
    """
    bytes_per_vector = require("bytes_per_vector", bytes_per_vector, "float", min=0, min_exclusive=True)
    node_gib = require("node_gib", node_gib, "float", min=0, min_exclusive=True)
    usable = require("usable", usable, "float", min=0, min_exclusive=True, max=1)
    per_node = int(node_gib * usable * 2**30 / bytes_per_vector)
    return [{"vectors": int(n), "gib": n * bytes_per_vector / 2**30, "node_gib": node_gib,
             "vectors_per_node": per_node, "nodes": max(1, math.ceil(n / per_node))} for n in sizes]


#: Index parameters :func:`~ragft_lib.stores.benchmark_indexes` uses unless told otherwise (those of
#: ``benchmarks/bench_retrieval.py``'s 1M run; ``nlist`` is scaled to ~sqrt(n)).
BENCH_PARAMS: dict[str, dict[str, Any]] = {
    "flat": {},
    "hnsw": {"hnsw_m": 32, "ef_construction": 80, "ef_search": 64},
    "ivf": {"nprobe": 16},
    "ivfpq": {"nprobe": 16, "pq_m": 48},
}


def benchmark_indexes(
    sizes: Sequence[int],
    kinds: Sequence[str] = ("flat", "hnsw", "ivf", "ivfpq"),
    *,
    d: int = 384,
    k: int = 10,
    n_queries: int = 200,
    max_size: dict[str, int] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    progress: bool = False,
    search_threads: int | None = None,
) -> list[dict[str, Any]]:
    """Build each index kind over ``embedding_like_vectors(n)`` for each ``n`` and measure it.

    One row per (kind, n): ``build_s`` (adding all vectors, training included), ``memory_mib``
    (:meth:`~ragft_lib.stores.FaissStore.memory_bytes`), ``p50_ms`` / ``p99_ms`` of ``n_queries``
    single-query searches through :meth:`~ragft_lib.stores.FaissStore.search` (the code path a RAG
    answer takes) and ``recall_at_k`` against exact search: :func:`benchmark_store` on a fresh
    :class:`~ragft_lib.stores.FaissStore`. ``max_size`` skips a kind above a size (e.g.
    ``{"hnsw": 100_000}``: HNSW builds slowly on few cores). IVF kinds use ``nlist = sqrt(n)``
    rounded to a power of two unless ``params`` says otherwise. ``search_threads=None`` searches
    with faiss's threads as they are.

    >>> rows = benchmark_indexes([2000], ["flat"], n_queries=20)
    >>> rows[0]["kind"], rows[0]["n"], rows[0]["recall_at_k"]
    ('flat', 2000, 1.0)
    """
    for kind in kinds:
        if kind not in INDEX_KINDS or kind == "auto":
            raise ConfigError(f"must be among {INDEX_KINDS[1:]}, got {kind!r}", field="kinds")
    k = check_k(k)
    max_size = dict(max_size or {})
    chosen = {kind: {**BENCH_PARAMS[kind], **(params or {}).get(kind, {})} for kind in kinds}
    queries = embedding_like_vectors(n_queries, d, seed=seed + 1)
    rows: list[dict[str, Any]] = []
    plan = [(n, kind) for n in sizes for kind in kinds if n <= max_size.get(kind, n)]
    if progress:
        from tqdm.auto import tqdm

        plan = tqdm(plan, desc="indexes", unit="index")
    data: dict[int, Any] = {}
    truth: dict[int, Any] = {}
    for n, kind in plan:
        if n not in data:
            data.clear()
            truth.clear()
            data[n] = embedding_like_vectors(int(n), d, seed=seed)
            truth[n] = exact_neighbours(data[n], queries, k)
        p = dict(chosen[kind])
        if kind in ("ivf", "ivfpq") and "nlist" not in p:
            p["nlist"] = int(2 ** round(math.log2(math.sqrt(n))))
        store = FaissStore(kind, **p)
        row = benchmark_store(store, data[n], queries, k=k, truth=truth[n], search_threads=search_threads)
        rows.append({"kind": kind, "n": int(n), "build_s": row["build_s"], "memory_mib": row["bytes"] / 2**20,
                     "p50_ms": row["p50_ms"], "p99_ms": row["p99_ms"], "recall_at_k": round(row["recall"], 4),
                     "k": k, "params": p})
        store.close()
    return rows
