"""QdrantStore through qdrant-client's local mode (":memory:" and a folder).

Local mode runs inside the client as brute-force numpy search: these tests exercise the client calls
the store makes (collections, upserts, uuid5 point ids, payloads, metadata, scroll, batch queries),
not a Qdrant server's HNSW index, sharding or durability. No Qdrant server can be installed here.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from ragft_lib.errors import ConfigError, IndexFormatError, StoreError
from ragft_lib.retrieval import Document, Retriever
from ragft_lib.stores import ChunkRecord, QdrantStore, VectorStore, qdrant_point_id

from test_pgvector import recs, snapshot, unit
from test_retrieval import DOCS, Renamed, state


@pytest.fixture
def r(embedder, emb_cache) -> Retriever:
    return Retriever.from_documents(DOCS, embedder=embedder, cache=emb_cache, mode="dense", store=QdrantStore(":memory:"))


def test_protocol_and_point_ids():
    s = QdrantStore()
    assert isinstance(s, VectorStore) and s.count() == 0 and s.metadata() == {}
    assert qdrant_point_id("a#0") == qdrant_point_id("a#0") != qdrant_point_id("a#1")


def test_round_trip_with_citations_and_reopen_from_a_folder(tmp_path, embedder, emb_cache):
    r = Retriever.from_documents(DOCS, embedder=embedder, cache=emb_cache, mode="dense",
                                 store=QdrantStore(str(tmp_path / "q"), collection="kb"))
    by_id = {d.id: d for d in DOCS}
    hits = r.search("Which river flows through Brindlemere?", k=3)
    assert hits[0].doc_id == "brindlemere"
    assert all(by_id[h.doc_id].text[h.start:h.end] == h.text and h.source == by_id[h.doc_id].source for h in hits)
    before = state(r)
    r.close()  # local mode locks its folder: one client at a time
    r2 = Retriever.open(QdrantStore(str(tmp_path / "q"), collection="kb"), embedder=embedder, cache=emb_cache)
    assert state(r2) == before
    r2.add([Document("kessel", "The Kessel river is 340 km long.")])  # and it keeps working
    assert r2.num_documents == 6
    r2.close()


def test_add_update_delete(r):
    r.add([Document("kessel", "The Kessel river is 212 km long and freezes in January.", "rivers/kessel.md")])
    assert r.search("How long is the Kessel river?", k=1)[0].doc_id == "kessel"
    r.update([Document("kessel", "The Kessel river is 340 km long.", "rivers/kessel.md")])
    hit = r.search("How long is the Kessel river?", k=1)[0]
    assert "340 km" in hit.text and "212" not in hit.text
    r.delete(["kessel", "odo"])
    assert r.num_chunks == 4 and r.store.count() == 4
    assert [x.doc_id for x in r.store.records()] == ["brindlemere", "vostrand", "ilse", "tarnholm"]


def test_non_empty_collection_needs_append_and_mismatch(r, embedder, emb_cache):
    with pytest.raises(StoreError, match="already holds 5 chunks"):
        Retriever.from_documents([Document("new", "New text.")], embedder=embedder, store=r.store, cache=emb_cache)
    with pytest.raises(IndexFormatError, match="built with embedder"):
        Retriever.open(r.store, embedder=Renamed(embedder, name="BAAI/bge-small-en"))
    with pytest.raises(IndexFormatError, match="384-d vectors .* 768-d"):
        Retriever.open(r.store, embedder=Renamed(embedder, dimension=768))
    with pytest.raises(StoreError, match="holds 384-d vectors, not 768-d"):
        r.store.set_metadata({"embedder": "x", "dimension": 768})
    assert r.store.count() == 5 and r.store.metadata()["embedder"] == embedder.name
    r2 = Retriever.from_documents([Document("new", "New text.")], embedder=embedder, store=r.store,
                                  cache=emb_cache, append=True)
    assert r2.num_documents == 6


def test_bad_writes_change_nothing():
    s = QdrantStore(batch_size=10)
    s.add(recs(30), unit(30))
    before = snapshot(s)
    bad = unit(30, seed=1)
    bad[15, 0] = np.inf
    with pytest.raises(ConfigError, match="row 15"):
        s.add(recs(30, 100), bad)
    with pytest.raises(ConfigError, match="dimension 8 does not match the store's 16"):
        s.add(recs(2, 100), unit(2, d=8))
    with pytest.raises(StoreError, match="unknown chunk ids \\['nope'\\]"):
        s.replace(["c0", "nope"], recs(2, 100), unit(2))
    with pytest.raises(StoreError, match="already stored: \\['c4'\\]"):
        s.add(recs(1, 4), unit(1))
    assert snapshot(s) == before


def test_a_write_failing_half_way_is_undone(monkeypatch):
    """A request failing after two upsert batches (here: a payload the client cannot encode) triggers the
    compensation: points added are removed, points overwritten or deleted come back."""
    s = QdrantStore(batch_size=10)
    s.add(recs(30), unit(30))
    before, vec_before = snapshot(s), s.search(unit(3, seed=5), 5)
    rows = recs(30, 100)
    rows[25] = ChunkRecord("c125", "d62", "text", "src.md", 0, 4, {"x": object()})
    # Sneak the bad payload past validation the way a server error would arrive: after the first batches.
    # (QdrantStore validates in ServerStore.replace, shared with PgVectorStore.)
    import ragft_lib.stores.server as server

    monkeypatch.setattr(server, "check_batch", lambda records, vectors, dim: np.asarray(vectors, dtype="float32"))
    with pytest.raises(StoreError, match="upsert failed"):
        s.replace(["c0", "c1", "c2"], rows, unit(30, seed=2))
    monkeypatch.undo()
    assert snapshot(s) == before
    after = s.search(unit(3, seed=5), 5)  # restored vectors: same ranking, scores equal to float32 precision
    assert [[c for c, _ in h] for h in after] == [[c for c, _ in h] for h in vec_before]
    assert np.allclose([[x for _, x in h] for h in after], [[x for _, x in h] for h in vec_before], atol=1e-6)


def test_exact_search_and_scores():
    s = QdrantStore(exact=True)
    x = unit(300)
    s.add(recs(300), x)
    hits = s.search(x[:20], 3)
    assert all(h[0][0] == f"c{i}" and abs(h[0][1] - 1.0) < 1e-5 for i, h in enumerate(hits))
    assert s.get(["c7"])[0] == recs(1, 7)[0]
    with pytest.raises(StoreError, match="unknown chunk id 'zz'"):
        s.get(["zz"])
    s.drop()
    assert s.count() == 0
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.count()


def test_unreachable_server_fails_fast_without_the_key():
    t = time.perf_counter()
    with pytest.raises(StoreError) as err:
        QdrantStore("http://127.0.0.1:1", api_key="qdr-s3cret-key", timeout=3)
    msg = str(err.value)
    assert "cannot reach Qdrant at http://127.0.0.1:1" in msg and "qdr-s3cret-key" not in msg
    with pytest.raises(StoreError) as err:
        QdrantStore("http://admin:pw-s3cret@127.0.0.1:1", timeout=3)
    assert "pw-s3cret" not in str(err.value) and "admin:***@" in str(err.value)
    assert time.perf_counter() - t < 30  # a guard against hanging, not a timing claim


def test_bad_arguments():
    with pytest.raises(ConfigError, match="collection"):
        QdrantStore(collection="a/b")
    with pytest.raises(ConfigError, match="batch_size"):
        QdrantStore(batch_size=0)
