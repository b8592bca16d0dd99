"""Where a :class:`~ragft_lib.retrieval.Retriever` keeps its vectors: the :class:`VectorStore` protocol.

The protocol is small on purpose so that a real database can implement it:
:class:`FaissStore` is the embedded default, :class:`~ragft_lib.dbstores.PgVectorStore`
(PostgreSQL + pgvector) and :class:`~ragft_lib.dbstores.QdrantStore` (``qdrant-client``) keep the
vectors in a database server (defined in :mod:`ragft_lib.dbstores`, importable from here).

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

:class:`FaissStore` persists with :meth:`FaissStore.save` (atomic, no pickle, checksummed) and
:meth:`FaissStore.load`; a database store persists on every call.

>>> import numpy as np
>>> store = FaissStore(index="flat")
>>> store.add([ChunkRecord("a#0", "a", "Brindlemere lies on the Ostreva.", "a.md", 0, 32)],
...           np.eye(1, 4, dtype="float32"))
>>> store.search(np.eye(1, 4, dtype="float32"), k=1)
[[('a#0', 1.0)]]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol, Sequence, runtime_checkable

from .errors import ConfigError, IndexFormatError, StoreError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: Version of the on-disk layout written by :meth:`FaissStore.save`. Bump on incompatible change.
FORMAT_VERSION = 1
FORMAT_NAME = "ragft-faiss-store"

#: Index kinds :class:`FaissStore` builds; ``"auto"`` picks one from the size of the first batch.
INDEX_KINDS = ("auto", "flat", "hnsw", "ivf", "ivfpq")
_CTOR_PARAMS = ("hnsw_m", "ef_construction", "ef_search", "nlist", "nprobe", "pq_m", "rebuild_fraction")
#: ``"auto"`` uses exact search below this many vectors (flat search of 50k x 384 takes ~6 ms).
AUTO_FLAT_MAX = 50_000
#: ``"auto"`` uses HNSW up to this many vectors and IVF-PQ (compressed) above.
AUTO_HNSW_MAX = 5_000_000


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
    """``k`` must be a positive int (bools rejected)."""
    if isinstance(k, bool) or not isinstance(k, int):
        try:
            import numpy as np

            if isinstance(k, np.integer):
                k = int(k)
        except ImportError:  # pragma: no cover
            pass
    if isinstance(k, bool) or not isinstance(k, int):
        raise ConfigError(f"must be a positive integer, got {k!r}", field="k")
    if k <= 0:
        raise ConfigError(f"must be > 0, got {k}", field="k")
    return k


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

    def replace(self, delete_ids: Iterable[str], records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        raise NotImplementedError

    def add(self, records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        self.replace((), records, vectors)

    def delete(self, ids: Iterable[str]) -> None:
        import numpy as np

        self.replace(ids, (), np.zeros((0, self._dim or 0), dtype=np.float32))


# --------------------------------------------------------------------------------------------
# Atomic files
# --------------------------------------------------------------------------------------------


def _write_bytes(path: Path, data: bytes | memoryview) -> str:
    """Write ``data`` to ``path`` (fsynced) and return its sha256. Every file of a save goes through here."""
    h = hashlib.sha256()
    view = memoryview(data).cast("B")
    step = 1 << 24
    with open(path, "wb") as f:
        for i in range(0, len(view), step):
            piece = view[i : i + step]
            f.write(piece)
            h.update(piece)
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# FaissStore
# --------------------------------------------------------------------------------------------


class FaissStore(ReplaceStore):
    """The embedded default :class:`VectorStore`: a faiss index in memory, saved to a folder.

    ``index`` is one of :data:`INDEX_KINDS`:

    * ``"flat"`` - exact inner-product search (``IndexFlatIP``); the reference for recall.
    * ``"hnsw"`` - ``IndexHNSWFlat`` graph (``hnsw_m`` links, ``ef_construction``, ``ef_search``).
      HNSW cannot remove vectors: a delete marks the id as a *tombstone*, searches skip tombstones
      with a faiss ``IDSelector`` (exact results, no over-fetching), and once tombstones exceed
      ``rebuild_fraction`` of the index the live vectors are re-inserted into a fresh graph
      (:meth:`compact`; HNSW-Flat keeps exact vectors, so nothing is lost).
    * ``"ivf"`` - ``IndexIVFFlat`` (``nlist`` lists, ``nprobe`` probed), trained on the first batch.
    * ``"ivfpq"`` - ``IndexIVFPQ`` (``pq_m`` sub-quantisers x 8 bits: 48 bytes per 384-d vector
      instead of 1,536; scores are approximate).
    * ``"auto"`` - flat below :data:`AUTO_FLAT_MAX` vectors, HNSW below :data:`AUTO_HNSW_MAX`,
      IVF-PQ above, decided by the size of the first batch added.

    Flat and HNSW sit inside ``IndexIDMap2``; IVF kinds keep ids in their inverted lists (with a
    hash-table direct map). Either way faiss ids are stable int64s, never reused, and flat / IVF
    remove with ``remove_ids``. Vectors are expected L2-normalised (cosine = inner
    product), as :class:`~ragft_lib.models.Embedder` returns them.
    """

    def __init__(
        self,
        index: str = "auto",
        *,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        nlist: int | None = None,
        nprobe: int = 16,
        pq_m: int | None = None,
        rebuild_fraction: float = 0.2,
    ):
        if index not in INDEX_KINDS:
            raise ConfigError(f"must be one of {INDEX_KINDS}, got {index!r}", field="index")
        for name, value in (("hnsw_m", hnsw_m), ("ef_construction", ef_construction), ("ef_search", ef_search),
                            ("nprobe", nprobe)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"must be a positive integer, got {value!r}", field=name)
        if nlist is not None and (not isinstance(nlist, int) or nlist <= 0):
            raise ConfigError(f"must be a positive integer or None, got {nlist!r}", field="nlist")
        if pq_m is not None and (not isinstance(pq_m, int) or pq_m <= 0):
            raise ConfigError(f"must be a positive integer or None, got {pq_m!r}", field="pq_m")
        if not (0.0 < rebuild_fraction <= 1.0):
            raise ConfigError(f"must be in (0, 1], got {rebuild_fraction!r}", field="rebuild_fraction")
        self.requested_index = index
        self.params: dict[str, Any] = dict(hnsw_m=hnsw_m, ef_construction=ef_construction, ef_search=ef_search,
                                           nlist=nlist, nprobe=nprobe, pq_m=pq_m, rebuild_fraction=rebuild_fraction)
        self.kind: str | None = None if index == "auto" else index
        self._index: Any = None  # faiss.IndexIDMap2, created on the first add
        self._dim: int | None = None
        self._records: dict[int, ChunkRecord] = {}  # faiss id -> record (live only)
        self._ids: dict[str, int] = {}  # chunk id -> faiss id
        self._tombstones: set[int] = set()
        self._selector: Any = None  # cached IDSelectorNot over the tombstones
        self._next_id = 0
        self._meta: dict[str, Any] = {}
        self._closed = False
        self._lock = threading.RLock()
        self.path: Path | None = None

    # -- info ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"FaissStore(index={self.kind or 'auto'!r}, count={len(self._records)}, dimension={self._dim}{where})"

    @property
    def dimension(self) -> int | None:
        return self._dim

    @property
    def faiss_index(self) -> Any:
        """The underlying faiss index (``None`` before the first add). Read-only use please."""
        return self._index

    def memory_bytes(self) -> int:
        """Size of the serialised faiss index (vectors + graph / lists), i.e. its RAM footprint."""
        import faiss

        self._check_open()
        if self._index is None:
            return 0
        return int(faiss.serialize_index(self._index).nbytes)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this FaissStore is closed")

    # -- protocol ------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        self._check_open()
        return json.loads(json.dumps(self._meta))

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        self._check_open()
        try:
            self._meta = json.loads(json.dumps(metadata))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"must be JSON-serialisable: {exc}", field="metadata") from None

    def count(self) -> int:
        self._check_open()
        return len(self._records)

    def close(self) -> None:
        self._index = None
        self._records = {}
        self._ids = {}
        self._closed = True

    def records(self) -> Iterator[ChunkRecord]:
        self._check_open()
        for fid in sorted(self._records):
            yield self._records[fid]

    def get(self, ids: Sequence[str]) -> list[ChunkRecord]:
        self._check_open()
        try:
            return [self._records[self._ids[i]] for i in ids]
        except KeyError as exc:
            raise StoreError(f"unknown chunk id {exc.args[0]!r}") from None

    def replace(self, delete_ids: Iterable[str], records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        import numpy as np

        self._check_open()
        with self._lock:
            records = list(records)
            delete_ids = unique_ids(delete_ids)
            vecs = check_batch(records, vectors, self._dim if records else None)
            unknown = [i for i in delete_ids if i not in self._ids]
            if unknown:
                raise StoreError(f"cannot delete unknown chunk ids {unknown[:5]}{' ...' if len(unknown) > 5 else ''}: nothing was changed")
            removing = set(delete_ids)
            clash = [r.chunk_id for r in records if r.chunk_id in self._ids and r.chunk_id not in removing]
            if clash:
                raise StoreError(f"chunk ids already stored: {clash[:5]}{' ...' if len(clash) > 5 else ''}: nothing was changed")
            if self._index is None and records:
                self._create(vecs)
            new_fids = np.arange(self._next_id, self._next_id + len(records), dtype=np.int64)
            old_fids = np.array([self._ids[i] for i in delete_ids], dtype=np.int64)
            # faiss first (the step that can fail); python maps only after it succeeded.
            if len(records):
                try:
                    self._index.add_with_ids(vecs, new_fids)
                except Exception as exc:  # pragma: no cover - out of memory and the like
                    self._drop_fids(new_fids, ignore_missing=True)
                    raise StoreError(f"faiss could not add {len(records)} vectors: {exc}") from None
            if len(old_fids):
                try:
                    self._drop_fids(old_fids)
                except Exception as exc:  # pragma: no cover - roll the new vectors back
                    self._drop_fids(new_fids, ignore_missing=True)
                    raise StoreError(f"faiss could not remove {len(old_fids)} vectors: {exc}") from None
            for i in delete_ids:
                del self._records[self._ids.pop(i)]
            for fid, rec in zip(new_fids.tolist(), records):
                self._records[fid] = rec
                self._ids[rec.chunk_id] = fid
            self._next_id += len(records)
            if self.kind == "hnsw" and len(self._tombstones) > self.params["rebuild_fraction"] * max(1, self._index.ntotal):
                self.compact()

    def search(self, queries: "np.ndarray", k: int) -> list[list[tuple[str, float]]]:
        import faiss
        import numpy as np

        self._check_open()
        k = check_k(k)
        q = check_queries(queries, self._dim)
        n = len(self._records)
        if self._index is None or n == 0:
            return [[] for _ in range(len(q))]
        k = min(k, n)
        params = None
        if self.kind == "hnsw":
            # Building a SWIG parameter object costs more than the rest of the Python path: reuse it
            # while ef and the tombstone selector are unchanged (faiss only reads it).
            key = (max(self.params["ef_search"], k), id(self._selector) if self._tombstones else None)
            cached = getattr(self, "_hnsw_params", None)
            if cached is None or cached[0] != key:
                params = faiss.SearchParametersHNSW(efSearch=key[0])
                if self._tombstones:
                    params.sel = self._selector
                self._hnsw_params = (key, params, self._selector)  # keeps the selector alive with it
            params = self._hnsw_params[1]
        elif self.kind in ("ivf", "ivfpq"):
            params = faiss.SearchParametersIVF(nprobe=self.params["nprobe"])
        with self._lock:
            scores, fids = self._index.search(q, k, params=params) if params is not None else self._index.search(q, k)
        recs = self._records
        out: list[list[tuple[str, float]]] = []
        for srow, irow in zip(scores.tolist(), fids.tolist()):
            out.append([(recs[f].chunk_id, s) for s, f in zip(srow, irow) if f >= 0 and f in recs])
        return out

    # -- faiss specifics -----------------------------------------------------------------
    def _create(self, vecs: "np.ndarray") -> None:
        import faiss

        n, d = vecs.shape
        kind = self.kind
        if kind is None:
            kind = "flat" if n < AUTO_FLAT_MAX else "hnsw" if n < AUTO_HNSW_MAX else "ivfpq"
        p = self.params
        if kind == "flat":
            base = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            base = faiss.IndexHNSWFlat(d, p["hnsw_m"], faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = p["ef_construction"]
            base.hnsw.efSearch = p["ef_search"]
        else:
            nlist = p["nlist"] or max(1, min(int(4 * math.sqrt(n)), n // 39))
            quantizer = faiss.IndexFlatIP(d)
            if kind == "ivf":
                base = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                pq_m = p["pq_m"] or next(m for m in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if d % m == 0)
                if d % pq_m:
                    raise ConfigError(f"must divide the dimension {d}, got {pq_m}", field="pq_m")
                # 8-bit codes need 39 x 256 training points; smaller first batches get coarser codes.
                nbits = 8 if n >= 39 * 256 else 6 if n >= 39 * 64 else 4
                p["pq_nbits"] = nbits
                base = faiss.IndexIVFPQ(quantizer, d, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT)
            if n < nlist:
                raise ConfigError(f"{kind} with nlist={nlist} needs at least {nlist} vectors in the first batch, got {n}",
                                  field="nlist")
            import numpy as np

            train = vecs
            if n > 256 * nlist:  # faiss samples 256 points per centroid anyway; do it ourselves, reproducibly
                rng = np.random.default_rng(0)
                train = vecs[np.sort(rng.choice(n, 256 * nlist, replace=False))]
            base.train(train)
            base.nprobe = p["nprobe"]
            # IVF keeps ids itself (an IDMap2 around it breaks remove_ids); a hash-table direct map
            # lets it reconstruct and remove by id.
            base.set_direct_map_type(faiss.DirectMap.Hashtable)
            p["nlist"] = nlist
        self.kind = kind
        self._dim = d
        if kind in ("ivf", "ivfpq"):
            self._index = base
            self._base = quantizer  # the IVF index does not own its python-made quantizer
        else:
            self._index = faiss.IndexIDMap2(base)
            self._base = base  # IDMap2 does not own it

    def _drop_fids(self, fids: "np.ndarray", ignore_missing: bool = False) -> None:
        import faiss
        import numpy as np

        if not len(fids):
            return
        if self.kind == "hnsw":
            self._tombstones.update(int(f) for f in fids)
            self._refresh_selector()
        else:
            fids = np.ascontiguousarray(fids, dtype=np.int64)
            removed = self._index.remove_ids(faiss.IDSelectorArray(len(fids), faiss.swig_ptr(fids)))
            if removed != len(fids) and not ignore_missing:  # pragma: no cover - maps out of sync
                raise StoreError(f"faiss removed {removed} of {len(fids)} vectors; the store is inconsistent")

    def _refresh_selector(self) -> None:
        import faiss
        import numpy as np

        if self._tombstones:
            batch = faiss.IDSelectorBatch(np.fromiter(self._tombstones, dtype=np.int64))
            self._selector = faiss.IDSelectorNot(batch)
            self._selector_batch = batch  # the C++ selector points at it: keep it alive
        else:
            self._selector = None

    def compact(self) -> None:
        """Rebuild an HNSW graph without its tombstones (no-op for other kinds or without tombstones)."""
        import numpy as np

        self._check_open()
        if self.kind != "hnsw" or not self._tombstones:
            return
        with self._lock:
            fids = np.array(sorted(self._records), dtype=np.int64)
            vecs = self._index.reconstruct_batch(fids) if len(fids) else np.zeros((0, self._dim), np.float32)
            old_index, old_base = self._index, self._base
            self._index = None
            try:
                self._create(vecs if len(fids) else np.zeros((1, self._dim), np.float32))
                if len(fids):
                    self._index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), fids)
            except BaseException:
                self._index, self._base = old_index, old_base
                raise
            self._tombstones = set()
            self._selector = None

    def vectors(self, ids: Sequence[str]) -> "np.ndarray":
        """The stored vectors of ``ids`` (exact for flat/HNSW/IVF, decoded approximations for IVF-PQ)."""
        import numpy as np

        self._check_open()
        try:
            fids = np.array([self._ids[i] for i in ids], dtype=np.int64)
        except KeyError as exc:
            raise StoreError(f"unknown chunk id {exc.args[0]!r}") from None
        if not len(fids):
            return np.zeros((0, self._dim or 0), np.float32)
        return self._index.reconstruct_batch(fids)

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the store to folder ``path`` atomically; returns the folder.

        Layout: ``path/CURRENT`` names a version folder ``path/v-*/`` holding ``index.faiss``
        (faiss's own binary format), ``records.jsonl`` and ``manifest.json`` (format version, faiss
        version, settings, metadata, sha256 of every file). A new version is written completely and
        fsynced before ``CURRENT`` is switched with an atomic rename, so a crash at any moment
        leaves the previous version loadable; older versions are deleted afterwards.
        """
        import faiss

        self._check_open()
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"{root} exists and is not a folder", field="path")
        if root.is_dir() and any(root.iterdir()) and not (root / "CURRENT").exists():
            raise ConfigError(f"{root} is a non-empty folder that holds no ragft index: refusing to write into it",
                              field="path")
        root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            version = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
            tmp = root / f".tmp-{version}"
            tmp.mkdir()
            try:
                files: dict[str, dict[str, Any]] = {}
                if self._index is not None:
                    data = faiss.serialize_index(self._index)
                    files["index.faiss"] = {"sha256": _write_bytes(tmp / "index.faiss", data.data), "bytes": int(data.nbytes)}
                    del data
                lines = []
                for fid in sorted(self._records):
                    d = self._records[fid].to_dict()
                    d["fid"] = fid
                    lines.append(json.dumps(d, ensure_ascii=False))
                blob = ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
                files["records.jsonl"] = {"sha256": _write_bytes(tmp / "records.jsonl", blob), "bytes": len(blob)}
                manifest = {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "faiss_version": faiss.__version__,
                    "index": self.kind,
                    "requested_index": self.requested_index,
                    "params": self.params,
                    "dimension": self._dim,
                    "count": len(self._records),
                    "next_id": self._next_id,
                    "tombstones": sorted(self._tombstones),
                    "metadata": self._meta,
                    "files": files,
                    "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                _write_bytes(tmp / "manifest.json", json.dumps(manifest, indent=1).encode("utf-8"))
                _fsync_dir(tmp)
                os.replace(tmp, root / version)
                _write_bytes(root / ".CURRENT.tmp", f"{version}\n".encode())
                os.replace(root / ".CURRENT.tmp", root / "CURRENT")  # the commit point
                _fsync_dir(root)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.rmtree(root / version, ignore_errors=True) if _current_version(root) != version else None
                raise
            for old in root.iterdir():  # older versions and leftovers of crashed saves
                if old.name != version and (old.name.startswith("v-") or old.name.startswith(".tmp-")) and old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
            self.path = root
        return root

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FaissStore":
        """Read a folder written by :meth:`save`; any damage raises :class:`~ragft_lib.errors.IndexFormatError` naming the file."""
        import faiss
        import numpy as np

        root = Path(path)
        if not root.is_dir():
            raise IndexFormatError(f"{root}: no such index folder")
        version = _current_version(root)
        if version is None:
            raise IndexFormatError(f"{root}: not a ragft index folder (no CURRENT file)")
        folder = root / version
        mpath = folder / "manifest.json"
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexFormatError(f"{mpath}: missing (CURRENT names version {version!r})") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexFormatError(f"{mpath}: unreadable or not JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise IndexFormatError(f"{mpath}: not a {FORMAT_NAME} manifest (format={manifest.get('format') if isinstance(manifest, dict) else None!r})")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(f"{mpath}: format_version {manifest.get('format_version')!r}; this ragft_lib reads "
                                   f"version {FORMAT_VERSION} only: rebuild the index with Retriever.from_documents")
        try:
            files = manifest["files"]
            for name, info in files.items():
                fpath = folder / name
                if not fpath.is_file():
                    raise IndexFormatError(f"{fpath}: missing")
                if fpath.stat().st_size != info["bytes"] or _sha256_file(fpath) != info["sha256"]:
                    raise IndexFormatError(f"{fpath}: corrupt (size or sha256 differs from the manifest)")
            store = cls(manifest.get("requested_index") or "auto",
                        **{k: v for k, v in manifest["params"].items() if k in _CTOR_PARAMS})
            store.kind = manifest["index"]
            store._dim = manifest["dimension"]
            store._next_id = int(manifest["next_id"])
            store._meta = manifest.get("metadata") or {}
            store.params.update(manifest["params"])
        except IndexFormatError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
            raise IndexFormatError(f"{mpath}: malformed manifest ({type(exc).__name__}: {exc})") from None
        rpath = folder / "records.jsonl"
        with open(rpath, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    d = json.loads(line)
                    fid = int(d.pop("fid"))
                    rec = ChunkRecord.from_dict(d)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise IndexFormatError(f"{rpath}:{lineno}: bad record ({type(exc).__name__}: {exc})") from None
                store._records[fid] = rec
                store._ids[rec.chunk_id] = fid
        if "index.faiss" in files:
            ipath = folder / "index.faiss"
            try:
                index = faiss.deserialize_index(np.fromfile(ipath, dtype=np.uint8))
            except Exception as exc:  # faiss raises RuntimeError with a C++ message
                raise IndexFormatError(f"{ipath}: faiss cannot read it ({str(exc).splitlines()[0][:200]})") from None
            if index.d != store._dim:
                raise IndexFormatError(f"{ipath}: dimension {index.d} but manifest says {store._dim}")
            store._index = index
            store._base = None
            store._tombstones = set(int(t) for t in manifest.get("tombstones", []))
            store._refresh_selector()
            live = index.ntotal - len(store._tombstones)
            if live != len(store._records):
                raise IndexFormatError(f"{ipath}: holds {live} live vectors but {rpath.name} has {len(store._records)} records")
        elif store._records:
            raise IndexFormatError(f"{folder}: {len(store._records)} records but no index.faiss")
        if manifest.get("count") != len(store._records):
            raise IndexFormatError(f"{mpath}: count {manifest.get('count')} but {rpath.name} has {len(store._records)} records")
        store.path = root
        return store


# --------------------------------------------------------------------------------------------
# Measuring stores (benchmarks/bench_stores.py and the "Scaling out" chapter)
# --------------------------------------------------------------------------------------------


def embedding_like_vectors(n: int, d: int = 384, *, clusters: int = 2000, latent: int = 32, seed: int = 0,
                           block: int = 100_000) -> "np.ndarray":
    """``(n, d)`` float32 unit vectors shaped like sentence embeddings, for index benchmarks.

    Cluster centres (topics) + a spread inside a shared ``latent``-d subspace (within-topic cosine
    about 0.6, as for MiniLM) + small isotropic noise. Sentence embeddings are neither uniform on
    the sphere nor full-rank, and uniform random vectors are a worst case for every graph index
    (recall@10 near 0.06 at the usual settings), so benchmarks use these. Same ``seed`` -> same data.

    >>> x = embedding_like_vectors(5, 8, clusters=2, latent=2)
    >>> x.shape, bool(abs(float((x * x).sum(1).mean()) - 1) < 1e-5)
    ((5, 8), True)
    """
    import numpy as np

    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"must be a non-negative integer, got {n!r}", field="n")
    if n == 0:
        return np.empty((0, d), dtype=np.float32)
    # One generator for both names: the same topic + low-rank model (see clustered_vectors).
    return clustered_vectors(n, d, clusters=clusters, latent=latent, seed=seed, block=block)


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

    ``build_s``: one :meth:`VectorStore.add` of every vector (for a database: COPY + index build,
    inside one transaction). ``p50_ms`` / ``p99_ms``: one :meth:`VectorStore.search` per query, one
    query at a time (what a RAG request does). ``recall``: mean fraction of the exact top-``k``
    (``truth``, computed with :func:`exact_neighbours` if not given) found. ``bytes`` and
    ``bytes_per_vector``: :func:`store_bytes`. Chunk ids are ``"v<row>"``.

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

    ``search_threads``: faiss OpenMP threads while searching (see :func:`benchmark_store`).
    """
    import faiss

    threads = faiss.omp_get_max_threads()
    if search_threads:
        faiss.omp_set_num_threads(search_threads)
    try:
        return _search_quality(store, queries, truth, k)
    finally:
        faiss.omp_set_num_threads(threads)


def _search_quality(store: Any, queries: "np.ndarray", truth: "np.ndarray", k: int) -> dict[str, Any]:
    import numpy as np

    k = check_k(k)
    qs = np.ascontiguousarray(queries, np.float32)
    if not len(qs):
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "recall": float("nan"), "queries": 0}
    lat, hits = [], 0
    for i in range(len(qs)):
        t = time.perf_counter()
        res = store.search(qs[i : i + 1], k)[0]
        lat.append(time.perf_counter() - t)
        hits += len({int(c[1:]) for c, _ in res} & set(truth[i, :k].tolist()))
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
    if not bytes_per_vector or bytes_per_vector <= 0:
        raise ConfigError(f"must be > 0, got {bytes_per_vector!r}", field="bytes_per_vector")
    per_node = int(node_gib * usable * 2**30 / bytes_per_vector)
    return [{"vectors": int(n), "gib": n * bytes_per_vector / 2**30, "node_gib": node_gib,
             "vectors_per_node": per_node, "nodes": max(1, math.ceil(n / per_node))} for n in sizes]


def _current_version(root: Path) -> str | None:
    try:
        name = (root / "CURRENT").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not name.startswith("v-") or "/" in name or "\\" in name:
        return None
    return name


# --------------------------------------------------------------------------------------------
# Measuring index kinds at scale
# --------------------------------------------------------------------------------------------


def clustered_vectors(n: int, d: int = 384, *, clusters: int = 2000, latent: int = 32, seed: int = 0,
                      block: int = 100_000) -> "np.ndarray":
    """``n`` embedding-like unit vectors (float32): topic centres + a low-rank spread + small noise.

    Sentence embeddings are neither uniform on the sphere nor full-rank: they sit on a few dozen
    effective dimensions around topics (within-topic cosine ~0.6 for MiniLM, reproduced here).
    Uniform random vectors are a worst case for graph indexes and are not what a knowledge base
    looks like. Use another ``seed`` for held-out queries from the same distribution.

    >>> x = clustered_vectors(5, 8, clusters=2, latent=2)
    >>> x.shape, x.dtype.name, bool(abs((x * x).sum(1) - 1).max() < 1e-5)
    ((5, 8), 'float32', True)
    """
    import numpy as np

    for name, value in (("n", n), ("d", d), ("clusters", clusters), ("latent", latent), ("block", block)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"must be a positive integer, got {value!r}", field=name)
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


#: Index parameters :func:`benchmark_indexes` uses unless told otherwise (those of
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
) -> list[dict[str, Any]]:
    """Build each index kind over ``clustered_vectors(n)`` for each ``n`` and measure it.

    One row per (kind, n): ``build_s`` (adding all vectors, training included), ``memory_mib``
    (:meth:`FaissStore.memory_bytes`), ``p50_ms`` / ``p99_ms`` of ``n_queries`` single-query
    searches through :meth:`FaissStore.search` (the code path a RAG answer takes), and
    ``recall_at_k`` against exact search (faiss brute force on the same vectors). ``max_size``
    skips a kind above a size (e.g. ``{"hnsw": 100_000}``: HNSW builds slowly on few cores).
    IVF kinds use ``nlist = sqrt(n)`` rounded to a power of two unless ``params`` says otherwise.

    >>> rows = benchmark_indexes([2000], ["flat"], n_queries=20)
    >>> rows[0]["kind"], rows[0]["n"], rows[0]["recall_at_k"]
    ('flat', 2000, 1.0)
    """
    import faiss
    import numpy as np

    for kind in kinds:
        if kind not in INDEX_KINDS or kind == "auto":
            raise ConfigError(f"must be among {INDEX_KINDS[1:]}, got {kind!r}", field="kinds")
    k = check_k(k)
    max_size = dict(max_size or {})
    chosen = {kind: {**BENCH_PARAMS[kind], **(params or {}).get(kind, {})} for kind in kinds}
    queries = clustered_vectors(n_queries, d, seed=seed + 1)
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
            data[n] = clustered_vectors(int(n), d, seed=seed)
            truth[n] = faiss.knn(queries, data[n], k, metric=faiss.METRIC_INNER_PRODUCT)[1]
        xb, gt = data[n], truth[n]
        p = dict(chosen[kind])
        if kind in ("ivf", "ivfpq") and "nlist" not in p:
            p["nlist"] = int(2 ** round(math.log2(math.sqrt(n))))
        store = FaissStore(kind, **p)
        records = [ChunkRecord(str(i), str(i), "", "", 0, 0) for i in range(n)]
        t = time.perf_counter()
        store.add(records, xb)
        build = time.perf_counter() - t
        lat, hits = [], []
        for i in range(n_queries):
            t = time.perf_counter()
            res = store.search(queries[i : i + 1], k)[0]
            lat.append((time.perf_counter() - t) * 1e3)
            hits.append({int(c) for c, _ in res})
        recall = float(np.mean([len(h & set(gt[i].tolist())) / k for i, h in enumerate(hits)]))
        rows.append({"kind": kind, "n": int(n), "build_s": build, "memory_mib": store.memory_bytes() / 2**20,
                     "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                     "recall_at_k": round(recall, 4), "k": k, "params": p})
        store.close()
    return rows



# Database stores live in their own module (their clients are imported lazily); re-exported here so
# that ``from ragft_lib.stores import FaissStore, PgVectorStore, QdrantStore`` works (PEP 562: the
# lazy lookup avoids a circular import, since ragft_lib.dbstores builds on this module).
_DB_NAMES = ("PgVectorStore", "QdrantStore", "qdrant_point_id", "redact_url", "PG_META_TABLE")


def __getattr__(name: str) -> Any:
    if name in _DB_NAMES:
        from . import dbstores

        return getattr(dbstores, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ChunkRecord", "VectorStore", "FaissStore", "INDEX_KINDS", "AUTO_FLAT_MAX", "AUTO_HNSW_MAX", "FORMAT_VERSION",
           "check_batch", "check_k", "embedding_like_vectors", "clustered_vectors", "benchmark_indexes", "BENCH_PARAMS",
           "exact_neighbours", "store_bytes", "benchmark_store", "search_quality", "footprint", *_DB_NAMES]
