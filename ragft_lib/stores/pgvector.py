"""PostgreSQL + pgvector: :class:`PgVectorStore`, a :class:`~ragft_lib.stores.VectorStore` in a table.

The client libraries (``psycopg`` 3 + ``pgvector``) are imported when a store is made, with a clear
error if missing. The store's parameters are a :class:`PgVectorParams`, validated before connecting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .._fields import spec, validate
from ..errors import ConfigError, StoreError
from ._hnsw import ef_construction_spec, ef_search_spec, hnsw_m_spec
from .server import ServerStore, format_ids, redact_url, secrets_in
from .protocol import ChunkRecord

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["PgVectorStore", "PgVectorParams", "PG_META_TABLE"]

#: Side table holding each pgvector store's metadata (one row per table).
PG_META_TABLE = "ragft_store_meta"


@dataclass(frozen=True)
class PgVectorParams:
    """The parameters of a :class:`PgVectorStore` (the connection string is not one: it is a secret).

    >>> PgVectorParams(table="Chunks")
    Traceback (most recent call last):
    ...
    ragft_lib.errors.ConfigError: table: must match [a-z_][a-z0-9_]{0,50}, got 'Chunks'
    """

    table: str = spec("ragft_chunks", "str", label="Table", pattern=r"[a-z_][a-z0-9_]{0,50}",
                      help="Table holding the chunks: a lower-case SQL identifier of at most 51 characters.")
    index: str = spec("hnsw", "choice", label="Index", choices=("hnsw", "exact"),
                      help="hnsw: a pgvector HNSW index; exact: no vector index, every search scans the table.")
    hnsw_m: int = hnsw_m_spec(16)
    ef_construction: int = ef_construction_spec(64)
    ef_search: int = ef_search_spec(40)
    batch_size: int = spec(5000, "int", label="COPY batch", unit="rows", min=1, help="Rows per binary COPY batch.")
    connect_timeout: int = spec(5, "int", label="Connect timeout", unit="s", min=1,
                                help="Seconds to wait for the server before failing.")
    maintenance_work_mem: str = spec("512MB", "str", label="maintenance_work_mem", pattern=r"\d+\s*(kB|MB|GB)",
                                     help="PostgreSQL memory for building the index, like '512MB'.")

    def __post_init__(self) -> None:
        validate(self)


class PgVectorStore(ServerStore):
    """A :class:`~ragft_lib.stores.VectorStore` in a PostgreSQL table with the pgvector extension.

    ``url`` is a libpq connection string (``postgresql://user:password@host:5432/db`` or
    ``host=... dbname=...``); ``table`` the table holding the chunks (created on the first add, one
    row per chunk: ``chunk_id`` primary key, ``doc_id``, ``text``, ``source``, ``start_char``,
    ``end_char``, ``metadata jsonb``, ``embedding vector(d)``). The store's metadata (embedder name,
    dimension, retriever settings) lives in the side table :data:`~ragft_lib.stores.pgvector.PG_META_TABLE`, one row per table.

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

    #: The store's parameters, validated when it was made (change the search-time ones with :meth:`set_search_params`).
    config: PgVectorParams

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
        self.config = PgVectorParams(table=table, index=index, hnsw_m=hnsw_m, ef_construction=ef_construction,
                                     ef_search=ef_search, batch_size=batch_size, connect_timeout=connect_timeout,
                                     maintenance_work_mem=maintenance_work_mem)
        self.table, self.index = self.config.table, self.config.index
        self.batch_size, self.connect_timeout = self.config.batch_size, self.config.connect_timeout
        self.url = redact_url(url)  # what is shown; the real string stays private
        self._secrets = secrets_in(url)
        self._closed = False
        try:
            import psycopg
            from pgvector.psycopg import register_vector
        except ImportError as exc:
            raise StoreError(f"PgVectorStore needs psycopg 3 and pgvector: pip install 'psycopg[binary]' pgvector ({exc})") from None
        self._psycopg = psycopg
        self._client_errors = (psycopg.Error,)
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=self.connect_timeout)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self.url} within {self.connect_timeout} s: "
                             f"{self._clean(exc)}") from None
        self._conn = conn
        try:
            self._ensure_extension()
            register_vector(conn)
            conn.execute(f"SET hnsw.ef_search = {int(self.config.ef_search)}")
            conn.execute(f"SET maintenance_work_mem = '{self.config.maintenance_work_mem}'")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {PG_META_TABLE} (table_name text PRIMARY KEY, metadata jsonb NOT NULL)")
        except BaseException:
            conn.close()
            self._closed = True
            raise
        self._ef_now = self.config.ef_search
        self._dim = self._table_dimension()

    # -- connection helpers --------------------------------------------------------------
    def _where(self) -> str:
        return f"table {self.table!r} at {self.url}"

    def _failure(self, what: str, exc: BaseException) -> str:
        """A database error's message: the connection was lost, or the transaction was rolled back."""
        if isinstance(exc, self._psycopg.OperationalError):
            return f"{what} failed: lost the connection to {self.url}: {self._clean(exc)}"
        return f"{what} failed, nothing was changed (transaction rolled back): {self._clean(exc)}"

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

    def _table_dimension(self) -> int | None:
        row = self._conn.execute(
            "SELECT a.atttypmod FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attname = 'embedding'",
            (self.table,)).fetchone()
        return int(row[0]) if row and row[0] and row[0] > 0 else None

    # -- info ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"PgVectorStore(url={self.url!r}, table={self.table!r}, index={self.index!r})"


    def server_versions(self) -> dict[str, str | None]:
        """``{"postgresql": ..., "pgvector": ...}``: the server's version and its pgvector extension's."""
        row = self._call("reading the server version", lambda: self._conn.execute(
            "SELECT current_setting('server_version'), "
            "(SELECT extversion FROM pg_extension WHERE extname = 'vector')").fetchone())
        return {"postgresql": row[0], "pgvector": row[1]}

    def metadata(self) -> dict[str, Any]:
        def go():
            row = self._conn.execute(f"SELECT metadata FROM {PG_META_TABLE} WHERE table_name = %s", (self.table,)).fetchone()
            return dict(row[0]) if row else {}
        return self._call("reading the store metadata", go)

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        self._check_metadata(metadata)
        self._call("writing the store metadata", lambda: self._conn.execute(
            f"INSERT INTO {PG_META_TABLE} (table_name, metadata) VALUES (%s, %s) "
            "ON CONFLICT (table_name) DO UPDATE SET metadata = EXCLUDED.metadata", (self.table, Jsonb(dict(metadata)))))

    def count(self) -> int:
        if self._dim is None:
            self._check_open()
            return 0
        return int(self._call("count", lambda: self._conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]))

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
        self._call("drop", go)
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
        rows = self._call("reading records", lambda: self._conn.execute(
            f"SELECT {self._COLS} FROM {self.table} ORDER BY seq").fetchall())
        return (self._rec(r) for r in rows)

    def get(self, ids: Sequence[str]) -> list[ChunkRecord]:
        ids = list(ids)
        if not ids:
            self._check_open()
            return []
        if self._dim is None:
            raise StoreError(f"unknown chunk id {ids[0]!r}")
        rows = self._call("get", lambda: self._conn.execute(
            f"SELECT {self._COLS} FROM {self.table} WHERE chunk_id = ANY(%s)", (ids,)).fetchall())
        by_id = {r[0]: self._rec(r) for r in rows}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise StoreError(f"unknown chunk id {missing[0]!r}")
        return [by_id[i] for i in ids]

    def _search(self, q: "np.ndarray", k: int) -> list[list[tuple[str, float]]]:
        ef = max(k, self.config.ef_search)
        if self.index == "hnsw" and ef != self._ef_now:
            self._call("setting hnsw.ef_search", lambda: self._conn.execute(f"SET hnsw.ef_search = {int(ef)}"))
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
        return self._call("search", go)

    # -- writes --------------------------------------------------------------------------
    def _write(self, delete_ids: list[str], records: list[ChunkRecord], vecs: "np.ndarray") -> None:
        from psycopg.types.json import Jsonb

        conn = self._conn
        creating = self._dim is None  # then there are records and no delete_ids (ServerStore.replace checked)
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
                        raise StoreError(f"cannot delete unknown chunk ids {format_ids(unknown)}: nothing was changed")
                if records and not creating:
                    new_ids = [r.chunk_id for r in records if r.chunk_id not in set(delete_ids)]
                    clash = [r[0] for r in conn.execute(f"SELECT chunk_id FROM {t} WHERE chunk_id = ANY(%s)", (new_ids,))]
                    if clash:
                        raise StoreError(f"chunk ids already stored: {format_ids(sorted(clash))}: nothing was changed")
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
                                 f"WITH (m = {int(self.config.hnsw_m)}, ef_construction = {int(self.config.ef_construction)})")
        what = f"writing {len(records)} chunks / deleting {len(delete_ids)} into table {t!r} at {self.url}"
        self._call(what, go)
        if creating:
            self._dim = int(vecs.shape[1])

