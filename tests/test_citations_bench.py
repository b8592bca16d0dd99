"""Citation helpers (ragft_lib.evaluate) and the index benchmark (ragft_lib.stores)."""

from types import SimpleNamespace as C

import pytest

from ragft_lib.errors import ConfigError
from ragft_lib.evaluate import citation_precision, citation_support, cited_markers, cited_span


def test_cited_span_points_into_the_document():
    doc = "# Misbrook\n\nMisbrook lies on the Stelnaela river. The mayor of Misbrook is Hirbiv Deikdroun."
    start = 12
    hit = C(text=doc[start:], start=start)
    s, e = cited_span(hit, ["nothing", "hirbiv  deikdroun"])
    assert doc[s:e] == "Hirbiv Deikdroun"
    assert cited_span(hit, "Stelnael") is None  # whole words only
    assert cited_span(hit, "") is None


def test_support_and_precision():
    good, bad = C(text="on the Stelnaela river", start=0), C(text="on the Koukiva river", start=0)
    assert citation_support([bad, good], "Stelnaela") == 1.0
    assert citation_support([bad], "Stelnaela") == 0.0
    assert citation_precision([bad, good], "Stelnaela") == 0.5
    assert citation_precision([], "Stelnaela") == 0.0


def test_cited_markers():
    assert cited_markers("see [3] and [1], again [3]") == [3, 1]
    assert cited_markers("no markers") == []


def test_benchmark_indexes_rows():
    pytest.importorskip("faiss")
    from ragft_lib.stores import benchmark_indexes, clustered_vectors

    rows = benchmark_indexes([1500, 3000], ["flat", "ivf"], n_queries=20, max_size={"ivf": 1500})
    assert [(r["kind"], r["n"]) for r in rows] == [("flat", 1500), ("ivf", 1500), ("flat", 3000)]
    flat = [r for r in rows if r["kind"] == "flat"]
    assert all(r["recall_at_k"] == 1.0 for r in flat)
    assert flat[1]["memory_mib"] > flat[0]["memory_mib"]
    for r in rows:
        assert r["p99_ms"] >= r["p50_ms"] > 0 and 0 <= r["recall_at_k"] <= 1
    a, b = clustered_vectors(10, 16, seed=3), clustered_vectors(10, 16, seed=3)
    assert (a == b).all()
    with pytest.raises(ConfigError, match="kinds"):
        benchmark_indexes([100], ["auto"])
    with pytest.raises(ConfigError, match="n"):
        clustered_vectors(0)
