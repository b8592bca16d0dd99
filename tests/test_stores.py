"""FaissStore: the VectorStore protocol, transactional writes, atomic checksummed persistence."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ragft_lib import stores
from ragft_lib.stores import faiss as faiss_store  # where a save writes its files
from ragft_lib.errors import ConfigError, IndexFormatError, StoreError, WriteError
from ragft_lib.stores import ChunkRecord, FaissStore, VectorStore

KINDS = ["flat", "hnsw", "ivf", "ivfpq"]


def unit(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recs(n: int, offset: int = 0) -> list[ChunkRecord]:
    return [ChunkRecord(f"c{i}", f"d{i // 2}", f"text {i}", f"src{i // 2}.md", 0, 6 + len(str(i)), {"n": i})
            for i in range(offset, offset + n)]


def snapshot(store: FaissStore, queries: np.ndarray) -> tuple:
    return store.count(), [r.to_dict() for r in store.records()], store.search(queries, 5), store.metadata()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    """Each kind built (and trained) once, saved; tests get fresh copies by loading."""
    x = unit(1200)
    out = {}
    for kind in KINDS:
        s = FaissStore(kind, pq_m=4)  # 4 sub-quantisers keep IVF-PQ training fast
        s.add(recs(1200), x)
        s.set_metadata({"embedder": "test", "dimension": 32})
        out[kind] = s.save(tmp_path_factory.mktemp(kind))
    return out


@pytest.fixture(params=KINDS)
def filled(request, saved) -> tuple[FaissStore, np.ndarray]:
    return FaissStore.load(saved[request.param]), unit(1200)


def test_protocol_is_runtime_checkable():
    assert isinstance(FaissStore(), VectorStore)
    assert not isinstance(object(), VectorStore)


def test_exact_self_match_and_records(filled):
    s, x = filled
    hits = s.search(x[:20], 3)
    if s.kind == "ivfpq":  # compressed to 4 x 6 bits: approximate, the vector is usually in the top 3
        assert sum(f"c{i}" in [c for c, _ in h] for i, h in enumerate(hits)) >= 10
    else:  # exact vectors: the vector itself comes first
        assert all(h[0][0] == f"c{i}" for i, h in enumerate(hits))
    assert s.get(["c5", "c7"])[1].metadata == {"n": 7}
    assert [r.chunk_id for r in s.records()][:3] == ["c0", "c1", "c2"]
    assert s.count() == 1200


def test_k_larger_than_store_is_clamped_and_k_checked():
    s = FaissStore("flat")
    s.add(recs(3), unit(3))
    assert len(s.search(unit(1), 10)[0]) == 3
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="k"):
            s.search(unit(1), bad)
    assert FaissStore().search(unit(1), 3) == [[]]


def test_delete_and_replace(filled):
    s, x = filled
    s.delete(["c0", "c1"])
    assert s.count() == 1198
    assert all(c not in ("c0", "c1") for c, _ in s.search(x[:1], 10)[0])
    new = [ChunkRecord("c0", "d0", "new text", "src0.md", 0, 8)]
    s.replace(["c2", "c3"], new, x[2:3])
    assert s.count() == 1197
    assert s.get(["c0"])[0].text == "new text"
    if s.kind != "ivfpq":
        assert s.search(x[2:3], 1)[0][0][0] == "c0"


@pytest.mark.parametrize(
    "action, error",
    [
        (lambda s, x: s.add(recs(1), unit(1)), StoreError),  # id already stored
        (lambda s, x: s.add(recs(2, offset=5000) + recs(1, offset=5000), unit(3)), ConfigError),  # duplicate in batch
        (lambda s, x: s.add(recs(1, offset=5000), unit(1, d=16)), ConfigError),  # wrong dimension
        (lambda s, x: s.add(recs(2, offset=5000), unit(1)), ConfigError),  # length mismatch
        (lambda s, x: s.add(recs(1, offset=5000), np.full((1, 32), np.nan, "float32")), ConfigError),
        (lambda s, x: s.delete(["c1", "nope"]), StoreError),  # one unknown id: nothing deleted
        (lambda s, x: s.replace(["c1"], recs(1, offset=2), unit(1)), StoreError),  # c2 exists, not being replaced
        (lambda s, x: s.add([ChunkRecord("z", "z", "t", "s", 0, 1, {"bad": object()})], unit(1)), ConfigError),
    ],
)
def test_failed_writes_change_nothing(filled, action, error):
    s, x = filled
    before = snapshot(s, x[:3])
    with pytest.raises(error):
        action(s, x)
    assert snapshot(s, x[:3]) == before


def test_hnsw_tombstones_then_compaction():
    x = unit(500)
    s = FaissStore("hnsw", rebuild_fraction=0.5)
    s.add(recs(500), x)
    s.delete([f"c{i}" for i in range(100)])
    assert len(s._tombstones) == 100 and s.faiss_index.ntotal == 500
    top = s.search(x[:100], 1)
    assert all(h[0][0] not in {f"c{i}" for i in range(100)} for h in top)
    s.delete([f"c{i}" for i in range(100, 300)])  # 300 > 0.5 * 500: rebuilt without tombstones
    assert s._tombstones == set() and s.faiss_index.ntotal == 200
    assert s.search(x[400:401], 1)[0][0][0] == "c400"
    np.testing.assert_array_equal(s.vectors(["c450"])[0], x[450])


def test_save_load_round_trip(filled, tmp_path):
    s, x = filled
    s.delete(["c0"])  # a tombstone for HNSW
    s.save(tmp_path / "idx")
    t = FaissStore.load(tmp_path / "idx")
    assert snapshot(t, x[:3]) == snapshot(s, x[:3])
    assert t.kind == s.kind
    t.add(recs(1, offset=9000), unit(1, seed=9))  # ids keep counting after a load
    assert t.count() == s.count() + 1


def test_save_replaces_previous_version(tmp_path):
    s = FaissStore("flat")
    s.add(recs(4), unit(4))
    s.save(tmp_path / "idx")
    s.delete(["c0"])
    s.save(tmp_path / "idx")
    assert FaissStore.load(tmp_path / "idx").count() == 3
    assert len([p for p in (tmp_path / "idx").iterdir() if p.name.startswith("v-")]) == 1


def test_save_refuses_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    s = FaissStore("flat")
    s.add(recs(1), unit(1))
    with pytest.raises(ConfigError, match="non-empty folder"):
        s.save(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize("fail_on", [1, 2, 3, 4])
def test_crash_during_save_leaves_previous_index(tmp_path, monkeypatch, fail_on):
    """Each call of the writer fails in turn (index, records, manifest, CURRENT): the old version survives."""
    s = FaissStore("hnsw")
    x = unit(50)
    s.add(recs(50), x)
    s.save(tmp_path / "idx")
    before = snapshot(FaissStore.load(tmp_path / "idx"), x[:2])
    s.delete(["c0", "c1"])
    s.add(recs(5, offset=100), unit(5, seed=3))
    real = faiss_store._write_bytes
    calls = {"n": 0}

    def flaky(path, data):
        calls["n"] += 1
        if calls["n"] == fail_on:
            with open(path, "wb") as f:  # half a file, then the "crash"
                f.write(bytes(memoryview(data).cast("B")[:10]))
            raise OSError("disk full (simulated)")
        return real(path, data)

    monkeypatch.setattr(faiss_store, "_write_bytes", flaky)
    with pytest.raises(WriteError, match=rf"^{re.escape(str(tmp_path / 'idx'))}: could not save the index: disk full \(simulated\)"):
        s.save(tmp_path / "idx")
    monkeypatch.setattr(faiss_store, "_write_bytes", real)
    assert snapshot(FaissStore.load(tmp_path / "idx"), x[:2]) == before
    s.save(tmp_path / "idx")  # and the next save works and cleans up
    assert FaissStore.load(tmp_path / "idx").count() == 53
    assert sorted(p.name[:2] for p in (tmp_path / "idx").iterdir()) == ["CU", "v-"]


def _version(root):
    return root / (root / "CURRENT").read_text().strip()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda v: (v / "index.faiss").write_bytes((v / "index.faiss").read_bytes()[:-100]), "index.faiss: corrupt"),
        (lambda v: (v / "records.jsonl").write_text("{not json\n"), "records.jsonl: corrupt"),
        (lambda v: (v / "manifest.json").write_text("{"), "manifest.json: unreadable"),
        (lambda v: (v / "index.faiss").unlink(), "index.faiss: missing"),
        (lambda v: (v.parent / "CURRENT").unlink(), "no CURRENT"),
        (lambda v: (v.parent / "CURRENT").write_text("v-missing\n"), "manifest.json: missing"),
    ],
)
def test_corrupt_files_raise_index_format_error(tmp_path, damage, message):
    s = FaissStore("flat")
    s.add(recs(10), unit(10))
    s.save(tmp_path / "idx")
    damage(_version(tmp_path / "idx"))
    with pytest.raises(IndexFormatError, match=message):
        FaissStore.load(tmp_path / "idx")


def test_corrupt_file_with_matching_checksum_is_still_caught(tmp_path):
    """Garbage that passes the checksum (manifest rewritten too) must not crash faiss or numpy."""
    s = FaissStore("flat")
    s.add(recs(10), unit(10))
    s.save(tmp_path / "idx")
    v = _version(tmp_path / "idx")
    (v / "index.faiss").write_bytes(b"garbage" * 10)
    m = json.loads((v / "manifest.json").read_text())
    m["files"]["index.faiss"] = {"sha256": faiss_store._sha256_file(v / "index.faiss"), "bytes": 70}
    (v / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexFormatError, match="faiss cannot read it"):
        FaissStore.load(tmp_path / "idx")


def test_format_version_checked(tmp_path):
    s = FaissStore("flat")
    s.add(recs(2), unit(2))
    s.save(tmp_path / "idx")
    v = _version(tmp_path / "idx")
    m = json.loads((v / "manifest.json").read_text())
    m["format_version"] = 99
    (v / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexFormatError, match="format_version 99"):
        FaissStore.load(tmp_path / "idx")


def test_closed_store_refuses_calls():
    s = FaissStore("flat")
    s.add(recs(2), unit(2))
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.count()


def test_bad_constructor_arguments():
    with pytest.raises(ConfigError, match="index"):
        FaissStore("lsh")
    with pytest.raises(ConfigError, match="hnsw_m"):
        FaissStore("hnsw", hnsw_m=0)
    with pytest.raises(ConfigError) as err:
        FaissStore(rebuild_fraction="0.5")
    assert err.value.field == "rebuild_fraction"


def test_search_parameters_change_only_through_their_checks():
    s = FaissStore("hnsw", ef_search=16)
    x = unit(200)
    s.add(recs(200), x)
    with pytest.raises(TypeError):
        s.params["ef_search"] = 100  # read-only: writes past the checks are refused
    with pytest.raises(ConfigError) as err:
        s.set_search_params(ef_search=0)
    assert err.value.field == "ef_search" and s.params["ef_search"] == 16
    s.set_search_params(ef_search=128)
    assert s.params["ef_search"] == 128 and s.search(x[:1], 1)[0][0][0] == "c0"
    ivf = FaissStore("ivf", nlist=4, nprobe=1)
    ivf.add(recs(200), x)
    ivf.set_search_params(nprobe=4)  # every list probed: exact
    assert [h[0][0] for h in ivf.search(x[:5], 1)] == [f"c{i}" for i in range(5)]
