"""Helpers of the "Scaling out" chapter: embedding-like data, store benchmarks, size and memory arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ragft_lib.errors import ConfigError, StoreError
from ragft_lib.finetune import (
    ADAPTER_BYTES_PER_PARAM, BASE_BYTES_PER_PARAM, allreduce_seconds, lora_trainable_params, training_memory,
)
from ragft_lib.stores import (
    FaissStore, PgVectorStore, benchmark_store, embedding_like_vectors, exact_neighbours, footprint,
)


def test_embedding_like_vectors_are_clustered_unit_vectors():
    x = embedding_like_vectors(2000, 64, clusters=20, seed=3)
    assert x.dtype == np.float32 and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert np.array_equal(x, embedding_like_vectors(2000, 64, clusters=20, seed=3))
    sims = x[:200] @ x[:200].T
    # clustered: each vector has close neighbours (unlike uniform random vectors in 64-d, cosine ~ 0 +- 0.13)
    assert np.sort(sims, axis=1)[:, -2].mean() > 0.5
    with pytest.raises(ConfigError, match="n"):
        embedding_like_vectors(-1)


def test_benchmark_store_faiss_and_pgvector(pg_url):
    x = embedding_like_vectors(3000, 32, clusters=50)
    q = embedding_like_vectors(40, 32, clusters=50, seed=1)
    truth = exact_neighbours(x, q, 10)
    flat = benchmark_store(FaissStore("flat"), x, q, truth=truth)
    assert flat["recall"] == 1.0 and flat["n"] == 3000 and flat["queries"] == 40
    assert flat["bytes_per_vector"] >= 4 * 32 and flat["p99_ms"] >= flat["p50_ms"] > 0
    pg = PgVectorStore(pg_url, table="bench_test", index="exact")
    row = benchmark_store(pg, x, q, truth=truth, name="pg exact")
    assert row["store"] == "pg exact" and row["recall"] == 1.0 and row["bytes_per_vector"] > 4 * 32
    with pytest.raises(StoreError, match="already holds 3000"):
        benchmark_store(pg, x, q)
    pg.drop()
    pg.close()


def test_footprint_arithmetic():
    rows = footprint(1000.0, (10_000_000, 100_000_000), node_gib=64, usable=0.5)
    assert rows[0]["gib"] == pytest.approx(1e10 / 2**30)
    assert rows[0]["vectors_per_node"] == int(32 * 2**30 / 1000)
    assert rows[1]["nodes"] == math.ceil(1e8 / rows[0]["vectors_per_node"]) and rows[0]["nodes"] == 1
    with pytest.raises(ConfigError, match="bytes_per_vector"):
        footprint(0)


def test_training_memory_arithmetic():
    lora = lora_trainable_params(4096, 11008, 32, r=16)
    assert lora == 39_976_960 and lora_trainable_params(4096, 11008, 32, r=16, kv_hidden=1024) < lora
    full = training_memory(7e9, "full")
    assert full["bytes_per_param"] == 16 == BASE_BYTES_PER_PARAM["full"]
    lo = training_memory(7e9, "lora", trainable_params=lora)
    q = training_memory(7e9, "qlora", trainable_params=lora)
    assert full["bytes"] > lo["bytes"] > q["bytes"]
    assert lo["bytes"] == pytest.approx(7e9 * 2 + lora * ADAPTER_BYTES_PER_PARAM)
    assert training_memory(7e9, "full", devices=8)["bytes"] == full["bytes"]  # DDP replicates
    assert training_memory(7e9, "full", devices=8, shard=True)["bytes"] == pytest.approx(full["bytes"] / 8)
    assert allreduce_seconds(1e9, 1, 50) == 0 and allreduce_seconds(1e9, 2, 50) == pytest.approx(0.02)
    with pytest.raises(ConfigError, match="method"):
        training_memory(1e9, "adapter")
