"""Look-alike distractors grow the knowledge base without touching the world or its answers."""

from __future__ import annotations

import re

import pytest

from ragft_lib.datasets import load_world
from ragft_lib.distractors import described_questions, distractors, grown_documents, real_names
from ragft_lib.errors import ConfigError, DataError


def _skeleton(name: str, entity_type: str, strip: bool = True) -> str:
    """The consonants of a name, without its town suffix or company kind when ``strip``."""
    from ragft_lib.datasets import _TOWN_SUFFIXES

    if entity_type == "town" and strip:
        name = next((name[: -len(x)] for x in _TOWN_SUFFIXES if name.endswith(x)), name)
    if entity_type == "company":
        name = name.rsplit(" ", 1)[0]
    return re.sub(r"[aeiou]", "", name.lower())


@pytest.fixture(scope="module")
def world():
    return load_world()


@pytest.fixture(scope="module")
def many(world):
    return distractors(world, 1500)


def test_distractor_names_never_equal_a_real_name(world, many):
    real = real_names(world)
    names = {str(d.metadata["entity"]).lower() for d in many.documents}
    assert len(names) == len(many.documents)
    assert not names & real
    # the names they mention as mayors and founders are invented too
    people = {f.answer.lower() for f in many.facts if f.attribute in ("mayor", "founder")}
    assert not people & {str(d.metadata["entity"]).lower() for d in world.documents}


def test_the_world_is_unchanged_and_ids_do_not_collide(world, many):
    fresh = load_world()
    assert world.documents == fresh.documents and world.facts == fresh.facts
    ids = [d.id for d in many.documents]
    assert len(set(ids)) == len(ids) and not set(ids) & {d.id for d in world.documents}
    docs = grown_documents(world, 300)
    assert len(docs) == 300 and docs[:len(world.documents)] == world.documents


def test_deterministic_nested_and_look_alike(world, many):
    assert distractors(world, 200).documents == many.documents[:200]
    assert distractors(world, 50, seed=1).documents != many.documents[:50]
    near = [(d, src) for d, src in zip(many.documents, many.near_duplicate_of) if src]
    assert 0.35 < len(near) / len(many.documents) < 0.65
    for d, src in near:  # a near-duplicate changes vowels and the suffix / kind only: same consonants
        name = str(d.metadata["entity"])
        kind = d.metadata["entity_type"]
        same = {_skeleton(name, kind, strip) == _skeleton(src, kind, strip) for strip in (True, False)}
        assert name != src and True in same, (name, src)
    # written with the world's templates: every distractor fact's statement is in its document
    text = {d.id: d.text for d in many.documents}
    assert all(f.statement in text[f.doc_id] for f in many.facts)
    assert {f.entity_type for f in many.facts} == {"town", "company", "person"}


def test_described_questions_name_neither_entity_nor_answer_and_are_unique(world, many):
    corpus = list(world.facts) + list(many.facts)
    qs = described_questions(world.facts, corpus)
    assert len(qs) >= 100
    for fid, q in qs.items():
        f = world.fact(fid)
        assert f.entity.lower() not in q.lower() and f.answer.lower() not in q.lower()
    # more distractors can only make fewer descriptions unique
    assert set(qs) <= set(described_questions(world.facts, world.facts))


def test_bad_arguments(world):
    with pytest.raises(ConfigError, match="n"):
        distractors(world, -1)
    with pytest.raises(ConfigError, match="near_share"):
        distractors(world, 5, near_share=1.5)
    with pytest.raises(ConfigError, match="size"):
        grown_documents(world, 10)
    with pytest.raises(DataError, match="not among corpus_facts"):
        described_questions(world.facts[:1], world.facts[5:])
