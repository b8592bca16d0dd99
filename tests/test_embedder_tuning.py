"""Fine-tuning the embedder on a corpus with inverse-cloze pseudo-queries (the "third lever")."""

from __future__ import annotations

import numpy as np
import pytest

from ragft_lib.documents import Document
from ragft_lib.embedder_tuning import TuningConfig, _batches, pseudo_queries, tune_embedder
from ragft_lib.errors import ConfigError, DataError

DOCS = [Document(f"d{i}", f"Lantern {i} hangs in tower {i}. It burns {c} oil every night. "
                          f"The keeper of tower {i} lights it at dusk. Nobody has seen it go out since {1900 + i}.")
        for i, c in enumerate(["red", "blue", "green", "amber", "violet", "white", "black", "grey"] * 3)]


@pytest.mark.parametrize("field, value", [("epochs", 0), ("learning_rate", -1e-5), ("batch_size", 1),
                                          ("queries_per_chunk", 0), ("max_tokens", 8), ("seed", -1),
                                          ("epochs", "one")])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError) as err:
        TuningConfig(**{field: value})
    assert err.value.field == field


def test_pseudo_queries_take_a_sentence_out(embedder):
    pairs = pseudo_queries(DOCS, embedder, TuningConfig(queries_per_chunk=2))
    assert len(pairs) == 2 * len(DOCS)
    by_id = {d.id: d.text for d in DOCS}
    for p in pairs:
        assert p.query in by_id[p.doc_id] and p.query not in p.passage and p.passage
        assert len(p.query.split()) >= 4
    assert pairs == pseudo_queries(DOCS, embedder, TuningConfig(queries_per_chunk=2))
    assert pairs != pseudo_queries(DOCS, embedder, TuningConfig(queries_per_chunk=2, seed=1))


def test_batches_never_hold_two_pairs_of_one_document(embedder):
    import random

    pairs = pseudo_queries(DOCS, embedder, TuningConfig(queries_per_chunk=3))
    batches = _batches(pairs, 8, random.Random(0))
    assert batches and all(len(b) == 8 and len({p.doc_id for p in b}) == 8 for b in batches)


def test_too_few_pairs(embedder):
    with pytest.raises(DataError, match="pseudo-query pairs"):
        tune_embedder(DOCS[:3], embedder=embedder, config=TuningConfig(batch_size=8))
    with pytest.raises(ConfigError, match="config"):
        tune_embedder(DOCS, embedder=embedder, config={"epochs": 1})


@pytest.mark.slow
def test_tuning_changes_a_copy_and_is_cached(embedder, tmp_path, monkeypatch):
    monkeypatch.setenv("RAGFT_CACHE", str(tmp_path))
    q = ["Which oil does lantern 3 burn?"]
    before = embedder.encode(q)
    cfg = TuningConfig(batch_size=8, epochs=0.5, max_tokens=32, learning_rate=1e-4)
    res = tune_embedder(DOCS, embedder=embedder, config=cfg)
    assert not res.cached and res.steps >= 1 and res.examples == 3 * len(DOCS) and res.train_seconds > 0
    assert np.abs(res.embedder.encode(q) - before).max() > 1e-4  # the tuned copy moved
    np.testing.assert_array_equal(embedder.encode(q), before)  # the caller's embedder did not
    again = tune_embedder(DOCS, embedder=embedder, config=cfg)
    assert again.cached and again.train_seconds == 0 and again.original_seconds == pytest.approx(res.train_seconds)
    np.testing.assert_allclose(again.embedder.encode(q), res.embedder.encode(q), atol=1e-6)
    from ragft_lib.retrieval import Retriever

    r = Retriever.from_documents(DOCS, embedder=res.embedder, cache=False)
    r.save(tmp_path / "idx")
    assert Retriever.load(tmp_path / "idx").embedder.name == res.embedder.name  # reopens from the saved folder
