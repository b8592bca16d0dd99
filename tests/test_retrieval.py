"""Retriever with the real packaged embedder: loading, chunking, caching, search, every bad input."""

from __future__ import annotations

import re
import json
import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragft_lib.stores import faiss as faiss_store  # where a save writes its files
from ragft_lib.errors import ConfigError, DataError, IndexFormatError, StoreError
from ragft_lib.retrieval import (
    MODES, Document, EmbeddingCache, Hit, Retriever, chunk_document, load_folder, rrf_fuse,
)
from ragft_lib.stores import FaissStore

DOCS = [
    Document("brindlemere", "Brindlemere is a town in Ostrevia. The river that flows through Brindlemere is the Kessel. "
             "Brindlemere was founded in 1712 by salt traders.", "towns/brindlemere.md"),
    Document("vostrand", "Vostrand Glassworks makes glass lanterns. Its headquarters are in Tarnholm. "
             "The company was founded by Ilse Maro.", "companies/vostrand.md"),
    Document("ilse", "Ilse Maro is a cartographer. She was born in Brindlemere in 1931 and drew the first river maps.",
             "people/ilse.md"),
    Document("tarnholm", "Tarnholm is a port town in the Tarnfell region. Its mayor is Odo Venn.", "towns/tarnholm.md"),
    Document("odo", "Odo Venn keeps bees and has been mayor of Tarnholm since 2019.", "people/odo.md"),
]


@pytest.fixture
def r(embedder, emb_cache) -> Retriever:
    return Retriever.from_documents(DOCS, embedder=embedder, cache=emb_cache, mode="dense")


def state(r: Retriever) -> tuple:
    return (r.num_documents, r.num_chunks, sorted(r.document_ids),
            [(h.chunk_id, round(h.score, 5)) for h in r.search("river of Brindlemere", k=3)])


# -- search -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_search_finds_the_right_document(r, mode):
    hits = r.search("Who is the mayor of Tarnholm?", k=2, mode=mode)
    assert hits[0].doc_id in ("tarnholm", "odo")
    assert len(hits) == 2 and all(isinstance(h, Hit) for h in hits)
    assert hits[0].score >= hits[1].score


def test_hits_cite_exact_spans(r):
    by_id = {d.id: d for d in DOCS}
    for h in r.search("founded", k=5):
        assert by_id[h.doc_id].text[h.start:h.end] == h.text
        assert h.source == by_id[h.doc_id].source
        assert h.chunk_id.startswith(h.doc_id + "#")


def test_k_above_corpus_size_is_clamped(r):
    assert len(r.search("river", k=1000)) == r.num_chunks == 5


@pytest.mark.parametrize("k", [0, -3, 2.5, True, None, "5"])
def test_bad_k_raises(r, k):
    with pytest.raises(ConfigError, match="k"):
        r.search("river", k=k)


@pytest.mark.parametrize("query", ["", "   ", "\n\t", None, 42])
def test_bad_query_raises(r, query):
    with pytest.raises(ConfigError, match="query"):
        r.search(query, k=2)


def test_unknown_mode(r):
    with pytest.raises(ConfigError, match="mode"):
        r.search("river", mode="magic")


# -- building -----------------------------------------------------------------------------


def test_empty_corpus(embedder):
    with pytest.raises(DataError, match="empty corpus"):
        Retriever.from_documents([], embedder=embedder, cache=False)


def test_document_without_text(embedder):
    with pytest.raises(DataError, match="'blank' .* has no text"):
        Retriever.from_documents([DOCS[0], Document("blank", "  \n ")], embedder=embedder, cache=False)


def test_duplicate_ids(embedder, emb_cache):
    with pytest.raises(DataError, match="duplicate document ids.*'ilse'"):
        Retriever.from_documents(DOCS + [DOCS[2]], embedder=embedder, cache=emb_cache)


def test_not_documents(embedder):
    with pytest.raises(ConfigError, match="documents"):
        Retriever.from_documents("some text", embedder=embedder)
    with pytest.raises(ConfigError, match="item 0"):
        Retriever.from_documents([{"id": "a", "text": "b"}], embedder=embedder)


def test_non_empty_store_needs_append(r, embedder, emb_cache):
    with pytest.raises(StoreError, match="already holds 5 chunks"):
        Retriever.from_documents([Document("new", "New text.")], embedder=embedder, store=r.store, cache=emb_cache)
    assert r.store.count() == 5
    r2 = Retriever.from_documents([Document("new", "New text.")], embedder=embedder, store=r.store,
                                  cache=emb_cache, append=True)
    assert r2.num_documents == 6


# -- add / update / delete ---------------------------------------------------------------


def test_add_update_delete(r):
    r.add([Document("kessel", "The Kessel river is 212 km long and freezes in January.", "rivers/kessel.md")])
    assert r.search("How long is the Kessel river?", k=1)[0].doc_id == "kessel"
    r.update([Document("kessel", "The Kessel river is 340 km long.", "rivers/kessel.md")])
    hit = r.search("How long is the Kessel river?", k=1)[0]
    assert "340 km" in hit.text and "212" not in hit.text
    r.delete(["kessel"])
    assert "kessel" not in r.document_ids and r.num_chunks == 5
    r.delete("odo")  # a single id as a string
    assert r.num_documents == 4


def test_bad_writes_change_nothing(r):
    before = state(r)
    with pytest.raises(DataError, match="unknown document ids: \\['nope'\\]"):
        r.delete(["ilse", "nope"])
    with pytest.raises(DataError, match="already indexed: \\['ilse'\\]"):
        r.add([Document("fresh", "Fresh text."), DOCS[2]])
    with pytest.raises(DataError, match="unknown document ids"):
        r.update([Document("nope", "text")])
    with pytest.raises(DataError, match="duplicate"):
        r.add([Document("x", "a"), Document("x", "b")])
    with pytest.raises(DataError, match="has no text"):
        r.update([Document("ilse", " ")])
    assert state(r) == before


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf"])
def test_every_index_kind_supports_delete(embedder, emb_cache, index):
    docs = [Document(f"d{i}", f"Fact number {i}: the lantern of tower {i} is {c}.") for i, c in
            enumerate(["red", "blue", "green", "amber", "violet", "white", "black", "grey"] * 6)]
    r = Retriever.from_documents(docs, embedder=embedder, cache=emb_cache, index=index, mode="dense")
    assert r.store.kind == index
    r.delete([f"d{i}" for i in range(0, 48, 2)])
    assert r.num_chunks == 24
    assert all(int(h.doc_id[1:]) % 2 == 1 for h in r.search("lantern of tower 4", k=24))


# -- embedding cache ----------------------------------------------------------------------


def test_reindexing_an_unchanged_corpus_embeds_nothing(embedder, tmp_path, monkeypatch):
    calls = []
    real = embedder.encode

    def counting(texts, *a, **kw):
        calls.append(len(texts))
        return real(texts, *a, **kw)

    monkeypatch.setattr(embedder, "encode", counting)
    Retriever.from_documents(DOCS, embedder=embedder, cache=tmp_path)
    assert sum(calls) == 5
    calls.clear()
    r = Retriever.from_documents(DOCS, embedder=embedder, cache=tmp_path)
    assert calls == [] and r.stats == {"embedded": 0, "cached": 5}
    r.update([Document("odo", "Odo Venn keeps goats.")])  # only the changed chunk is embedded
    assert calls == [1]
    assert len(EmbeddingCache(embedder.name, embedder.dimension, tmp_path)) == 6


def test_cached_vectors_equal_fresh_ones(embedder, tmp_path):
    a = Retriever(embedder, cache=tmp_path).embed(["The Kessel river."])
    b = Retriever(embedder, cache=tmp_path).embed(["The Kessel river."])
    c = embedder.encode(["The Kessel river."])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, atol=1e-6)


# -- chunking ------------------------------------------------------------------------------


def test_long_document_chunks_respect_the_model_limit(embedder, emb_cache):
    from ragft_lib.datasets import load_pydoc_topics

    doc = next(d for d in load_pydoc_topics() if d.id == "for")
    r = Retriever(embedder, cache=emb_cache, chunk_tokens=10_000)  # asks for too much: capped at 254
    assert r.chunk_tokens == embedder.max_tokens - 2
    chunks = r.chunk([doc])
    assert len(chunks) > 1
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert len(embedder.tokenizer(c.text)["input_ids"]) <= embedder.max_tokens
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:]))  # they overlap
    assert chunks[-1].end == len(doc.text.rstrip())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("ab cdé.,\n!?xyz-Ωß9")), min_size=1, max_size=400),
       size=st.integers(8, 40), overlap=st.integers(0, 4))
def test_chunk_spans_are_exact_for_any_text(embedder, text, size, overlap):
    doc = Document("t", text)
    chunks = chunk_document(doc, embedder.tokenizer, chunk_tokens=size, chunk_overlap=overlap,
                            max_tokens=embedder.max_tokens)
    for c in chunks:
        assert text[c.start:c.end] == c.text and c.text.strip()
        assert embedder.count_tokens(c.text) <= size
    if embedder.count_tokens(text):
        covered = set()
        for c in chunks:
            covered.update(range(c.start, c.end))
        assert all(i in covered for i, ch in enumerate(text) if ch.isalnum())


# -- save / load / open ------------------------------------------------------------------


def test_save_load_round_trip(r, tmp_path, embedder, emb_cache):
    r.delete(["odo"])
    r.save(tmp_path / "idx")
    r2 = Retriever.load(tmp_path / "idx", embedder=embedder, cache=emb_cache)
    assert state(r2) == state(r)
    assert r2.chunk_tokens == r.chunk_tokens and r2.mode == r.mode
    r2.add([Document("odo", "Odo Venn keeps bees.")])  # and it keeps working
    assert r2.num_documents == 5


def test_open_store_directly(r, embedder, emb_cache):
    r2 = Retriever.open(r.store, embedder=embedder, cache=emb_cache)
    assert state(r2) == state(r)


def test_open_empty_store_is_an_error(embedder):
    with pytest.raises(IndexFormatError, match="no ragft Retriever metadata"):
        Retriever.open(FaissStore(), embedder=embedder)


class Renamed:
    """The real embedder under another name / dimension (what a user loading the wrong model has)."""

    def __init__(self, inner, name=None, dimension=None):
        self._inner, self.name = inner, name or inner.name
        self.dimension = dimension or inner.dimension

    def __getattr__(self, attr):
        return getattr(self._inner, attr)


def test_embedder_mismatch_on_load(r, tmp_path, embedder):
    r.save(tmp_path / "idx")
    with pytest.raises(IndexFormatError, match="built with embedder 'sentence-transformers/all-MiniLM-L6-v2'"):
        Retriever.load(tmp_path / "idx", embedder=Renamed(embedder, name="BAAI/bge-small-en"))
    with pytest.raises(IndexFormatError, match="384-d vectors .* 768-d"):
        Retriever.load(tmp_path / "idx", embedder=Renamed(embedder, dimension=768))
    assert Retriever.load(tmp_path / "idx", embedder=embedder).num_chunks == 5


def test_corrupt_index_on_load(r, tmp_path, embedder):
    r.save(tmp_path / "idx")
    version = tmp_path / "idx" / (tmp_path / "idx" / "CURRENT").read_text().strip()
    data = bytearray((version / "index.faiss").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (version / "index.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="index.faiss: corrupt"):
        Retriever.load(tmp_path / "idx", embedder=embedder)


def test_crash_during_save_keeps_previous_index(r, tmp_path, embedder, monkeypatch):
    r.save(tmp_path / "idx")
    before = state(Retriever.load(tmp_path / "idx", embedder=embedder))
    r.add([Document("new", "A new document about lighthouses.")])
    real, n = faiss_store._write_bytes, {"calls": 0}

    def crash_second_write(path, data):
        n["calls"] += 1
        if n["calls"] == 2:
            raise KeyboardInterrupt("power cut (simulated)")
        return real(path, data)

    monkeypatch.setattr(faiss_store, "_write_bytes", crash_second_write)
    with pytest.raises(KeyboardInterrupt):
        r.save(tmp_path / "idx")
    monkeypatch.undo()
    assert state(Retriever.load(tmp_path / "idx", embedder=embedder)) == before
    assert r.num_documents == 6  # the in-memory retriever is intact too


def test_disk_full_during_save_names_the_path_and_keeps_the_old_index(r, tmp_path, embedder, monkeypatch):
    import errno

    from ragft_lib.errors import WriteError

    r.save(tmp_path / "idx")
    before = state(Retriever.load(tmp_path / "idx", embedder=embedder))
    r.add([Document("new", "A new document about lighthouses.")])

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(faiss_store, "_write_bytes", disk_full)
    with pytest.raises(WriteError) as err:
        r.save(tmp_path / "idx")
    assert str(err.value).startswith(f"{tmp_path / 'idx'}: could not save the index: No space left on device")
    assert err.value.errno == errno.ENOSPC and isinstance(err.value, OSError)  # old `except OSError` still works
    monkeypatch.undo()
    assert state(Retriever.load(tmp_path / "idx", embedder=embedder)) == before


def test_cache_must_be_a_flag_or_a_folder():
    # checked before the embedder loads (the conftest guard fails this fast test if one did)
    for bad in (123, 1.5, None, ["a"]):
        with pytest.raises(ConfigError, match=r"^cache: must be True .*, False .* or a folder path, got"):
            Retriever(cache=bad)


def test_save_to_database_store_is_refused(embedder, tmp_path):
    class Db:  # any other VectorStore (here one that delegates to faiss)
        def __init__(self):
            self._inner = FaissStore()

        def __getattr__(self, attr):
            return getattr(self._inner, attr)

    r = Retriever(embedder, store=Db(), cache=False)
    with pytest.raises(ConfigError, match="persists on every write"):
        r.save(tmp_path / "anywhere")
    assert not (tmp_path / "anywhere").exists()


# -- loading folders ----------------------------------------------------------------------


def _minimal_pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 712 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a.txt").write_text("Plain text about the Kessel river.")
    (tmp_path / "b.md").write_text("# Title\n\nMarkdown about Tarnholm.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.rst").write_text("Title\n=====\n\nreStructuredText about bees.")
    (tmp_path / "d.html").write_text("<html><head><title>T</title><style>p{}</style></head>"
                                     "<body><p>HTML about <b>glass</b> lanterns.</p><script>x()</script></body></html>")
    (tmp_path / "e.jsonl").write_text(json.dumps({"id": "e1", "text": "JSON line one.", "lang": "en"}) + "\n\n"
                                      + json.dumps({"text": "JSON line two."}) + "\n")
    (tmp_path / "f.pdf").write_bytes(_minimal_pdf("PDF text about salt traders"))
    (tmp_path / "image.png").write_bytes(b"\x89PNG")  # ignored: not a supported extension
    (tmp_path / ".hidden.txt").write_text("ignored")
    return tmp_path


def test_load_folder_reads_every_format(folder):
    docs = {d.id: d for d in load_folder(folder)}
    assert set(docs) == {"a.txt", "b.md", "sub/c.rst", "d.html", "e1", "e.jsonl:3", "f.pdf"}
    assert docs["d.html"].text == "HTML about glass lanterns."
    assert docs["e1"].metadata == {"lang": "en"}
    assert "salt traders" in docs["f.pdf"].text
    assert docs["a.txt"].source == str(folder / "a.txt")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("latin1.txt", "caf\xe9".encode("latin-1"), "latin1.txt: not UTF-8 \\(byte 3"),
        ("empty.md", b"  \n", "empty.md: empty file"),
        ("bad.jsonl", b'{"text": "ok"}\n{"text": \n', "bad.jsonl:2: not valid JSON"),
        ("notext.jsonl", b'{"id": "x"}\n', "notext.jsonl:1: field 'text'"),
        ("broken.pdf", b"%PDF-1.4 garbage", "broken.pdf: "),
    ],
)
def test_load_folder_strict_and_lenient(folder, name, content, message):
    (folder / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_folder(folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = load_folder(folder, lenient=True)
    assert len(caught) == 1 and name in str(caught[0].message) and "skipped 1 file" in str(caught[0].message)
    assert len(docs) == 7


def test_load_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_folder(tmp_path / "missing")
    with pytest.raises(DataError, match="no readable documents"):
        load_folder(tmp_path)
    (tmp_path / "x.jsonl").write_text('{"id": "a", "text": "one"}\n')
    (tmp_path / "y.jsonl").write_text('{"id": "a", "text": "two"}\n')
    with pytest.raises(DataError, match="duplicate document ids.*'a'"):
        load_folder(tmp_path)


def test_from_folder(folder, embedder, emb_cache):
    r = Retriever.from_folder(folder, embedder=embedder, cache=emb_cache)
    assert r.search("glass lanterns", k=1)[0].doc_id == "d.html"


def test_rrf_fusion_rewards_agreement():
    fused = rrf_fuse([[("a", 1.0), ("b", 0.9), ("c", 0.8)], [("b", 9.0), ("c", 8.0)]], k=3)
    assert [c for c, _ in fused] == ["b", "c", "a"]


# -- configuration: per-document hits, weighted fusion, title context -------------------

from ragft_lib.retrieval import (  # noqa: E402
    DEFAULT_CONFIG, RetrievalConfig, best_per_document, context_text, weighted_fuse,
)
from ragft_lib._fields import field_specs  # noqa: E402

LONG = [
    Document("manual", " ".join(f"Step {i}: turn the brass valve of the Kessel pump {i} times and wait." for i in range(60)),
             "manual.md", {"title": "Kessel pump manual"}),
    Document("notes", "The Kessel pump was installed in 1931. It drains the lower mine.", "notes.md",
             {"title": "Mine history"}),
    Document("bees", "Odo Venn keeps bees on the roof of the town hall.", "bees.md"),
]


@pytest.mark.parametrize("mode", MODES)
def test_per_document_returns_one_hit_per_document(embedder, emb_cache, mode):
    r = Retriever.from_documents(LONG, embedder=embedder, cache=emb_cache, per_document=True, mode=mode)
    assert len(r.chunks_of("manual")) > 2  # several chunks could compete
    hits = r.search("How many times do I turn the valve of the Kessel pump?", k=5)
    ids = [h.doc_id for h in hits]
    assert len(ids) == len(set(ids)) and ids[0] == "manual"
    assert len(hits) <= 3  # k clamped to the number of documents
    assert all(hits[i].score >= hits[i + 1].score for i in range(len(hits) - 1))
    for h in hits:  # still exact, citable chunks
        assert next(d for d in LONG if d.id == h.doc_id).text[h.start:h.end] == h.text


def test_chunk_mode_can_repeat_a_document(embedder, emb_cache):
    r = Retriever.from_documents(LONG, embedder=embedder, cache=emb_cache, per_document=False, mode="dense")
    ids = [h.doc_id for h in r.search("turn the brass valve", k=3)]
    assert ids.count("manual") >= 2


def test_default_config_is_what_from_documents_uses(r):
    assert r.config.mode == "dense"  # the fixture asks for dense; the other fields come from the default
    assert r.config.per_document == DEFAULT_CONFIG.per_document
    r2 = Retriever(r.embedder, cache=False)
    assert r2.config == DEFAULT_CONFIG and r2.mode == DEFAULT_CONFIG.mode


@pytest.mark.parametrize("field", ["dense_weight", "lead_weight"])
@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan"), "0.5", True])
def test_weights_outside_unit_interval_are_refused(embedder, field, weight):
    with pytest.raises(ConfigError, match=field) as err:
        Retriever(embedder, cache=False, **{field: weight})
    assert err.value.field == field
    with pytest.raises(ConfigError, match=field):
        RetrievalConfig(**{field: weight})


@pytest.mark.parametrize("field, value", [("mode", "magic"), ("fusion", "max"), ("context", "summary"),
                                          ("per_document", "yes")])
def test_bad_config_fields_name_themselves(embedder, field, value):
    with pytest.raises(ConfigError) as err:
        Retriever(embedder, cache=False, **{field: value})
    assert err.value.field == field


@pytest.mark.parametrize("cache", [123, 1.5, ["/tmp"], None])
def test_bad_cache_argument(embedder, cache):
    with pytest.raises(ConfigError, match="cache") as err:
        Retriever(embedder, cache=cache)
    assert err.value.field == "cache"


def test_bad_config_object(embedder):
    with pytest.raises(ConfigError, match="config"):
        Retriever(embedder, cache=False, config={"mode": "dense"})


def test_config_fields_are_described():
    specs = {s["name"]: s for s in field_specs(RetrievalConfig)}
    assert set(specs) == {"mode", "per_document", "fusion", "dense_weight", "context", "lead_weight"}
    assert specs["lead_weight"]["min"] == 0.0 and specs["lead_weight"]["max"] == 1.0
    assert specs["dense_weight"]["min"] == 0.0 and specs["dense_weight"]["max"] == 1.0
    assert all(s["help"] for s in specs.values())


def test_weighted_fusion_weights():
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    lexical = [("c", 12.0), ("b", 2.0)]
    assert [c for c, _ in weighted_fuse([dense, lexical], [1.0, 0.0], 3)] == ["a", "b", "c"]  # dense alone
    bm25_only = weighted_fuse([dense, lexical], [0.0, 1.0], 3)  # BM25 alone: its lowest (b) scores 0, like absent a
    assert bm25_only[0] == ("c", 1.0) and {c: s for c, s in bm25_only[1:]} == {"a": 0.0, "b": 0.0}
    fused = dict(weighted_fuse([dense, lexical], [0.5, 0.5], 3))
    assert fused["c"] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0) and fused["a"] == pytest.approx(0.5)
    assert weighted_fuse([[], lexical], [0.9, 0.1], 2) == [("c", pytest.approx(0.1)), ("b", 0.0)]
    with pytest.raises(ConfigError, match="weights"):
        weighted_fuse([dense, lexical], [1.0], 3)


def test_best_per_document_keeps_each_documents_first_chunk():
    scored = [("m#2", 0.9), ("m#0", 0.8), ("n#0", 0.7), ("m#1", 0.6), ("b#0", 0.5)]
    doc_of = {"m#0": "m", "m#1": "m", "m#2": "m", "n#0": "n", "b#0": "b"}
    assert best_per_document(scored, doc_of) == [("m#2", 0.9), ("n#0", 0.7), ("b#0", 0.5)]
    assert best_per_document(scored, doc_of, k=2) == [("m#2", 0.9), ("n#0", 0.7)]


def test_hybrid_weight_one_ranks_like_dense(embedder, emb_cache):
    dense = Retriever.from_documents(LONG + DOCS, embedder=embedder, cache=emb_cache, mode="dense", per_document=True)
    hybrid = Retriever.from_documents(LONG + DOCS, embedder=embedder, cache=emb_cache, mode="hybrid",
                                      per_document=True, dense_weight=1.0)
    q = "Who keeps bees in Tarnholm?"
    assert [h.doc_id for h in hybrid.search(q, k=4)] == [h.doc_id for h in dense.search(q, k=4)]


def test_title_context_is_embedded_with_each_chunk(embedder, emb_cache):
    seen = []
    r = Retriever(embedder, cache=emb_cache, context="title")
    real = r.embed
    r.embed = lambda texts: seen.extend(texts) or real(texts)
    r.add(LONG)
    chunks = r.chunk(LONG)
    manual = [t for t in seen if "brass valve" in t]
    assert len(manual) == len([c for c in chunks if c.doc_id == "manual"]) > 1
    assert all(t.startswith("Kessel pump manual\n") for t in manual)
    assert any(t == "Odo Venn keeps bees on the roof of the town hall." for t in seen)  # no title: the text alone
    for c in chunks:  # the title shares the model's window: chunk + title still fit
        assert embedder.count_tokens(context_text(c, "title")) + 2 <= embedder.max_tokens
    hit = r.search("How many times do I turn the valve?", k=1)[0]
    assert hit.doc_id == "manual" and "Kessel pump manual" not in hit.text  # hits stay exact spans
    assert LONG[0].text[hit.start:hit.end] == hit.text


def test_context_must_match_the_store_when_appending(embedder, emb_cache):
    r = Retriever.from_documents(DOCS, embedder=embedder, cache=emb_cache, context="title")
    with pytest.raises(ConfigError, match="context='title'") as err:
        Retriever(embedder, store=r.store, cache=emb_cache, append=True, context="none")
    assert err.value.field == "context"


def test_settings_survive_save_and_load(embedder, emb_cache, tmp_path):
    r = Retriever.from_documents(LONG, embedder=embedder, cache=emb_cache, mode="hybrid", per_document=True,
                                 fusion="weighted", dense_weight=0.7, context="title")
    r.save(tmp_path / "idx")
    r2 = Retriever.load(tmp_path / "idx", embedder=embedder, cache=emb_cache)
    assert r2.config == r.config
    q = "When was the Kessel pump installed?"
    assert [(h.chunk_id, round(h.score, 5)) for h in r2.search(q, k=3)] == \
           [(h.chunk_id, round(h.score, 5)) for h in r.search(q, k=3)]


def test_version_1_index_reopens_with_its_old_settings(r, tmp_path, embedder, emb_cache):
    meta = r.store.metadata()
    meta["retriever"] = {"version": 1, "mode": "hybrid", "chunk_tokens": r.chunk_tokens,
                         "chunk_overlap": r.chunk_overlap}
    r.store.set_metadata(meta)
    r.save(tmp_path / "old")
    # save() rewrites the metadata from the live retriever: write version 1 straight into the folder's store
    store = FaissStore.load(tmp_path / "old")
    store.set_metadata(meta)
    r2 = Retriever.open(store, embedder=embedder, cache=emb_cache)
    assert r2.config == RetrievalConfig(mode="hybrid", per_document=False, fusion="rrf", context="none")


def test_document_of(r):
    hit = r.search("river of Brindlemere", k=1)[0]
    assert r.document_of(hit.chunk_id) == hit.doc_id
    with pytest.raises(DataError, match="unknown chunk id 'nope#0'"):
        r.document_of("nope#0")


def test_embedding_cache_that_cannot_be_written_warns_and_keeps_what_it_had(tmp_path):
    import numpy as np

    from ragft_lib.retrieval import EmbeddingCache

    cache = EmbeddingCache("test/model", 2, folder=tmp_path)
    assert cache.put(["kept"], np.ones((1, 2), "float32")) is True
    cache._db.execute("PRAGMA query_only = ON")  # every write now fails inside SQLite, as on a full disk
    with pytest.warns(RuntimeWarning, match=rf"^{re.escape(str(cache.path))}: could not write 1 vectors to the embedding cache"):
        assert cache.put(["new"], np.zeros((1, 2), "float32")) is False
    found, missing = cache.get(["kept", "new"])
    assert list(found) == [0] and missing == [1]


# -- lead_weight: a document's dense score mixes its first chunk's and its best chunk's ------------

LEAD = [  # "later": the pump answer sits in its second chunk; "lead": its opening is about the pump
    Document("later", "The Oster mill grinds rye for the town bakers every autumn. " * 30
             + "The Kessel pump valve is turned seven times before the pump starts.", "later.md"),
    Document("lead", "The Kessel pump drains the lower mine; its valve sits under a brass cover. "
             + "Miners eat lunch at noon in the lower hall. " * 30, "lead.md"),
    Document("bees", "Odo Venn keeps bees on the roof of the town hall.", "bees.md"),
]


def test_lead_weight_scores_documents_by_first_and_best_chunk(embedder, emb_cache):
    r = Retriever.from_documents(LEAD, embedder=embedder, cache=emb_cache, mode="dense", per_document=True,
                                 lead_weight=0.0, index="flat")
    assert len(r.chunks_of("later")) > 1 and len(r.chunks_of("lead")) > 1
    q = "How many times is the Kessel pump valve turned?"
    qv = r.embed_query(q)
    chunk_score = {c: s for c, s in r.store.search(qv, r.num_chunks)[0]}
    for lw in (0.0, 0.5, 1.0):
        r.config = replace(r.config, lead_weight=lw)
        got = dict(r.search_vector(qv, 3))
        for doc in ("later", "lead", "bees"):
            ids = [h.chunk_id for h in r.chunks_of(doc)]
            best = max(ids, key=chunk_score.get)
            want = lw * chunk_score[ids[0]] + (1 - lw) * chunk_score[best]
            assert got[best] == pytest.approx(want, abs=1e-5)  # the hit shown is the best chunk
    by_id = {d.id: d for d in LEAD}
    for h in r.search(q, k=3):  # hits stay exact, citable spans
        assert by_id[h.doc_id].text[h.start:h.end] == h.text


def test_lead_weight_without_store_vectors_uses_the_lowest_score(embedder, emb_cache):
    """A store without vectors(): a first chunk outside the candidates gets the lowest candidate score."""
    r = Retriever.from_documents(LEAD, embedder=embedder, cache=emb_cache, mode="dense", per_document=True,
                                 lead_weight=1.0, index="flat")
    scored = [("later#1", 0.9), ("bees#0", 0.2)]
    with_vectors = dict(r._lead_scored(scored, r.embed_query("pump valve")))
    exact = float(r.store.vectors(["later#0"])[0] @ r.embed_query("pump valve")[0])
    assert with_vectors["later#1"] == pytest.approx(exact, abs=1e-5) and with_vectors["bees#0"] == 0.2

    class NoVectors:
        def __init__(self, store):
            self._s = store

        def __getattr__(self, name):
            if name == "vectors":
                raise AttributeError(name)
            return getattr(self._s, name)

    r.store = NoVectors(r.store)
    assert dict(r._lead_scored(scored, r.embed_query("pump valve"))) == {"later#1": 0.2, "bees#0": 0.2}


def test_lead_weight_survives_save_and_load_and_old_stores_mean_zero(embedder, emb_cache, tmp_path):
    r = Retriever.from_documents(LEAD, embedder=embedder, cache=emb_cache, lead_weight=0.3)
    r.save(tmp_path / "idx")
    assert Retriever.load(tmp_path / "idx", embedder=embedder, cache=emb_cache).config.lead_weight == 0.3
    meta = r.store.metadata()
    del meta["retriever"]["lead_weight"]  # a version-2 store written before lead_weight existed
    r.store.set_metadata(meta)
    assert Retriever.open(r.store, embedder=embedder, cache=emb_cache).config.lead_weight == 0.0
