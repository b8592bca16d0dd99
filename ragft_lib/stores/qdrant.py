"""Qdrant: :class:`QdrantStore`, a :class:`~ragft_lib.stores.VectorStore` in a collection, via ``qdrant-client``.

The client library is imported when a store is made, with a clear error if missing. The store's
parameters are a :class:`QdrantParams`, validated before connecting.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .._fields import spec, validate
from ..errors import ConfigError, StoreError
from ._hnsw import ef_construction_spec, ef_search_spec, hnsw_m_spec
from .server import ServerStore, format_ids, redact_url, secrets_in
from .protocol import ChunkRecord

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["QdrantStore", "QdrantParams", "QDRANT_NAMESPACE", "qdrant_point_id"]

#: Namespace of the uuid5 point ids that :class:`QdrantStore` derives from chunk ids.
QDRANT_NAMESPACE = uuid.UUID("5b1f3c2e-8f0a-4d7e-9a61-2f1d0c9b7e41")


@dataclass(frozen=True)
class QdrantParams:
    """The parameters of a :class:`QdrantStore` (location and API key are not: the key is a secret).

    >>> QdrantParams(batch_size=0)
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: batch_size: must be >= 1 points, got 0
    """

    collection: str = spec("ragft_chunks", "str", label="Collection", pattern=r"[A-Za-z0-9_-]{1,128}",
                           help="Collection holding the chunks: 1-128 characters of [A-Za-z0-9_-].")
    hnsw_m: int = hnsw_m_spec(16)
    ef_construction: int = ef_construction_spec(100)
    ef_search: int = ef_search_spec(64)
    exact: bool = spec(False, "bool", label="Exact search", help="Search exactly instead of through the HNSW graph.")
    batch_size: int = spec(256, "int", label="Upsert batch", unit="points", min=1, help="Points per upsert request.")
    timeout: int = spec(5, "int", label="Timeout", unit="s", min=1, help="Seconds to wait for the server.")
    shard_number: int | None = spec(None, "int", label="Shards", min=1, nullable=True, null_means="the server's default",
                                    help="Shards of a new collection.")
    replication_factor: int | None = spec(None, "int", label="Replicas", min=1, nullable=True,
                                          null_means="the server's default", help="Replicas of each shard.")

    def __post_init__(self) -> None:
        validate(self)


def qdrant_point_id(chunk_id: str) -> str:
    """The Qdrant point id of a chunk: ``uuid5`` of the chunk id (Qdrant accepts only UUIDs and ints).

    >>> qdrant_point_id("brindlemere#0") == qdrant_point_id("brindlemere#0")
    True
    """
    return str(uuid.uuid5(QDRANT_NAMESPACE, chunk_id))


class QdrantStore(ServerStore):
    """A :class:`~ragft_lib.stores.VectorStore` in a Qdrant collection, through ``qdrant-client``.

    ``location`` is a server or cluster URL (``https://...:6333``, with ``api_key``), a local folder
    path, or ``":memory:"``. Each chunk is one point: its id is :func:`qdrant_point_id` (``uuid5``
    of the chunk id, deterministic), its payload the :class:`~ragft_lib.stores.ChunkRecord` plus an
    insertion counter. Cosine distance; HNSW with ``hnsw_m`` / ``ef_construction`` set on the
    collection and ``ef_search`` per query, or ``exact=True`` for exact search. The store's
    metadata lives in the collection's own ``metadata`` field (key ``"ragft"``). Sharding and
    replication are Qdrant's (``shard_number``, ``replication_factor`` passed on creation).

    **What is and is not transactional.** Qdrant has no multi-request transactions. This store
    validates everything it can *before* writing (dimensions, NaN, duplicate, existing and unknown
    ids), so bad input writes nothing. A write is sent as upserts of ``batch_size`` points then one
    delete; if a request fails half-way (server error, lost connection) the store *compensates*:
    it deletes the points it had added and re-upserts the points it had overwritten or deleted
    (their vectors and payloads read back before writing). Concurrent readers can see the
    intermediate state, and a crash of this process mid-write leaves it half-applied. Use
    :class:`PgVectorStore` where all-or-nothing writes matter.

    **Local mode** (``":memory:"`` or a path) runs inside ``qdrant-client`` as brute-force numpy
    search: it exercises the client calls this store makes, not a Qdrant server's HNSW index,
    sharding or durability (and the client warns above 20,000 points). The tests use it because no
    Qdrant server can be installed here.
    """

    #: The store's parameters, validated when it was made (change the search-time ones with :meth:`set_search_params`).
    config: QdrantParams
    _container = "collection"

    def __init__(
        self,
        location: str = ":memory:",
        *,
        collection: str = "ragft_chunks",
        api_key: str | None = None,
        hnsw_m: int = 16,
        ef_construction: int = 100,
        ef_search: int = 64,
        exact: bool = False,
        batch_size: int = 256,
        timeout: int = 5,
        shard_number: int | None = None,
        replication_factor: int | None = None,
    ):
        if not isinstance(location, str) or not location:
            raise ConfigError("must be a URL, a folder path or ':memory:'", field="location")
        self.config = QdrantParams(collection=collection, hnsw_m=hnsw_m, ef_construction=ef_construction,
                                   ef_search=ef_search, exact=exact, batch_size=batch_size, timeout=timeout,
                                   shard_number=shard_number, replication_factor=replication_factor)
        self.collection, self.exact = self.config.collection, self.config.exact
        self.batch_size, self.timeout = self.config.batch_size, self.config.timeout
        self._shards = {"shard_number": self.config.shard_number, "replication_factor": self.config.replication_factor}
        self.is_server = location.startswith(("http://", "https://"))
        self.location = redact_url(location) if self.is_server else location
        self._secrets = secrets_in(location, api_key)
        self._closed = False
        self._pending_meta: dict[str, Any] = {}
        try:
            import qdrant_client
            from qdrant_client import models
        except ImportError as exc:
            raise StoreError(f"QdrantStore needs qdrant-client: pip install qdrant-client ({exc})") from None
        self._m = models
        try:
            if self.is_server:
                import warnings

                with warnings.catch_warnings():  # "Api key is used with an insecure connection": said below instead
                    warnings.simplefilter("ignore", UserWarning)
                    self._client = qdrant_client.QdrantClient(url=location, api_key=api_key, timeout=self.timeout)
                self._client.get_collections()  # fail now, clearly, rather than at the first search
            elif location == ":memory:":
                self._client = qdrant_client.QdrantClient(location=":memory:")
            else:
                self._client = qdrant_client.QdrantClient(path=location)
        except Exception as exc:
            raise StoreError(f"cannot reach Qdrant at {self.location} within {self.timeout} s: "
                             f"{self._clean(exc)}") from None
        self._dim = self._collection_dimension()
        self._seq = self._max_seq() + 1 if self._dim is not None else 0

    def __repr__(self) -> str:
        return f"QdrantStore(location={self.location!r}, collection={self.collection!r})"

    def _where(self) -> str:
        return f"collection {self.collection!r} at {self.location}"

    def _failure(self, what: str, exc: BaseException) -> str:
        return f"Qdrant {what} failed at {self.location}: {self._clean(exc)}"

    def _exists(self) -> bool:
        return bool(self._call("collection_exists", lambda: self._client.collection_exists(self.collection)))

    def _collection_dimension(self) -> int | None:
        if not self._exists():
            return None
        info = self._call("get_collection", lambda: self._client.get_collection(self.collection))
        vecs = info.config.params.vectors
        size = getattr(vecs, "size", None)
        if size is None:
            raise StoreError(f"collection {self.collection!r} at {self.location} uses named vectors; "
                             "QdrantStore needs a collection it created (one unnamed cosine vector)")
        return int(size)

    def _max_seq(self) -> int:
        best = -1
        for rec, _ in self._scroll(with_vectors=False):
            best = max(best, int(rec["seq"]))
        return best

    def _scroll(self, with_vectors: bool) -> Iterator[tuple[dict[str, Any], Any]]:
        offset = None
        while True:
            points, offset = self._call("scroll", lambda: self._client.scroll(
                self.collection, limit=1024, offset=offset, with_payload=True, with_vectors=with_vectors))
            for p in points:
                yield p.payload, p.vector
            if offset is None:
                return


    def metadata(self) -> dict[str, Any]:
        self._check_open()
        if self._dim is None:
            return dict(self._pending_meta)
        info = self._call("get_collection", lambda: self._client.get_collection(self.collection))
        return dict((info.config.metadata or {}).get("ragft") or {})

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        self._check_open()
        self._check_metadata(metadata)
        if self._dim is None:
            self._pending_meta = dict(metadata)  # written when the collection is created (first add)
            return
        self._call("update_collection", lambda: self._client.update_collection(
            self.collection, metadata={"ragft": dict(metadata)}))

    def count(self) -> int:
        self._check_open()
        if self._dim is None:
            return 0
        return int(self._call("count", lambda: self._client.count(self.collection, exact=True).count))

    def close(self) -> None:
        if not self._closed:
            try:
                self._client.close()
            except Exception:  # pragma: no cover - closing a dead connection
                pass
        self._closed = True

    def drop(self) -> None:
        """Delete the collection (and with it the metadata). The store stays open and empty."""
        if self._dim is not None:
            self._call("delete_collection", lambda: self._client.delete_collection(self.collection))
        self._dim, self._seq, self._pending_meta = None, 0, {}

    # -- reads ---------------------------------------------------------------------------
    def records(self) -> Iterator[ChunkRecord]:
        self._check_open()
        if self._dim is None:
            return iter(())
        rows = sorted(((p["seq"], p) for p, _ in self._scroll(with_vectors=False)), key=lambda t: t[0])
        return (ChunkRecord.from_dict(p) for _, p in rows)

    def _retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> dict[str, Any]:
        pts = self._call("retrieve", lambda: self._client.retrieve(
            self.collection, ids=[qdrant_point_id(i) for i in ids], with_payload=True, with_vectors=with_vectors))
        return {p.payload["chunk_id"]: p for p in pts}

    def get(self, ids: Sequence[str]) -> list[ChunkRecord]:
        self._check_open()
        ids = list(ids)
        if not ids:
            return []
        found = self._retrieve(ids) if self._dim is not None else {}
        missing = [i for i in ids if i not in found]
        if missing:
            raise StoreError(f"unknown chunk id {missing[0]!r}")
        return [ChunkRecord.from_dict(found[i].payload) for i in ids]

    def _search(self, q: "np.ndarray", k: int) -> list[list[tuple[str, float]]]:
        m = self._m
        # Local mode is brute force and warns that search params have no effect: send them to servers only.
        params = m.SearchParams(hnsw_ef=max(k, self.config.ef_search), exact=self.exact) if self.is_server else None
        reqs = [m.QueryRequest(query=row.tolist(), limit=k, params=params, with_payload=["chunk_id"]) for row in q]
        res = self._call("query_batch_points", lambda: self._client.query_batch_points(self.collection, requests=reqs))
        return [[(p.payload["chunk_id"], float(p.score)) for p in r.points] for r in res]

    # -- writes --------------------------------------------------------------------------
    def _create(self, dim: int) -> None:
        m = self._m
        shards = {k: v for k, v in self._shards.items() if v is not None}
        self._call("create_collection", lambda: self._client.create_collection(
            self.collection, vectors_config=m.VectorParams(size=dim, distance=m.Distance.COSINE),
            hnsw_config=m.HnswConfigDiff(m=self.config.hnsw_m, ef_construct=self.config.ef_construction),
            metadata={"ragft": dict(self._pending_meta)}, **shards))
        self._dim = dim

    def _points(self, records: Sequence[ChunkRecord], vecs: "np.ndarray", seqs: Sequence[int]) -> list[Any]:
        return [self._m.PointStruct(id=qdrant_point_id(r.chunk_id), vector=v.tolist(), payload={**r.to_dict(), "seq": s})
                for r, v, s in zip(records, vecs, seqs)]

    def _write(self, delete_ids: list[str], records: list[ChunkRecord], vecs: "np.ndarray") -> None:
        m = self._m
        # Validate against what is stored (no write before this point).
        if self._dim is None:  # then there are records and no delete_ids (ServerStore.replace checked)
            self._create(int(vecs.shape[1]))
            old: dict[str, Any] = {}
        else:
            removing = set(delete_ids)
            check = delete_ids + [r.chunk_id for r in records if r.chunk_id not in removing]
            old = self._retrieve(check, with_vectors=True) if check else {}
            unknown = [i for i in delete_ids if i not in old]
            if unknown:
                raise StoreError(f"cannot delete unknown chunk ids {format_ids(unknown)}: nothing was changed")
            clash = [r.chunk_id for r in records if r.chunk_id not in removing and r.chunk_id in old]
            if clash:
                raise StoreError(f"chunk ids already stored: {format_ids(sorted(clash))}: nothing was changed")
        seqs = range(self._seq, self._seq + len(records))
        points = self._points(records, vecs, seqs)
        new_ids = {r.chunk_id for r in records}
        gone = [i for i in delete_ids if i not in new_ids]
        written: list[str] = []
        try:
            for s in range(0, len(points), self.batch_size):
                batch = points[s : s + self.batch_size]
                self._call("upsert", lambda: self._client.upsert(self.collection, points=batch, wait=True))
                written += [p.payload["chunk_id"] for p in batch]
            if gone:
                self._call("delete", lambda: self._client.delete(
                    self.collection, points_selector=m.PointIdsList(points=[qdrant_point_id(i) for i in gone]), wait=True))
        except BaseException:
            self._compensate(written, old)
            raise
        self._seq += len(records)

    def _compensate(self, written: list[str], old: dict[str, Any]) -> None:
        """Best effort undo of a half-applied write: remove what was added, restore what was overwritten/deleted."""
        m = self._m
        try:
            added = [i for i in written if i not in old]
            if added:
                self._client.delete(self.collection, points_selector=m.PointIdsList(
                    points=[qdrant_point_id(i) for i in added]), wait=True)
            if old:
                self._client.upsert(self.collection, wait=True, points=[
                    m.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in old.values()])
        except Exception:  # pragma: no cover - the server is gone; the error being raised says so
            pass

