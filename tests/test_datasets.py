"""The invented world: deterministic, internally consistent, and the update batch is exact."""

from __future__ import annotations

import pytest

from ragft_lib.datasets import GENERAL_QUESTIONS, load_pydoc_topics, load_world
from ragft_lib.errors import ConfigError, DataError
from ragft_lib.evaluate import normalise


@pytest.fixture(scope="module")
def world():
    return load_world()


def test_deterministic_from_seed():
    a, b, c = load_world(seed=7), load_world(seed=7), load_world(seed=8)
    assert a.facts == b.facts and a.documents == b.documents and a.update == b.update
    assert a.facts != c.facts


def test_sizes_large_enough_for_learning_curves(world):
    s = world.sizes()
    assert s["facts"] >= 300 and s["documents"] >= 100
    assert s["eval_facts"] > 0 and s["train_facts"] + s["eval_facts"] == s["facts"]
    assert s["questions"] == 4 * s["facts"]


def test_ids_unique(world):
    assert len({f.id for f in world.facts}) == len(world.facts)
    assert len({d.id for d in world.documents}) == len(world.documents)
    assert len({d.source for d in world.documents}) == len(world.documents)


def test_every_answer_appears_in_the_document_its_question_cites(world):
    for f in world.facts:
        doc = world.document(f.doc_id)
        assert doc.source == f.source
        assert f.statement in doc.text
        assert f.answer in doc.text


def test_paraphrases_keep_the_answer_and_the_entity(world):
    for f in world.facts:
        assert len(set(f.questions)) == len(f.questions) == 4
        assert all(f.entity in q for q in f.questions)
        assert all(f.answer in s and f.entity in s for s in f.statements)
        assert all(f.answer not in q for q in f.questions), f  # questions never leak the answer


def test_pairs_respect_split_and_holdout(world):
    train = world.pairs("train", paraphrases=3)
    assert {p.paraphrase for p in train} == {0, 1, 2}
    assert all(world.fact(p.fact_id).split == "train" for p in train)
    held = world.pairs("eval", heldout=True)
    assert all(p.paraphrase == 3 for p in held)
    assert not {p.question for p in held} & {p.question for p in world.pairs("eval", paraphrases=3)}
    with pytest.raises(ConfigError, match="paraphrases"):
        world.pairs("train", paraphrases=4)
    with pytest.raises(ConfigError, match="split"):
        world.facts_in("test")


def test_update_batch_changes_exactly_the_facts_it_says(world):
    changes = {c.fact_id: c for c in world.update.changes}
    assert changes and all(c.old != c.new for c in changes.values())
    updated = world.apply_update()
    for old, new in zip(world.facts, updated.facts):
        assert old.id == new.id
        if old.id in changes:
            assert old.answer == changes[old.id].old and new.answer == changes[old.id].new
            assert new.answer in updated.document(new.doc_id).text
            assert new.statement in updated.document(new.doc_id).text
            assert old.statement not in updated.document(new.doc_id).text
        else:
            assert new == old
            assert new.statement in updated.document(new.doc_id).text
    touched = {world.fact(fid).doc_id for fid in changes}
    assert {d.id for d in world.update.documents} == touched
    for d_old, d_new in zip(world.documents, updated.documents):
        assert (d_old.text != d_new.text) == (d_old.id in touched)


def test_with_changes_matches_the_update_batch_and_rewrites_only_touched_documents(world):
    changes = {c.fact_id: c.new for c in world.update.changes}
    changed = world.with_changes(changes)
    updated = world.apply_update()
    assert changed.facts == updated.facts
    assert [d.text for d in changed.documents] == [d.text for d in updated.documents]
    touched = {world.fact(fid).doc_id for fid in changes}
    for d_old, d_new in zip(world.documents, changed.documents):
        assert (d_new is d_old) == (d_old.id not in touched)
    # the original world is unchanged, and no changes at all gives the same facts and documents
    assert world.facts == load_world().facts and world.documents == load_world().documents
    same = world.with_changes({})
    assert same.facts == world.facts and same.documents == world.documents


def test_with_changes_rejects_bad_changes(world):
    f = world.facts[0]
    for bad, match in (({"town:nowhere/river": "X"}, "town:nowhere/river"), ({f.id: ""}, "non-empty"),
                       ({f.id: 3}, "non-empty"), ({f.id: f.answer}, "current one"), ([(f.id, "X")], "mapping")):
        with pytest.raises(ConfigError, match=match) as e:
            world.with_changes(bad)
        assert e.value.field == "changes"


def test_frames(world):
    ff = world.facts_frame()
    assert len(ff) == len(world.facts) and ff["changes_in_update"].sum() == len(world.update.changes)
    assert len(world.questions_frame()) == 4 * len(world.facts)
    assert len(world.documents_frame()) == len(world.documents)


def test_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="n_towns"):
        load_world(n_towns=1)
    with pytest.raises(ConfigError, match="eval_fraction"):
        load_world(eval_fraction=1.5)


def test_general_questions_have_answers():
    assert len(GENERAL_QUESTIONS) >= 10
    assert all(q.endswith("?") and answers and all(normalise(a) for a in answers) for q, answers in GENERAL_QUESTIONS)


def test_pydoc_topics_real_corpus():
    docs = load_pydoc_topics()
    assert len(docs) > 50
    assert all(len(d.text) >= 200 and d.source.startswith("pydoc_data/topics/") for d in docs)
    assert len({d.id for d in docs}) == len(docs)


def test_extraction_task(world):
    import json

    from ragft_lib.datasets import (EXTRACTION_ATTRIBUTES, EXTRACTION_SCHEMA, extraction_task,
                                    few_shot_messages)
    from ragft_lib.evaluate import json_validity, schema_match

    train = extraction_task(world, "train", n=30, seed=1)
    test = extraction_task(world, "eval")
    assert len(train) == 30 and len(test) == 3 * len(world.facts_in("eval"))
    assert train == extraction_task(world, "train", n=30, seed=1)
    assert not {e["fact_id"] for e in train} & {e["fact_id"] for e in test}
    for e in train + test:
        assert json.loads(e["completion"]) == e["target"]
        assert e["target"]["attribute"] in EXTRACTION_ATTRIBUTES
        assert e["target"]["value"] in e["sentence"] and e["target"]["entity"] in e["sentence"]
        assert e["sentence"] in e["prompt"]
    assert set(EXTRACTION_SCHEMA["required"]) == {"entity", "attribute", "value"}
    completions = [e["completion"] for e in test]
    assert all(json_validity(completions, EXTRACTION_SCHEMA["required"]))
    assert schema_match(completions, [e["target"] for e in test]) == [1.0] * len(test)
    msgs = few_shot_messages(train[:2], test[0]["prompt"])
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    with pytest.raises(ConfigError):
        extraction_task(world, "train", statements=(5,))
    with pytest.raises(ConfigError):
        extraction_task(world, "eval", n=10_000)


def test_style_task_targets_keep_the_house_style(world):
    from ragft_lib.datasets import follows_house_style, house_style, style_task
    from ragft_lib.evaluate import answer_contained

    train = style_task(world, "train", n=20, seed=3)
    test = style_task(world, "eval")
    assert len(train) == 20 and len(test) == len(world.facts_in("eval"))
    assert train == style_task(world, "train", n=20, seed=3)
    assert not {e["fact_id"] for e in train} & {e["fact_id"] for e in test}
    for e in train + test:
        assert follows_house_style(e["completion"], e["entity"])
        assert answer_contained(e["completion"], e["answer"])
        assert e["entity"] in e["prompt"] and e["completion"] not in e["prompt"]
    # each rule is checked on its own
    good = house_style("Meisdale", "Meisdale was founded in 1712.")
    assert good == "Registry note: Meisdale was founded in 1712. -- OR."
    assert follows_house_style("  " + good + "\n", "Meisdale")
    for bad in (good.replace("Registry note: ", ""), good.replace(" -- OR.", "."), good.replace("Meisdale", "It"),
                good + " -- OR.", good.replace("founded", "founded\n"),
                good.replace("1712.", "1712. It is old.")):
        assert not follows_house_style(bad, "Meisdale"), bad
    with pytest.raises(DataError):
        house_style("Meisdale", "Brindlemere lies on the Ostreva.")
    with pytest.raises(ConfigError):
        style_task(world, "eval", n=0)
    with pytest.raises(ConfigError):
        style_task(world, "eval", n=10_000)

