"""Where a :class:`~ragft_lib.retrieval.Retriever` keeps its vectors: stores behind one small protocol.

One concept per module, everything importable from here::

    from ragft_lib.stores import ChunkRecord, FaissStore, PgVectorStore, QdrantStore, VectorStore

* ``protocol``: :class:`VectorStore` (the protocol and its transactional semantics),
  :class:`ChunkRecord`, and the checks every store shares;
* ``faiss``: :class:`FaissStore` (the embedded default) and its :class:`FaissParams`;
* ``pgvector``: :class:`PgVectorStore` (PostgreSQL + pgvector) and :class:`PgVectorParams`;
* ``qdrant``: :class:`QdrantStore` (``qdrant-client``) and :class:`QdrantParams`;
* ``server``: :class:`ServerStore`, the base the two database-server stores share (credentials kept
  out of every message: :func:`redact_url`);
* ``bench``: :func:`embedding_like_vectors` (test data), :func:`search_quality` (the latency and
  recall loop), :func:`benchmark_store`, :func:`benchmark_indexes`, :func:`footprint`.

The database clients (``psycopg`` + ``pgvector``, ``qdrant-client``) are imported only when such a
store is made.
"""

from __future__ import annotations

from .server import ServerStore, redact_url
from .bench import (
    BENCH_PARAMS, benchmark_indexes, benchmark_store, clustered_vectors, embedding_like_vectors, exact_neighbours,
    footprint, search_quality, store_bytes,
)
from .faiss import AUTO_FLAT_MAX, AUTO_HNSW_MAX, FORMAT_VERSION, INDEX_KINDS, FaissParams, FaissStore
from .pgvector import PG_META_TABLE, PgVectorParams, PgVectorStore
from .protocol import ChunkRecord, HnswSearchParams, ReplaceStore, VectorStore, check_batch, check_k, check_queries, unique_ids
from .qdrant import QDRANT_NAMESPACE, QdrantParams, QdrantStore, qdrant_point_id

__all__ = [
    "ChunkRecord", "VectorStore", "ReplaceStore", "HnswSearchParams", "check_batch", "check_k", "check_queries", "unique_ids",
    "FaissStore", "FaissParams", "INDEX_KINDS", "AUTO_FLAT_MAX", "AUTO_HNSW_MAX", "FORMAT_VERSION",
    "ServerStore", "PgVectorStore", "PgVectorParams", "PG_META_TABLE", "redact_url",
    "QdrantStore", "QdrantParams", "QDRANT_NAMESPACE", "qdrant_point_id",
    "embedding_like_vectors", "clustered_vectors", "exact_neighbours", "store_bytes", "benchmark_store",
    "search_quality", "footprint", "BENCH_PARAMS", "benchmark_indexes",
]
