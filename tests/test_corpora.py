"""Real corpora for the retrieval benchmark: loaders, splits, questions, clear errors when missing."""

from __future__ import annotations

import gzip

import pytest

from ragft_lib.corpora import (
    CORPORA, DEBIAN_FAQ_PATH, PYTHON_FAQ_DIR, SPLITS, Corpus, Question, heading_question, lexical_overlap,
    load_corpus, load_debian_faq, load_pydoc_questions, load_python_faq, rst_to_text,
)
from ragft_lib.documents import Document
from ragft_lib.errors import ConfigError, DataError

INSTALLED = {
    "debian-faq": DEBIAN_FAQ_PATH.exists(),
    "python-faq": PYTHON_FAQ_DIR.exists(),
    "pydoc-topics": True,
}


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_corpus_has_disjoint_seeded_splits(name):
    if not INSTALLED[name]:
        with pytest.raises(DataError, match="apt-get install"):
            load_corpus(name)
        return
    c = load_corpus(name)
    assert len(c.documents) > 100 and len(c.questions) > 100
    val, test = c.split("validation"), c.split("test")
    assert not set(val) & set(test) and len(val) + len(test) == len(c.questions)
    assert abs(len(val) - len(test)) <= 1
    assert load_corpus(name).split("test") == test  # same seed, same split
    assert load_corpus(name, seed=1).split("test") != test
    ids = {d.id for d in c.documents}
    assert len(ids) == len(c.documents) and all(q.doc_id in ids for q in c.questions)
    gold = {d.id: d for d in c.documents}
    for q in c.questions:  # the question's heading was removed from the passage it points to
        assert not gold[q.doc_id].text.startswith(q.text)
        assert q.text.endswith("?")
    assert 0.3 < lexical_overlap(c.questions, c.documents) < 1.0


def test_titles_are_never_the_question():
    for name in ("debian-faq", "python-faq", "pydoc-topics"):
        if not INSTALLED[name]:
            continue
        c = load_corpus(name)
        titles = {d.id: d.metadata.get("title", "") for d in c.documents}
        assert all(q.text not in titles[q.doc_id] for q in c.questions)


def test_missing_debian_faq_says_what_to_install(tmp_path):
    with pytest.raises(DataError, match=r"missing.gz is missing: install the Debian package 'debian-faq'"):
        load_debian_faq(tmp_path / "missing.gz")
    with pytest.raises(DataError, match="python3.11-doc"):
        load_python_faq(tmp_path / "nofaq")


def test_unparseable_debian_faq(tmp_path):
    p = tmp_path / "faq.txt.gz"
    with gzip.open(p, "wt") as f:
        f.write("just some text\n")
    with pytest.raises(DataError, match="no numbered sections"):
        load_debian_faq(p)


def test_bad_names():
    with pytest.raises(ConfigError) as err:
        load_corpus("wikipedia")
    assert err.value.field == "corpus"
    c = Corpus("tiny", [Document("a", "Alpha.")], [Question("Alpha?", "a"), Question("A?", "a")])
    with pytest.raises(ConfigError) as err:
        c.split("train")
    assert err.value.field == "split"
    with pytest.raises(DataError, match="unknown documents"):
        Corpus("bad", [Document("a", "Alpha.")], [Question("Beta?", "b")])


def test_pydoc_questions_are_templated_not_copied():
    c = load_pydoc_questions()
    texts = [q.text for q in c.questions]
    assert len(texts) == len(set(texts))  # an ambiguous question (two sections) is dropped
    assert "What does the for statement do?" in texts
    assert all(q.split()[0] in ("What", "How") for q in texts)


@pytest.mark.parametrize("heading, question", [
    ('The "async for" statement', "What does the async for statement do?"),
    ("Emulating numeric types", "How does emulating numeric types work?"),
    ("String methods", "What are string methods?"),
    ("None", "What is None?"),
    ("Resolving MRO entries", "How does resolving MRO entries work?"),
    ("Examples", None),
])
def test_heading_question(heading, question):
    assert heading_question(heading) == question


def test_rst_to_text():
    assert rst_to_text(".. _label:\n\nSee :ref:`the FAQ <faq>` and ``x``::\n\n   code") == "See the FAQ and x:\n\n   code"
