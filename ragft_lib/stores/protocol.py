"""Where a :class:`~ragft_lib.retrieval.Retriever` keeps its vectors: the :class:`VectorStore` protocol.

The protocol is small on purpose so that a real database can implement it:
:class:`~ragft_lib.stores.FaissStore` is the embedded default,
:class:`~ragft_lib.stores.PgVectorStore` (PostgreSQL + pgvector) and
:class:`~ragft_lib.stores.QdrantStore` (``qdrant-client``) keep the vectors in a database server.

Data model
----------
Every vector travels with a :class:`ChunkRecord`: its chunk id (a string, the primary key), the
document id, the exact chunk text, the document's source, the character span
``[start, end)`` in the document text, and a JSON-serialisable metadata payload. A store also keeps
one small JSON document of its own (:meth:`VectorStore.metadata`): the Retriever records there the
embedder's name and dimension and its chunking settings, and checks them when it re-opens a store.

Transactional semantics (what every implementation must guarantee)
------------------------------------------------------------------
* :meth:`~VectorStore.add`, :meth:`~VectorStore.delete` and :meth:`~VectorStore.replace` are each
  one transaction: they either apply completely or raise and leave the store exactly as it was
  (a database implements them inside ``BEGIN ... COMMIT``; a failed COPY rolls back).
* They validate before writing: a chunk id that already exists (``add``), an unknown id
  (``delete``), a vector of the wrong dimension or with NaN/inf raises
  :class:`~ragft_lib.errors.StoreError` / :class:`~ragft_lib.errors.ConfigError` and writes nothing.
* ``replace(delete_ids, records, vectors)`` deletes and adds in the *same* transaction, so a reader
  never sees a document with its old chunks gone and its new chunks missing.
* Readers (``search``, ``get``, ``records``, ``count``) see only committed data.
* ``search`` returns ids and scores (cosine similarity on unit vectors, higher is better), best
  first; ``get`` fetches the records for those ids. The two calls are separate so that the
  "fetch chunks" stage of a RAG answer can be timed on its own.
* ``close()`` releases connections / memory; any later call raises ``StoreError``.

:class:`~ragft_lib.stores.FaissStore` persists with :meth:`~ragft_lib.stores.FaissStore.save`
(atomic, no pickle, checksummed) and :meth:`~ragft_lib.stores.FaissStore.load`; a database store
persists on every call.

>>> import numpy as np
>>> from ragft_lib.stores import FaissStore
>>> store = FaissStore(index="flat")
>>> store.add([ChunkRecord("a#0", "a", "Brindlemere lies on the Ostreva.", "a.md", 0, 32)],
...           np.eye(1, 4, dtype="float32"))
>>> store.search(np.eye(1, 4, dtype="float32"), k=1)
[[('a#0', 1.0)]]
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from .._fields import require
from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["ChunkRecord", "VectorStore", "ReplaceStore", "HnswSearchParams", "check_batch", "check_k", "check_queries",
           "unique_ids"]


@dataclass(frozen=True)
class ChunkRecord:
    """What travels with each vector: enough to cite the exact text without the original files.

    ``start``/``end`` are character offsets into the document text: ``doc.text[start:end] == text``.
    """

    chunk_id: str
    doc_id: str
    text: str
    source: str
    start: int
    end: int
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ChunkRecord":
        return cls(chunk_id=str(d["chunk_id"]), doc_id=str(d["doc_id"]), text=str(d["text"]),
                   source=str(d["source"]), start=int(d["start"]), end=int(d["end"]),
                   metadata=dict(d.get("metadata") or {}))


@runtime_checkable
class VectorStore(Protocol):
    """Vectors + their chunk records, with transactional writes (see the module docstring)."""

    def metadata(self) -> dict[str, Any]:
        """The store's own JSON document (``{}`` for a new store): embedder name, dimension, settings."""
        ...

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the store's JSON document (one transaction)."""
        ...

    def add(self, records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        """Insert a batch; any existing chunk id, bad vector or length mismatch -> error, nothing written."""
        ...

    def delete(self, ids: Iterable[str]) -> None:
        """Remove chunks by id; any unknown id -> error, nothing removed."""
        ...

    def replace(self, delete_ids: Iterable[str], records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        """Delete ``delete_ids`` and add ``records`` in one transaction (used for document updates)."""
        ...

    def search(self, queries: "np.ndarray", k: int) -> list[list[tuple[str, float]]]:
        """Top-``k`` ``(chunk_id, score)`` per query row, best first; fewer when the store holds fewer."""
        ...

    def get(self, ids: Sequence[str]) -> list[ChunkRecord]:
        """The records of ``ids``, in the same order; an unknown id -> error."""
        ...

    def records(self) -> Iterator[ChunkRecord]:
        """Every record (no vectors), in insertion order."""
        ...

    def count(self) -> int:
        """Number of chunks stored."""
        ...

    def close(self) -> None:
        """Release resources; later calls raise :class:`~ragft_lib.errors.StoreError`."""
        ...


# --------------------------------------------------------------------------------------------
# Validation shared by every store
# --------------------------------------------------------------------------------------------


def check_batch(records: Sequence[ChunkRecord], vectors: Any, dimension: int | None) -> "np.ndarray":
    """Validate one ``add`` batch; returns the vectors as C-contiguous float32 ``(n, d)``.

    Raises :class:`~ragft_lib.errors.ConfigError` on a malformed batch (no partial write can follow).
    """
    import numpy as np

    records = list(records)
    for i, r in enumerate(records):
        if not isinstance(r, ChunkRecord):
            raise ConfigError(f"item {i} must be a ChunkRecord, got {type(r).__name__}", field="records")
    try:
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"must be a float array, got {type(vectors).__name__}: {exc}", field="vectors") from None
    if vecs.ndim != 2:
        raise ConfigError(f"must be 2-D (n, dimension), got shape {vecs.shape}", field="vectors")
    if vecs.shape[0] != len(records):
        raise ConfigError(f"has {vecs.shape[0]} rows for {len(records)} records", field="vectors")
    if dimension is not None and vecs.shape[1] != dimension:
        raise ConfigError(f"dimension {vecs.shape[1]} does not match the store's {dimension}", field="vectors")
    if vecs.size and not np.isfinite(vecs).all():
        bad = int(np.flatnonzero(~np.isfinite(vecs).all(axis=1))[0])
        raise ConfigError(f"row {bad} (chunk {records[bad].chunk_id!r}) contains NaN or inf", field="vectors")
    seen: set[str] = set()
    dups = [r.chunk_id for r in records if r.chunk_id in seen or seen.add(r.chunk_id)]  # type: ignore[func-returns-value]
    if dups:
        raise ConfigError(f"duplicate chunk ids in one batch: {sorted(set(dups))[:5]}", field="records")
    try:
        for r in records:
            json.dumps(r.metadata)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"metadata of chunk {r.chunk_id!r} is not JSON-serialisable: {exc}", field="metadata") from None
    return vecs


def check_k(k: Any) -> int:
    """``k`` as an int >= 1 (numpy integers accepted, bools rejected); else a ConfigError naming ``k``.

    >>> check_k(0)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: k: must be >= 1, got 0
    """
    if type(k) is int and k > 0:  # the common case, on every search: no more work than this
        return k
    return require("k", k, "int", min=1)


def check_queries(queries: Any, dimension: int | None) -> "np.ndarray":
    """Query vectors as C-contiguous float32 ``(n, dimension)``; one vector may be 1-D."""
    import numpy as np

    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or (dimension is not None and q.shape[1] != dimension):
        raise ConfigError(f"must have shape (n, {dimension}), got {q.shape}", field="queries")
    return q


def unique_ids(ids: Iterable[str] | str) -> list[str]:
    """``ids`` as a list without repeats, in first-seen order (one string is one id)."""
    return list(dict.fromkeys([ids] if isinstance(ids, str) else ids))


class ReplaceStore:
    """``add`` and ``delete`` for a store whose one write path is an atomic ``replace``."""

    _dim: int | None

    @property
    def dimension(self) -> int | None:
        """Dimension of the stored vectors (``None`` while the store holds none and has no table/collection)."""
        return self._dim

    def replace(self, delete_ids: Iterable[str], records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        raise NotImplementedError

    def add(self, records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        self.replace((), records, vectors)

    def delete(self, ids: Iterable[str]) -> None:
        import numpy as np

        self.replace(ids, (), np.zeros((0, self._dim or 0), dtype=np.float32))


class HnswSearchParams:
    """``params`` and ``set_search_params`` of a database store whose ``config`` holds the three HNSW fields."""

    config: Any

    @property
    def params(self) -> Mapping[str, Any]:
        """A read-only view of the HNSW parameters; change ``ef_search`` with :meth:`set_search_params`."""
        c = self.config
        return MappingProxyType({"hnsw_m": c.hnsw_m, "ef_construction": c.ef_construction, "ef_search": c.ef_search})

    def set_search_params(self, *, ef_search: int | None = None) -> None:
        """Change HNSW's ``ef_search`` for later searches (``None``: unchanged), validated like the constructor's."""
        if ef_search is not None:
            self.config = dataclasses.replace(self.config, ef_search=ef_search)
