"""Vector stores on database servers: :class:`PgVectorStore` (PostgreSQL + pgvector) and :class:`QdrantStore`.

Both implement :class:`~ragft_lib.stores.VectorStore`; import them from :mod:`ragft_lib.stores`.
Their client libraries (``psycopg`` 3 + ``pgvector``, ``qdrant-client``) are imported only when a
store is created, with a clear error if missing.

Credentials: a store keeps the connection string privately and shows it everywhere (``repr``,
errors) through :func:`redact_url`, which replaces the password (and any ``password=`` /
``api_key=`` parameter) with ``***``. An API key is never shown.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import ConfigError, StoreError
from .stores import ChunkRecord, ReplaceStore, check_batch, check_k, check_queries, unique_ids

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

_SECRET_KEYS = ("password", "passwd", "api_key", "apikey", "api-key", "token", "sslpassword")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")
#: Side table holding each pgvector store's metadata (one row per table).
PG_META_TABLE = "ragft_store_meta"
#: Namespace of the uuid5 point ids that :class:`QdrantStore` derives from chunk ids.
QDRANT_NAMESPACE = uuid.UUID("5b1f3c2e-8f0a-4d7e-9a61-2f1d0c9b7e41")


def redact_url(url: str) -> str:
    """``url`` with its password and secret parameters replaced by ``***`` (URL or ``key=value`` form).

    >>> redact_url("postgresql://kb:s3cret@db.example.com:5432/rag?sslmode=require")
    'postgresql://kb:***@db.example.com:5432/rag?sslmode=require'
    >>> redact_url("host=db user=kb password=s3cret dbname=rag")
    'host=db user=kb password=*** dbname=rag'
    >>> redact_url("https://cluster.example.com:6333?api_key=abc")
    'https://cluster.example.com:6333?api_key=***'
    """
    url = str(url)
    if "://" in url:
        try:
            parts = urlsplit(url)
            netloc = parts.netloc
            if "@" in netloc:
                userinfo, host = netloc.rsplit("@", 1)
                user = userinfo.split(":", 1)[0]
                netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
            query = parts.query
            if query:
                pairs = [(k, "***" if k.lower() in _SECRET_KEYS else v) for k, v in parse_qsl(query, keep_blank_values=True)]
                query = urlencode(pairs, safe="*/")
            return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
        except ValueError:
            return "<unparseable URL>"
    keys = "|".join(re.escape(k) for k in _SECRET_KEYS)
    return re.sub(rf"(?i)\b({keys})\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", r"\1=***", url)


def _secrets_of(url: str, *extra: str | None) -> list[str]:
    """The literal secrets in ``url`` (password, secret parameters) plus ``extra``: scrubbed from messages."""
    out = [e for e in extra if e]
    if "://" in url:
        try:
            parts = urlsplit(url)
            if parts.password:
                out.append(parts.password)
            out += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_KEYS and v]
        except ValueError:
            pass
    else:
        keys = "|".join(re.escape(k) for k in _SECRET_KEYS)
        out += [m.group(2).strip("'") for m in re.finditer(rf"(?i)\b({keys})\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", url)]
    return sorted({s for s in out if len(s) >= 1}, key=len, reverse=True)


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        text = text.replace(s, "***")
    return text


def _first_line(exc: BaseException) -> str:
    msg = str(exc).strip() or type(exc).__name__
    return " ".join(msg.split())[:400]


def _check_ident(name: Any, field: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ConfigError(f"must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 51 characters), got {name!r}",
                          field=field)
    return name


def _positive(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"must be a positive integer, got {value!r}", field=field)
    return value


def _fmt_ids(ids: Sequence[str]) -> str:
    return f"{list(ids)[:5]}{' ...' if len(ids) > 5 else ''}"


# --------------------------------------------------------------------------------------------
# PostgreSQL + pgvector
# --------------------------------------------------------------------------------------------


class PgVectorStore(ReplaceStore):
    """A :class:`~ragft_lib.stores.VectorStore` in a PostgreSQL table with the pgvector extension.

    ``url`` is a libpq connection string (``postgresql://user:password@host:5432/db`` or
    ``host=... dbname=...``); ``table`` the table holding the chunks (created on the first add, one
    row per chunk: ``chunk_id`` primary key, ``doc_id``, ``text``, ``source``, ``start_char``,
    ``end_char``, ``metadata jsonb``, ``embedding vector(d)``). The store's metadata (embedder name,
    dimension, retriever settings) lives in the side table :data:`PG_META_TABLE`, one row per table.

    * ``index="hnsw"`` builds a pgvector HNSW index with cosine distance (``vector_cosine_ops``;
      ``hnsw_m``, ``ef_construction``; ``ef_search`` is set per session, raised to ``k`` when a
      search asks for more); it is built *after* the first load (a bulk build is much faster than
      inserting into a graph) and maintained by PostgreSQL afterwards. ``index="exact"`` builds no
      vector index and searches with index scans off: every search scans the table (exact, the
      reference for recall, even on a table that has an HNSW index).
    * Loading uses binary ``COPY`` in batches of ``batch_size`` rows, all inside one transaction.
    * ``add``, ``delete`` and ``replace`` are each one ``BEGIN ... COMMIT``: validation, existence
      checks, ``DELETE`` and every ``COPY`` batch either commit together or roll back together
      (e.g. PostgreSQL rejecting a row in the third batch leaves nothing of the first two).
    * Scores are cosine similarities (``1 - (embedding <=> query)``), higher is better.

    Errors are :class:`~ragft_lib.errors.StoreError` and name the server by its URL without the
    password: an unreachable server fails after ``connect_timeout`` seconds at most; a database
    without pgvector is told to run ``CREATE EXTENSION vector`` (which the store tries first); a
    table of another dimension is refused before anything is written.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str = "ragft_chunks",
        index: str = "hnsw",
        hnsw_m: int = 16,
        ef_construction: int = 64,
        ef_search: int = 40,
        batch_size: int = 5000,
        connect_timeout: int = 5,
        maintenance_work_mem: str = "512MB",
    ):
        if not isinstance(url, str) or not url.strip():
            raise ConfigError("must be a PostgreSQL connection string (postgresql://user:password@host:port/db)",
                              field="url")
        self.table = _check_ident(table, "table")
        if index not in ("hnsw", "exact"):
            raise ConfigError(f"must be 'hnsw' or 'exact', got {index!r}", field="index")
        self.index = index
        self.params = {"hnsw_m": _positive("hnsw_m", hnsw_m), "ef_construction": _positive("ef_construction", ef_construction),
                       "ef_search": _positive("ef_search", ef_search)}
        self.batch_size = _positive("batch_size", batch_size)
        self.connect_timeout = _positive("connect_timeout", connect_timeout)
        if not re.match(r"^\d+\s*(kB|MB|GB)$", str(maintenance_work_mem)):
            raise ConfigError(f"must look like '512MB', got {maintenance_work_mem!r}", field="maintenance_work_mem")
        self.url = redact_url(url)  # what is shown; the real string stays private
        self._secrets = _secrets_of(url)
        self._closed = False
        try:
            import psycopg
            from pgvector.psycopg import register_vector
        except ImportError as exc:
            raise StoreError(f"PgVectorStore needs psycopg 3 and pgvector: pip install 'psycopg[binary]' pgvector ({exc})") from None
        self._psycopg = psycopg
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=self.connect_timeout)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self.url} within {self.connect_timeout} s: "
                             f"{self._clean(exc)}") from None
        self._conn = conn
        try:
            self._ensure_extension()
            register_vector(conn)
            conn.execute(f"SET hnsw.ef_search = {int(self.params['ef_search'])}")
            conn.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {PG_META_TABLE} (table_name text PRIMARY KEY, metadata jsonb NOT NULL)")
        except BaseException:
            conn.close()
            self._closed = True
            raise
        self._ef_now = self.params["ef_search"]
        self._dim = self._table_dimension()

    # -- connection helpers --------------------------------------------------------------
    def _clean(self, exc: BaseException) -> str:
        return _scrub(_first_line(exc), self._secrets)

    def _ensure_extension(self) -> None:
        psycopg = self._psycopg
        conn = self._conn
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
            return
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            return
        except psycopg.Error as exc:
            reason = self._clean(exc)
        available = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        db = conn.info.dbname
        if available is None:
            raise StoreError(f"database {db!r} at {self.url} has no pgvector extension and the server cannot install it "
                             f"(pgvector is not installed on the server: {reason}); install pgvector on the server, "
                             "or use a managed PostgreSQL that offers it")
        raise StoreError(f"database {db!r} at {self.url} does not have the pgvector extension enabled and this user "
                         f"cannot enable it ({reason}); ask its administrator to run CREATE EXTENSION vector "
                         f"(pgvector {available[0]} is available on the server)")

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")

    def _run(self, what: str, fn: Any) -> Any:
        """Run ``fn`` translating database errors into StoreError (the connection's transaction is rolled back)."""
        self._check_open()
        try:
            return fn()
        except self._psycopg.OperationalError as exc:
            raise StoreError(f"{what} failed: lost the connection to {self.url}: {self._clean(exc)}") from None
        except self._psycopg.Error as exc:
            raise StoreError(f"{what} failed, nothing was changed (transaction rolled back): {self._clean(exc)}") from None

    def _table_dimension(self) -> int | None:
        row = self._conn.execute(
            "SELECT a.atttypmod FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attname = 'embedding'",
            (self.table,)).fetchone()
        return int(row[0]) if row and row[0] and row[0] > 0 else None

    # -- info ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"PgVectorStore(url={self.url!r}, table={self.table!r}, index={self.index!r})"

    @property
    def dimension(self) -> int | None:
        return self._dim

    def metadata(self) -> dict[str, Any]:
        def go():
            row = self._conn.execute(f"SELECT metadata FROM {PG_META_TABLE} WHERE table_name = %s", (self.table,)).fetchone()
            return dict(row[0]) if row else {}
        return self._run("reading the store metadata", go)

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        try:
            json.dumps(metadata)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"must be JSON-serialisable: {exc}", field="metadata") from None
        dim = metadata.get("dimension")
        if dim is not None and self._dim is not None and int(dim) != self._dim:
            raise StoreError(f"table {self.table!r} at {self.url} holds {self._dim}-d vectors, not {dim}-d: "
                             "use another table (or drop this one) for this embedder; nothing was changed")
        self._run("writing the store metadata", lambda: self._conn.execute(
            f"INSERT INTO {PG_META_TABLE} (table_name, metadata) VALUES (%s, %s) "
            "ON CONFLICT (table_name) DO UPDATE SET metadata = EXCLUDED.metadata", (self.table, Jsonb(dict(metadata)))))

    def count(self) -> int:
        if self._dim is None:
            self._check_open()
            return 0
        return int(self._run("count", lambda: self._conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]))

    def size_bytes(self) -> dict[str, int]:
        """Bytes on disk: ``table`` (heap + TOAST), ``index`` (the HNSW index), ``total``."""
        self._check_open()
        if self._dim is None:
            return {"table": 0, "index": 0, "total": 0}
        name = f"{self.table}_embedding_hnsw"
        row = self._conn.execute("SELECT pg_table_size(%s::regclass), coalesce(pg_relation_size(to_regclass(%s)), 0), "
                                 "pg_total_relation_size(%s::regclass)", (self.table, name, self.table)).fetchone()
        return {"table": int(row[0]), "index": int(row[1]), "total": int(row[2])}

    def close(self) -> None:
        if not self._closed:
            self._conn.close()
        self._closed = True

    def drop(self) -> None:
        """Drop the table and its metadata row (one transaction). The store stays open and empty."""
        def go():
            with self._conn.transaction():
                self._conn.execute(f"DROP TABLE IF EXISTS {self.table}")
                self._conn.execute(f"DELETE FROM {PG_META_TABLE} WHERE table_name = %s", (self.table,))
        self._run("drop", go)
        self._dim = None

    # -- reads ---------------------------------------------------------------------------
    _COLS = "chunk_id, doc_id, text, source, start_char, end_char, metadata"

    @staticmethod
    def _rec(row: Sequence[Any]) -> ChunkRecord:
        return ChunkRecord(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]), dict(row[6] or {}))

    def records(self) -> Iterator[ChunkRecord]:
        if self._dim is None:
            self._check_open()
            return iter(())
        rows = self._run("reading records", lambda: self._conn.execute(
            f"SELECT {self._COLS} FROM {self.table} ORDER BY seq").fetchall())
        return (self._rec(r) for r in rows)

    def get(self, ids: Sequence[str]) -> list[ChunkRecord]:
        ids = list(ids)
        if not ids:
            self._check_open()
            return []
        if self._dim is None:
            raise StoreError(f"unknown chunk id {ids[0]!r}")
        rows = self._run("get", lambda: self._conn.execute(
            f"SELECT {self._COLS} FROM {self.table} WHERE chunk_id = ANY(%s)", (ids,)).fetchall())
        by_id = {r[0]: self._rec(r) for r in rows}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise StoreError(f"unknown chunk id {missing[0]!r}")
        return [by_id[i] for i in ids]

    def search(self, queries: "np.ndarray", k: int) -> list[list[tuple[str, float]]]:
        import numpy as np

        self._check_open()
        k = check_k(k)
        q = check_queries(queries, self._dim)
        if self._dim is None:
            return [[] for _ in range(len(q))]
        ef = max(k, self.params["ef_search"])
        if self.index == "hnsw" and ef != self._ef_now:
            self._run("setting hnsw.ef_search", lambda: self._conn.execute(f"SET hnsw.ef_search = {int(ef)}"))
            self._ef_now = ef
        sql = (f"SELECT chunk_id, 1 - (embedding <=> %(q)s) FROM {self.table} "
               f"ORDER BY embedding <=> %(q)s LIMIT {int(k)}")

        def scan(cur):
            out = []
            for row in q:
                cur.execute(sql, {"q": row}, prepare=True)
                out.append([(c, float(s)) for c, s in cur.fetchall()])
            return out

        def go():
            with self._conn.cursor() as cur:
                if self.index == "hnsw":
                    return scan(cur)
                # exact: the planner would use an HNSW index that another store built on this table
                with self._conn.transaction():
                    cur.execute("SET LOCAL enable_indexscan = off")
                    return scan(cur)
        return self._run("search", go)

    # -- writes --------------------------------------------------------------------------
    def replace(self, delete_ids: Iterable[str], records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        from psycopg.types.json import Jsonb

        self._check_open()
        records = list(records)
        delete_ids = unique_ids(delete_ids)
        vecs = check_batch(records, vectors, self._dim if records else None)
        if not records and not delete_ids:
            return
        conn = self._conn
        creating = self._dim is None and bool(records)
        if self._dim is None and delete_ids:
            raise StoreError(f"cannot delete unknown chunk ids {_fmt_ids(delete_ids)}: nothing was changed")
        meta_dim = self.metadata().get("dimension")
        if creating and meta_dim is not None and int(meta_dim) != vecs.shape[1]:
            raise StoreError(f"the metadata of table {self.table!r} says {meta_dim}-d vectors, this batch is "
                             f"{vecs.shape[1]}-d: nothing was changed")
        t = self.table

        def go():
            with conn.transaction():
                if creating:
                    d = int(vecs.shape[1])
                    conn.execute(f"CREATE TABLE {t} (seq bigint GENERATED ALWAYS AS IDENTITY, chunk_id text PRIMARY KEY, "
                                 "doc_id text NOT NULL, text text NOT NULL, source text NOT NULL, start_char integer NOT NULL, "
                                 f"end_char integer NOT NULL, metadata jsonb NOT NULL, embedding vector({d}) NOT NULL)")
                    conn.execute(f"CREATE INDEX {t}_doc_id ON {t} (doc_id)")
                if delete_ids:
                    found = {r[0] for r in conn.execute(f"SELECT chunk_id FROM {t} WHERE chunk_id = ANY(%s)", (delete_ids,))}
                    unknown = [i for i in delete_ids if i not in found]
                    if unknown:
                        raise StoreError(f"cannot delete unknown chunk ids {_fmt_ids(unknown)}: nothing was changed")
                if records and not creating:
                    new_ids = [r.chunk_id for r in records if r.chunk_id not in set(delete_ids)]
                    clash = [r[0] for r in conn.execute(f"SELECT chunk_id FROM {t} WHERE chunk_id = ANY(%s)", (new_ids,))]
                    if clash:
                        raise StoreError(f"chunk ids already stored: {_fmt_ids(sorted(clash))}: nothing was changed")
                if delete_ids:
                    conn.execute(f"DELETE FROM {t} WHERE chunk_id = ANY(%s)", (delete_ids,))
                with conn.cursor() as cur:
                    for s in range(0, len(records), self.batch_size):
                        with cur.copy(f"COPY {t} (chunk_id, doc_id, text, source, start_char, end_char, metadata, embedding) "
                                      "FROM STDIN WITH (FORMAT BINARY)") as copy:
                            copy.set_types(["text", "text", "text", "text", "int4", "int4", "jsonb", "vector"])
                            for r, v in zip(records[s : s + self.batch_size], vecs[s : s + self.batch_size]):
                                copy.write_row((r.chunk_id, r.doc_id, r.text, r.source, r.start, r.end, Jsonb(r.metadata), v))
                if creating and self.index == "hnsw":
                    conn.execute(f"CREATE INDEX {t}_embedding_hnsw ON {t} USING hnsw (embedding vector_cosine_ops) "
                                 f"WITH (m = {int(self.params['hnsw_m'])}, ef_construction = {int(self.params['ef_construction'])})")
        what = f"writing {len(records)} chunks / deleting {len(delete_ids)} into table {t!r} at {self.url}"
        self._run(what, go)
        if creating:
            self._dim = int(vecs.shape[1])


# --------------------------------------------------------------------------------------------
# Qdrant
# --------------------------------------------------------------------------------------------


def qdrant_point_id(chunk_id: str) -> str:
    """The Qdrant point id of a chunk: ``uuid5`` of the chunk id (Qdrant accepts only UUIDs and ints).

    >>> qdrant_point_id("brindlemere#0") == qdrant_point_id("brindlemere#0")
    True
    """
    return str(uuid.uuid5(QDRANT_NAMESPACE, chunk_id))


class QdrantStore(ReplaceStore):
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
        if not isinstance(collection, str) or not re.match(r"^[A-Za-z0-9_-]{1,128}$", collection):
            raise ConfigError(f"must be 1-128 characters of [A-Za-z0-9_-], got {collection!r}", field="collection")
        self.collection = collection
        self.params = {"hnsw_m": _positive("hnsw_m", hnsw_m), "ef_construction": _positive("ef_construction", ef_construction),
                       "ef_search": _positive("ef_search", ef_search)}
        self.exact = bool(exact)
        self.batch_size = _positive("batch_size", batch_size)
        self.timeout = _positive("timeout", timeout)
        self._shards = {"shard_number": shard_number, "replication_factor": replication_factor}
        self.is_server = location.startswith(("http://", "https://"))
        self.location = redact_url(location) if self.is_server else location
        self._secrets = _secrets_of(location, api_key)
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
                             f"{_scrub(_first_line(exc), self._secrets)}") from None
        self._dim = self._collection_dimension()
        self._seq = self._max_seq() + 1 if self._dim is not None else 0

    def __repr__(self) -> str:
        return f"QdrantStore(location={self.location!r}, collection={self.collection!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")

    def _call(self, what: str, fn: Any) -> Any:
        self._check_open()
        try:
            return fn()
        except (StoreError, ConfigError):
            raise
        except Exception as exc:
            raise StoreError(f"Qdrant {what} failed at {self.location}: {_scrub(_first_line(exc), self._secrets)}") from None

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

    @property
    def dimension(self) -> int | None:
        return self._dim

    def metadata(self) -> dict[str, Any]:
        self._check_open()
        if self._dim is None:
            return dict(self._pending_meta)
        info = self._call("get_collection", lambda: self._client.get_collection(self.collection))
        return dict((info.config.metadata or {}).get("ragft") or {})

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        self._check_open()
        try:
            json.dumps(metadata)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"must be JSON-serialisable: {exc}", field="metadata") from None
        dim = metadata.get("dimension")
        if dim is not None and self._dim is not None and int(dim) != self._dim:
            raise StoreError(f"collection {self.collection!r} at {self.location} holds {self._dim}-d vectors, not "
                             f"{dim}-d: use another collection for this embedder; nothing was changed")
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

    def search(self, queries: "np.ndarray", k: int) -> list[list[tuple[str, float]]]:
        import numpy as np

        self._check_open()
        k = check_k(k)
        q = check_queries(queries, self._dim)
        if self._dim is None:
            return [[] for _ in range(len(q))]
        m = self._m
        # Local mode is brute force and warns that search params have no effect: send them to servers only.
        params = m.SearchParams(hnsw_ef=max(k, self.params["ef_search"]), exact=self.exact) if self.is_server else None
        reqs = [m.QueryRequest(query=row.tolist(), limit=k, params=params, with_payload=["chunk_id"]) for row in q]
        res = self._call("query_batch_points", lambda: self._client.query_batch_points(self.collection, requests=reqs))
        return [[(p.payload["chunk_id"], float(p.score)) for p in r.points] for r in res]

    # -- writes --------------------------------------------------------------------------
    def _create(self, dim: int) -> None:
        m = self._m
        shards = {k: v for k, v in self._shards.items() if v is not None}
        self._call("create_collection", lambda: self._client.create_collection(
            self.collection, vectors_config=m.VectorParams(size=dim, distance=m.Distance.COSINE),
            hnsw_config=m.HnswConfigDiff(m=self.params["hnsw_m"], ef_construct=self.params["ef_construction"]),
            metadata={"ragft": dict(self._pending_meta)}, **shards))
        self._dim = dim

    def _points(self, records: Sequence[ChunkRecord], vecs: "np.ndarray", seqs: Sequence[int]) -> list[Any]:
        return [self._m.PointStruct(id=qdrant_point_id(r.chunk_id), vector=v.tolist(), payload={**r.to_dict(), "seq": s})
                for r, v, s in zip(records, vecs, seqs)]

    def replace(self, delete_ids: Iterable[str], records: Sequence[ChunkRecord], vectors: "np.ndarray") -> None:
        self._check_open()
        m = self._m
        records = list(records)
        delete_ids = unique_ids(delete_ids)
        vecs = check_batch(records, vectors, self._dim if records else None)
        if not records and not delete_ids:
            return
        # Validate against what is stored (no write before this point).
        if self._dim is None:
            if delete_ids:
                raise StoreError(f"cannot delete unknown chunk ids {_fmt_ids(delete_ids)}: nothing was changed")
            meta_dim = self._pending_meta.get("dimension")
            if meta_dim is not None and int(meta_dim) != vecs.shape[1]:
                raise StoreError(f"the metadata says {meta_dim}-d vectors, this batch is {vecs.shape[1]}-d: nothing was changed")
            self._create(int(vecs.shape[1]))
            old: dict[str, Any] = {}
        else:
            removing = set(delete_ids)
            check = delete_ids + [r.chunk_id for r in records if r.chunk_id not in removing]
            old = self._retrieve(check, with_vectors=True) if check else {}
            unknown = [i for i in delete_ids if i not in old]
            if unknown:
                raise StoreError(f"cannot delete unknown chunk ids {_fmt_ids(unknown)}: nothing was changed")
            clash = [r.chunk_id for r in records if r.chunk_id not in removing and r.chunk_id in old]
            if clash:
                raise StoreError(f"chunk ids already stored: {_fmt_ids(sorted(clash))}: nothing was changed")
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

