"""PgVectorStore against a real PostgreSQL 18 + pgvector 0.8 server (started by the ``pg_server`` fixture)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import psycopg
import pytest

from ragft_lib.errors import ConfigError, IndexFormatError, StoreError
from ragft_lib.retrieval import Document, Retriever
from ragft_lib.stores import ChunkRecord, FaissStore, PgVectorStore, VectorStore

from test_retrieval import DOCS, Renamed, state

_n = itertools.count()


@pytest.fixture
def table() -> str:
    return f"kb_{next(_n)}"


@pytest.fixture
def pg(pg_url, table):
    s = PgVectorStore(pg_url, table=table)
    yield s
    s.close()


@pytest.fixture
def r(pg, embedder, emb_cache) -> Retriever:
    return Retriever.from_documents(DOCS, embedder=embedder, cache=emb_cache, mode="dense", store=pg)


def unit(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recs(n: int, offset: int = 0) -> list[ChunkRecord]:
    return [ChunkRecord(f"c{i}", f"d{i // 2}", f"text {i}", f"src{i // 2}.md", 0, 6 + len(str(i)), {"n": i})
            for i in range(offset, offset + n)]


def snapshot(store) -> tuple:
    return store.count(), [x.to_dict() for x in store.records()], store.metadata()


def test_protocol(pg):
    assert isinstance(pg, VectorStore)
    assert pg.count() == 0 and pg.metadata() == {} and list(pg.records()) == []


def test_round_trip_with_citations_and_reopen(r, pg_url, table, embedder, emb_cache):
    by_id = {d.id: d for d in DOCS}
    hits = r.search("Which river flows through Brindlemere?", k=3)
    assert hits[0].doc_id == "brindlemere"
    for h in hits:  # doc id, source and exact character span survive the database
        doc = by_id[h.doc_id]
        assert doc.text[h.start:h.end] == h.text and h.source == doc.source
    ref = Retriever.from_documents(DOCS, embedder=embedder, cache=emb_cache, mode="dense", store=FaissStore("flat"))
    assert [(h.chunk_id, round(h.score, 4)) for h in hits] == \
        [(h.chunk_id, round(h.score, 4)) for h in ref.search("Which river flows through Brindlemere?", k=3)]
    before = state(r)
    r.close()
    r2 = Retriever.open(PgVectorStore(pg_url, table=table), embedder=embedder, cache=emb_cache)
    assert state(r2) == before and r2.chunk_tokens == r.chunk_tokens
    r2.close()


def test_add_update_delete(r, pg_url, table, embedder, emb_cache):
    r.add([Document("kessel", "The Kessel river is 212 km long and freezes in January.", "rivers/kessel.md")])
    assert r.search("How long is the Kessel river?", k=1)[0].doc_id == "kessel"
    r.update([Document("kessel", "The Kessel river is 340 km long.", "rivers/kessel.md")])
    hit = r.search("How long is the Kessel river?", k=1)[0]
    assert "340 km" in hit.text and "212" not in hit.text
    r.delete(["odo"])
    r2 = Retriever.open(PgVectorStore(pg_url, table=table), embedder=embedder, cache=emb_cache)
    assert sorted(r2.document_ids) == sorted(["brindlemere", "vostrand", "ilse", "tarnholm", "kessel"])
    assert "340 km" in r2.chunks_of("kessel")[0].text


def test_non_empty_table_needs_append(r, pg_url, table, embedder, emb_cache):
    with pytest.raises(StoreError, match="already holds 5 chunks"):
        Retriever.from_documents([Document("new", "New text.")], embedder=embedder, cache=emb_cache,
                                 store=PgVectorStore(pg_url, table=table))
    assert r.store.count() == 5
    r2 = Retriever.from_documents([Document("new", "New text.")], embedder=embedder, cache=emb_cache,
                                  store=PgVectorStore(pg_url, table=table), append=True)
    assert r2.num_documents == 6 and r.store.count() == 6


def test_mismatches_are_refused_and_change_nothing(r, pg_url, table, embedder):
    before = snapshot(r.store)
    with pytest.raises(IndexFormatError, match="built with embedder 'sentence-transformers/all-MiniLM-L6-v2'"):
        Retriever.open(PgVectorStore(pg_url, table=table), embedder=Renamed(embedder, name="BAAI/bge-small-en"))
    with pytest.raises(IndexFormatError, match="384-d vectors .* 768-d"):
        Retriever.open(PgVectorStore(pg_url, table=table), embedder=Renamed(embedder, dimension=768))
    with pytest.raises(IndexFormatError, match="built with embedder"):  # append checks too
        Retriever(Renamed(embedder, name="other"), PgVectorStore(pg_url, table=table), append=True, cache=False)
    with pytest.raises(StoreError, match="holds 384-d vectors, not 768-d"):
        PgVectorStore(pg_url, table=table).set_metadata({"embedder": "x", "dimension": 768})
    with pytest.raises(ConfigError, match="dimension 16 does not match the store's 384"):
        r.store.add(recs(2), unit(2))
    assert snapshot(r.store) == before


def test_failed_batch_leaves_nothing(pg):
    pg.add(recs(30), unit(30))
    before = snapshot(pg)
    bad = unit(30, seed=1)
    bad[15, 3] = np.nan  # caught by validation before anything is sent
    with pytest.raises(ConfigError, match="row 15 .* NaN"):
        pg.add(recs(30, 100), bad)
    # PostgreSQL itself rejecting a row in the 3rd COPY batch (text cannot hold NUL): the first two
    # batches were already sent and must be rolled back with it, and so must the delete before them.
    pg.batch_size = 10
    rows = recs(30, 100)
    rows[25] = ChunkRecord("c125", "d62", "bad\x00text", "src.md", 0, 8)
    with pytest.raises(StoreError, match="nothing was changed .*rolled back"):
        pg.replace(["c0", "c1"], rows, unit(30, seed=2))
    assert snapshot(pg) == before
    with pytest.raises(StoreError, match="unknown chunk ids \\['nope'\\]"):
        pg.delete(["c3", "nope"])
    with pytest.raises(StoreError, match="already stored: \\['c4'\\]"):
        pg.add(recs(1, 4), unit(1))
    assert snapshot(pg) == before
    pg.replace(["c0", "c1"], recs(2, 200), unit(2, seed=3))  # a good replace commits
    assert pg.count() == 30 and pg.get(["c200"])[0].metadata == {"n": 200}


def test_failed_first_batch_creates_no_table(pg):
    rows = recs(30)
    rows[25] = ChunkRecord("c25", "d12", "bad\x00text", "src.md", 0, 8)
    pg.batch_size = 10
    with pytest.raises(StoreError, match="rolled back"):
        pg.add(rows, unit(30))
    assert pg.count() == 0 and pg.dimension is None
    pg.add(recs(30), unit(30))  # the table can then be created normally
    assert pg.count() == 30


@pytest.mark.parametrize("kind", ["pgvector", "qdrant"])
def test_server_store_checks_before_writing(kind, request, table):
    """What PgVectorStore and QdrantStore share (``ServerStore``): the checks before a search, a write and a
    metadata change, on an empty store and on a filled one, and the closed store."""
    from ragft_lib.stores import QdrantStore

    s = PgVectorStore(request.getfixturevalue("pg_url"), table=table) if kind == "pgvector" else QdrantStore()
    where = "table" if kind == "pgvector" else "collection"
    assert s.search(unit(2), k=3) == [[], []]
    s.replace((), [], unit(0))  # nothing to do: nothing done
    with pytest.raises(StoreError, match="cannot delete unknown chunk ids \\['x'\\]: nothing was changed"):
        s.delete(["x"])
    with pytest.raises(ConfigError, match="metadata: must be JSON-serialisable"):
        s.set_metadata({"x": object()})
    s.set_metadata({"dimension": 8})
    with pytest.raises(StoreError, match=f"the metadata of {where} '{table if kind == 'pgvector' else 'ragft_chunks'}' "
                                         ".* says 8-d vectors, this batch is 16-d: nothing was changed"):
        s.add(recs(4), unit(4))
    assert s.count() == 0 and s.dimension is None
    s.set_metadata({"dimension": 16})
    s.add(recs(4), unit(4))
    with pytest.raises(StoreError, match=f"holds 16-d vectors, not 8-d: use another {where}"):
        s.set_metadata({"dimension": 8})
    assert s.metadata() == {"dimension": 16} and s.search(unit(1), k=1)[0][0][0] == "c0"
    with pytest.raises(ConfigError, match="k: must be >= 1"):
        s.search(unit(1), k=0)
    s.close()
    with pytest.raises(StoreError, match="is closed"):
        s.count()


@pytest.mark.parametrize("index", ["hnsw", "exact"])
def test_search_exact_and_hnsw(pg_url, table, index):
    s = PgVectorStore(pg_url, table=table, index=index, ef_search=20)
    x = unit(500)
    s.add(recs(500), x)
    hits = s.search(x[:50], 5)
    assert all(h[0][0] == f"c{i}" and abs(h[0][1] - 1.0) < 1e-5 for i, h in enumerate(hits))
    assert len(s.search(x[:1], 60)[0]) == 60  # k above ef_search raises ef_search for the query
    assert s.get(["c3", "c1"]) == recs(2, 3)[:1] + recs(1, 1)
    with pytest.raises(StoreError, match="unknown chunk id 'zz'"):
        s.get(["c1", "zz"])
    with pytest.raises(ConfigError, match="queries"):
        s.search(unit(1, d=8), 3)
    assert (s.size_bytes()["index"] > 0) == (index == "hnsw")
    s.drop()
    assert s.count() == 0 and s.metadata() == {}


def test_unreachable_server_fails_fast_without_the_password():
    t = time.perf_counter()
    for url in ("postgresql://kb:s3cr3t-pw@127.0.0.1:1/rag", "host=127.0.0.1 port=1 user=kb password=s3cr3t-pw dbname=rag"):
        with pytest.raises(StoreError) as err:
            PgVectorStore(url, table="kb", connect_timeout=3)
        msg = str(err.value)
        assert "cannot connect to PostgreSQL at" in msg and "127.0.0.1" in msg and "***" in msg
        assert "s3cr3t-pw" not in msg and "s3cr3t-pw" not in repr(err.value)
    assert time.perf_counter() - t < 30  # a guard against hanging, not a timing claim


def test_database_without_pgvector(pg_server, pg_url):
    """A role that may not create extensions, in a database where pgvector was never enabled (a managed
    database before its administrator ran CREATE EXTENSION): a clear error, no table written."""
    with psycopg.connect(pg_url, autocommit=True) as su:
        su.execute("DROP DATABASE IF EXISTS noext")
        su.execute("DROP ROLE IF EXISTS app")
        su.execute("CREATE ROLE app LOGIN PASSWORD 'app-s3cret'")
        su.execute("CREATE DATABASE noext OWNER app")
    host = pg_url.split("host=", 1)[1]
    url = f"postgresql://app:app-s3cret@/noext?host={host}"
    with pytest.raises(StoreError, match="does not have the pgvector extension enabled .* CREATE EXTENSION vector") as err:
        PgVectorStore(url, table="kb")
    assert "app-s3cret" not in str(err.value) and "'noext'" in str(err.value)
    with psycopg.connect(url) as c:
        assert c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
    # A superuser on a fresh database gets the extension created for it.
    with psycopg.connect(pg_url, autocommit=True) as su:
        su.execute("DROP DATABASE IF EXISTS withext")
        su.execute("CREATE DATABASE withext")
    s = PgVectorStore(pg_server.get_uri("withext"), table="kb")
    s.add(recs(3), unit(3))
    assert s.count() == 3


def test_repr_and_errors_never_show_the_password(pg_url):
    s = PgVectorStore(pg_url.replace("postgres:@", "postgres:hunter2@"), table="kb_secret")
    assert "hunter2" not in repr(s) and "***" in repr(s)
    with pytest.raises(StoreError) as err:
        s.delete(["x"])
    assert "hunter2" not in str(err.value)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.count()


def test_bad_arguments(pg_url):
    with pytest.raises(ConfigError, match="table"):
        PgVectorStore(pg_url, table="kb; DROP TABLE x")
    with pytest.raises(ConfigError, match="index"):
        PgVectorStore(pg_url, index="ivf")
    with pytest.raises(ConfigError, match="hnsw_m"):
        PgVectorStore(pg_url, hnsw_m=0)


def test_versions_and_search_parameters(pg_url, table):
    s = PgVectorStore(pg_url, table=table, ef_search=40)
    v = s.server_versions()
    assert v["postgresql"].split(".")[0].isdigit() and v["pgvector"].count(".") == 2
    with pytest.raises(TypeError):
        s.params["ef_search"] = 100
    with pytest.raises(ConfigError, match="ef_search"):
        s.set_search_params(ef_search=-1)
    s.set_search_params(ef_search=100)
    assert s.params["ef_search"] == 100
    s.close()


def test_exact_store_scans_even_a_table_with_an_hnsw_index(pg_url, table):
    from ragft_lib.stores import embedding_like_vectors, exact_neighbours, search_quality

    x = embedding_like_vectors(3000, 32, clusters=30)
    q = embedding_like_vectors(30, 32, clusters=30, seed=1)
    truth = exact_neighbours(x, q, 10)
    h = PgVectorStore(pg_url, table=table, hnsw_m=4, ef_construction=8, ef_search=10)  # a deliberately poor graph
    h.add([ChunkRecord(f"v{i}", "d", "", "", 0, 0) for i in range(len(x))], x)
    e = PgVectorStore(pg_url, table=table, index="exact")
    plan = "\n".join(r[0] for r in e._conn.execute(
        f"EXPLAIN SELECT chunk_id FROM {table} ORDER BY embedding <=> %s LIMIT 10", (q[0],)).fetchall())
    assert "hnsw" in plan  # without the store's precaution the planner would use the graph
    assert search_quality(e, q, truth)["recall"] == 1.0
