"""The invented code book (determinism, unique codes, disjoint splits, bad input) and the jargon
experiment at a tiny size (slow)."""

from __future__ import annotations

import re

import pytest

from ragft_lib.errors import ConfigError, DataError
from ragft_lib.experiments import JargonSettings
from ragft_lib.jargon import (JARGON_SPLITS, Code, CodeBook, code_options, invent_code_book, jargon_items,
                              parse_code_book)


def test_code_book_is_deterministic_and_seeded():
    a, b = invent_code_book(60), invent_code_book(60)
    assert a.to_text() == b.to_text()
    assert a.to_text() != invent_code_book(60, seed=1).to_text()
    for split in JARGON_SPLITS:
        assert jargon_items(a, split) == jargon_items(b, split)


def test_code_book_has_unique_codes_names_and_meanings():
    book = invent_code_book(120)
    assert len(book) == 120
    assert len({c.code for c in book}) == 120
    assert len({c.name for c in book}) == 120
    assert len({(c.action, c.obj, c.circumstance) for c in book}) == 120  # each code means one thing
    assert all(re.fullmatch(r"[A-Z]{3}-\d{3}", c.code) for c in book)
    assert sorted({sum(1 for c in book if c.division == d) for d in book.divisions()}) == [20]


def test_splits_are_disjoint_in_items_and_wording():
    book = invent_code_book(60)
    items = {s: jargon_items(book, s) for s in JARGON_SPLITS}
    assert {s: len(v) for s, v in items.items()} == {"train": 180, "validation": 60, "test": 120}
    cases = {s: {it["case"] for it in v} for s, v in items.items()}
    assert not cases["train"] & cases["test"] and not cases["validation"] & cases["test"]
    assert not cases["train"] & cases["validation"]
    ids = [it["id"] for v in items.values() for it in v]
    assert len(ids) == len(set(ids))
    # No test case contains a training case's wording of the action: strip the shared object and
    # circumstance-free scaffolding and compare the verb phrases directly.
    from ragft_lib.jargon import _DIVISIONS, _PHRASINGS

    for _, _, _, verbs in _DIVISIONS:
        train_verbs = {verbs[i] for i in _PHRASINGS["train"]}
        test_verbs = {verbs[i] for i in _PHRASINGS["test"]}
        assert not train_verbs & test_verbs
    # every test item names its code's object, and never the code or the code's invented name
    for it in items["test"]:
        code = book[it["code"]]
        assert it["code"] not in it["prompt"] and code.name not in it["prompt"]


def test_code_book_documents_and_options():
    book = invent_code_book(60)
    docs = book.documents()
    assert [d.id for d in docs] == [c.code for c in book]
    assert all(d.text.startswith(d.id) for d in docs)
    test = jargon_items(book, "test")
    opts = code_options(test, book, 4)
    assert len(opts) == len(test)
    for it, (options, right) in zip(test, opts):
        assert options[right] == it["code"] and len(set(options)) == 4
        assert {book[o].division for o in options} == {it["division"]}
    assert code_options(test, book, 4) == opts  # deterministic
    rights = [r for _, r in opts]
    assert len(set(rights)) == 4  # the true code is not always in one position


def test_duplicate_codes_raise_naming_the_code_and_line():
    with pytest.raises(DataError, match=r"book\.txt line 3: duplicate code 'VRL-417' \(first on line 1\)"):
        parse_code_book("VRL-417 | A | transfers | one\n\nVRL-417 | B | transfers | two\n", source="book.txt")
    with pytest.raises(DataError, match=r"duplicate code 'A-1' at entries 1 and 2"):
        CodeBook([Code("A-1", "x", "d", "one"), Code("A-1", "y", "d", "two")])


def test_bad_code_book_text_raises():
    with pytest.raises(DataError, match=r"x\.txt line 1: expected 'CODE \| name \| division \| definition'"):
        parse_code_book("VRL-417 | only two", source="x.txt")
    with pytest.raises(DataError, match=r"x\.txt: no codes"):
        parse_code_book("# nothing\n\n", source="x.txt")
    with pytest.raises(ConfigError, match=r"^text: "):
        parse_code_book(None)  # type: ignore[arg-type]
    book = parse_code_book(invent_code_book(12).to_text())
    assert len(book) == 12
    with pytest.raises(DataError, match="has no facets"):
        jargon_items(book, "test")  # a parsed code book has no invented facets to word cases from


def test_empty_or_bad_item_requests_raise():
    book = invent_code_book(12)
    with pytest.raises(DataError, match="code_options: no items"):
        code_options([], book)
    with pytest.raises(DataError, match="no codes"):
        CodeBook([])
    with pytest.raises(ConfigError, match=r"^split: "):
        jargon_items(book, "dev")
    with pytest.raises(ConfigError, match=r"^n: "):
        invent_code_book(2)
    with pytest.raises(DataError, match="distractors needed"):
        code_options(jargon_items(book, "test")[:1], book, 4)  # 2 codes per division: 1 distractor only
    with pytest.raises(DataError, match="no code 'XXX-000'"):
        book["XXX-000"]


def test_settings_validate_and_key():
    assert JargonSettings().key() == JargonSettings().key() != JargonSettings(seeds=5).key()
    assert JargonSettings(max_shots=8).shot_grid() == [1, 2, 4, 8]
    with pytest.raises(ConfigError, match=r"^n_codes: "):
        JargonSettings(n_codes=5)
    with pytest.raises(ConfigError, match=r"^options: "):
        JargonSettings(options=1)
    from ragft_lib.experiments import jargon

    with pytest.raises(ConfigError, match=r"^settings: "):
        jargon("big")  # type: ignore[arg-type]


@pytest.mark.slow
def test_jargon_experiment_at_a_tiny_size(tmp_path, monkeypatch):
    # results cached in tmp_path only (the model and adapters in the shared cache, reused by content)
    monkeypatch.setattr("ragft_lib.experiments.cache.result_path", lambda name, key: tmp_path / f"{name}-{key}.json")
    from ragft_lib.experiments import JARGON_SYSTEMS, compare_systems, jargon, jargon_entry

    s = JargonSettings(n_codes=12, options=2, max_shots=1, max_k=1, max_epochs=1, seeds=1)
    res = jargon(s, progress=False)
    assert set(res.frame["approach"]) == set(JARGON_SYSTEMS)
    assert (res.frame.groupby("approach").size() == 24).all()  # 12 codes x 2 test phrasings
    x = res.extra
    assert x["n_test"] == 24 and x["shots"] == 1 and x["k"] == 1 and x["epochs"] == 1
    assert set(x["validation"]) == {"shots", "k", "epochs", "learning_rate"}
    assert list(x["validation"]["learning_rate"]) == ["0.001", "0.003", "0.009"]  # lr_factor 3 around 3e-3
    assert f"{x['learning_rate']:g}" in x["validation"]["learning_rate"]
    assert 0 <= x["retrieval_recall"] <= 1
    assert x["prompt_tokens"]["few-shot"] > x["prompt_tokens"]["closed-book"]
    entry = jargon_entry(res, "lora", "few-shot", id="jargon-lora-vs-few-shot", claim="c")
    assert entry.dimension == "jargon" and entry.b == "few-shot" and entry.n == 24
    assert compare_systems(res, "rag", "closed-book").n == 24
    again = jargon(s, progress=False)  # loaded from the cache: identical
    assert again.frame.equals(res.frame)


def _fake_result():
    import pandas as pd

    from ragft_lib.experiments import ExperimentResult, summarise

    rows = []
    for q in range(10):
        rows.append(dict(approach="few-shot", seed=-1, fact_id=f"c{q}", attribute="d", scoring="mc", correct=q < 3))
        rows.append(dict(approach="rag", seed=-1, fact_id=f"c{q}", attribute="d", scoring="mc", correct=q < 9))
        for seed in (0, 1, 2):
            rows.append(dict(approach="lora", seed=seed, fact_id=f"c{q}", attribute="d", scoring="mc",
                             correct=q < 6 + seed))
    frame = pd.DataFrame(rows)
    extra = {"n_codes": 5, "shots": 2, "k": 1, "epochs": 2, "n_validation": 5, "seeds": [0, 1, 2]}
    return ExperimentResult("jargon", frame, summarise(frame), {}, {}, {"options": 4}, extra)


def test_jargon_entry_pairs_seed_averaged_adapters_with_a_bootstrap():
    from ragft_lib.experiments import jargon_entry

    res = _fake_result()
    e = jargon_entry(res, "lora", "few-shot", id="ft-jargon", claim="c")
    assert (e.dimension, e.a, e.b, e.n) == ("jargon", "lora", "few-shot", 10)
    assert e.value_a == pytest.approx(0.7) and e.value_b == pytest.approx(0.3)
    assert e.difference == pytest.approx(0.4) and e.ci[0] <= e.difference <= e.ci[1]
    assert "averaged over 3 seeds" in e.test and "per seed: 0: " in e.note
    assert e.metric.startswith("accuracy") and "4 codes" in e.metric
    plain = jargon_entry(res, "rag", "few-shot", id="jargon-rag-vs-few-shot", claim="c")
    assert "McNemar" in plain.test and plain.difference == pytest.approx(0.6)
