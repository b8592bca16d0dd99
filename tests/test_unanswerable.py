"""The knowledge boundary: the unanswerable-question builder, outcome classification, threshold calibration,
the coverage curve, and RAGPipeline's abstention (with a stub retriever and generator: no model loads)."""

from __future__ import annotations

import json
import math

import pytest

from ragft_lib.datasets import invent_names, load_world
from ragft_lib.errors import ConfigError, DataError
from ragft_lib.rag import (ABSTAIN_TEXT, DEFAULT_ABSTAIN_BELOW, STAGES, Answer, AuditLog, RAGPipeline, closed_book,
                           read_audit_log, retrieval_confidence, says_unknown)
from ragft_lib.retrieval import Hit
from ragft_lib.stores import ChunkRecord
from ragft_lib.unanswerable import (KINDS, OUTCOMES, UNSTATED_ATTRIBUTES, calibrate_abstention, classify_outcome,
                                    coverage_curve, unanswerable_questions)


@pytest.fixture(scope="module")
def world():
    return load_world()


# -- the builder ---------------------------------------------------------------------------------


def test_builder_counts_kinds_and_splits(world):
    qs = unanswerable_questions(world, n=300, seed=0)
    assert len(qs) == 300 and len({q.question for q in qs}) == 300 and len({q.id for q in qs}) == 300
    assert {q.kind: sum(x.kind == q.kind for x in qs) for q in qs} == {"absent-entity": 150, "unstated-attribute": 150}
    assert sum(q.split == "validation" for q in qs) == 100 and sum(q.split == "test" for q in qs) == 200
    assert {q.kind for q in qs} == set(KINDS)
    # validation and test concern disjoint entities
    val = {q.entity for q in qs if q.split == "validation"}
    assert not val & {q.entity for q in qs if q.split == "test"}


def test_builder_is_disjoint_from_what_the_world_states(world):
    qs = unanswerable_questions(world, n=300, seed=0)
    names = {d.metadata["entity"] for d in world.documents}
    text = "\n".join(d.text for d in world.documents).lower()
    stated = {(f.entity, f.attribute) for f in world.facts}
    world_questions = {q for f in world.facts for q in f.questions}
    for q in qs:
        assert q.question not in world_questions
        if q.kind == "absent-entity":
            assert q.entity not in names and q.entity.lower() not in text  # exists nowhere
            assert q.entity in q.question
        else:
            assert q.entity in names and (q.entity, q.attribute) not in stated  # described, attribute never stated
            assert q.attribute in UNSTATED_ATTRIBUTES[q.entity_type]
    stated_attrs = {f.attribute for f in world.facts}
    assert not stated_attrs & {a for t in UNSTATED_ATTRIBUTES.values() for a in t}


def test_builder_is_deterministic_in_its_seed(world):
    a = unanswerable_questions(world, n=40, seed=5)
    assert a == unanswerable_questions(world, n=40, seed=5)
    assert a != unanswerable_questions(world, n=40, seed=6)
    assert json.loads(json.dumps([q.to_dict() for q in a]))[0]["question"] == a[0].question


@pytest.mark.parametrize("field,kwargs", [("n", {"n": 1}), ("n", {"n": "ten"}), ("validation_fraction", {"validation_fraction": 1.0}),
                                          ("n", {"n": 2000})])
def test_builder_bad_sizes_name_the_field(world, field, kwargs):
    with pytest.raises(ConfigError) as e:
        unanswerable_questions(world, **kwargs)
    assert e.value.field == field


def test_invented_names_avoid_the_excluded_ones():
    taken = invent_names("person", 20, seed=1)
    again = invent_names("person", 20, seed=1, exclude=taken[:10])
    assert not set(n.lower() for n in taken[:10]) & set(n.lower() for n in again)
    with pytest.raises(ConfigError) as e:
        invent_names("river", 2)
    assert e.value.field == "entity_type"


# -- outcomes, calibration, the curve --------------------------------------------------------------


def test_classify_outcome_covers_every_case():
    assert classify_outcome(answerable=True, abstained=False, correct=True) == "correct"
    assert classify_outcome(answerable=True, abstained=False, correct=False) == "wrong"
    assert classify_outcome(answerable=False, abstained=False) == "hallucinated"
    assert classify_outcome(answerable=False, abstained=True) == classify_outcome(answerable=True, abstained=True) == "abstained"
    assert set(OUTCOMES) == {"correct", "wrong", "hallucinated", "abstained"}


def test_calibration_separates_the_scores_and_picks_the_lowest_best_threshold():
    perfect = calibrate_abstention([0.8, 0.9, 0.7], [0.2, 0.3, 0.4])
    assert 0.4 < perfect.threshold < 0.7 and perfect.balanced_accuracy == 1.0
    assert perfect.threshold == pytest.approx(0.55)  # the midpoint between the two sets
    mixed = calibrate_abstention([0.8, 0.7, 0.65], [0.3, 0.5, 0.68])
    assert mixed.threshold == pytest.approx(0.575) and mixed.answered == 1.0 and mixed.abstained == pytest.approx(2 / 3)
    assert (mixed.n_answerable, mixed.n_unanswerable) == (3, 3)
    # the threshold applied to the inputs reproduces the reported shares
    assert sum(s >= mixed.threshold for s in [0.8, 0.7, 0.65]) / 3 == mixed.answered


@pytest.mark.parametrize("field,a,u", [("answerable_scores", [], [0.1]), ("unanswerable_scores", [0.5], [float("nan")]),
                                       ("answerable_scores", "0.5", [0.1]), ("unanswerable_scores", [0.5], [True])])
def test_calibration_bad_scores_name_the_field(field, a, u):
    with pytest.raises(ConfigError) as e:
        calibrate_abstention(a, u)
    assert e.value.field == field


def test_coverage_curve_trades_coverage_for_accuracy():
    scores = [0.9, 0.8, 0.7, 0.3, 0.2]
    correct = [True, True, False, False, False]  # the last two: unanswerable, never correct
    rows = coverage_curve(scores, correct)
    assert rows[0]["coverage"] == 1.0 and rows[0]["accuracy"] == pytest.approx(0.4)
    assert [r["coverage"] for r in rows] == sorted([r["coverage"] for r in rows], reverse=True)
    top = coverage_curve(scores, correct, thresholds=[0.75])[0]
    assert top["coverage"] == 0.4 and top["accuracy"] == 1.0
    own = coverage_curve(scores, correct, model_abstained=[False, False, True, False, False], thresholds=[0.0])[0]
    assert own["answered"] == 4 and own["accuracy"] == 0.5
    assert math.isnan(coverage_curve(scores, correct, thresholds=[0.95])[0]["accuracy"])
    with pytest.raises(ConfigError):
        coverage_curve(scores, correct[:2])


# -- the phrase matcher ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["I don't know.", "I’m sorry, I don’t know who that is.", "The passages do not contain the answer.",
                                  "The number of children is unknown.", "There is no such town.", "It is not known."])
def test_says_unknown_finds_refusals(text):
    assert says_unknown(text)


@pytest.mark.parametrize("text", ["Brindlemere lies on the Kessel river.", "The town is well-known for glass.",
                                  "Known for copper kettles.", ""])
def test_says_unknown_leaves_answers_alone(text):
    assert not says_unknown(text)


# -- RAGPipeline abstention with stubs ---------------------------------------------------------------

COVERED = "Which river flows through Brindlemere?"
ABSENT = "Which river flows through Zorvakholm?"


class _Embedder:
    name = "stub-embedder"


class StubRetriever:
    """Scores by question: 0.82 for the covered one, 0.31 otherwise (the dense cosine)."""

    embedder = _Embedder()

    def __init__(self, mode: str = "hybrid"):
        self.mode = mode
        self.dense_calls = 0
        outer = self

        class _Store:  # the vector store: raw chunk cosines
            def search(self, qvec, k):
                outer.dense_calls += 1
                return [[("brindlemere#0", qvec[0])]]

        self.store = _Store()

    def embed_query(self, question):
        return [0.82 if "Brindlemere" in question else 0.31]

    def search_vector(self, qvec, k, *, query=None, mode=None):
        if (mode or self.mode) == "dense":
            return [("brindlemere#0", qvec[0])]
        return [("brindlemere#0", 1.0)]  # fused scores: about 1 at the top whatever the question

    def fetch(self, scored):
        rec = ChunkRecord("brindlemere#0", "brindlemere", "Brindlemere lies on the Kessel.", "towns/brindlemere.md", 0, 31)
        return [Hit.from_record(rec, s) for _, s in scored]


class StubGenerator:
    name = "stub-generator"

    def __init__(self, reply: str = "The Kessel [1]."):
        self.reply = reply
        self.calls = 0

    def format_prompt(self, messages, system=None):
        return "\n".join(m["content"] for m in messages) if not isinstance(messages, str) else messages

    def count_tokens(self, text):
        return len(text.split())

    def generate(self, prompts, max_new_tokens=64):
        self.calls += len(prompts)
        return [self.reply for _ in prompts]


def test_an_absent_entity_abstains_without_generating():
    gen = StubGenerator()
    ans = RAGPipeline(StubRetriever(), gen, abstain_below=0.6).answer(ABSENT)
    assert ans.abstained and gen.calls == 0 and ans.text == ABSTAIN_TEXT
    assert ans.citations == [] and ans.prompt == "" and ans.timings["generate"] == 0.0 and list(ans.timings) == list(STAGES)
    assert ans.metadata["abstain_reason"] == "retrieval"
    assert ans.metadata["best_score"] == pytest.approx(0.31) and ans.metadata["abstain_below"] == 0.6
    assert ans.metadata["nearest"][0]["source"] == "towns/brindlemere.md"


def test_a_covered_question_is_answered():
    gen = StubGenerator()
    ans = RAGPipeline(StubRetriever(), gen, abstain_below=0.6).answer(COVERED)
    assert not ans.abstained and gen.calls == 1 and ans.text == "The Kessel [1]."
    assert ans.metadata["best_score"] == pytest.approx(0.82) and "abstain_reason" not in ans.metadata
    assert ans.citations and ans.citations[0].doc_id == "brindlemere"


def test_the_threshold_uses_the_dense_score_not_the_fused_one():
    retriever = StubRetriever(mode="hybrid")
    RAGPipeline(retriever, StubGenerator(), abstain_below=0.6).answer(ABSENT)
    assert retriever.dense_calls == 1  # a fused top score (1.0) would never abstain
    assert retrieval_confidence(retriever, ABSENT) == pytest.approx(0.31)
    dense = StubRetriever(mode="dense")
    assert RAGPipeline(dense, StubGenerator(), abstain_below=0.6).answer(ABSENT).abstained
    assert dense.dense_calls == 1  # the store's raw chunk score, whatever the ranking mode


def test_no_threshold_or_abstain_false_always_generates():
    gen = StubGenerator()
    assert not RAGPipeline(StubRetriever(), gen, abstain_below=None).answer(ABSENT).abstained
    assert not RAGPipeline(StubRetriever(), gen, abstain_below=0.6).answer(ABSENT, abstain=False).abstained
    assert gen.calls == 2
    with pytest.raises(ConfigError) as e:
        RAGPipeline(StubRetriever(), gen).answer(ABSENT, abstain="no")
    assert e.value.field == "abstain"


def test_the_models_own_i_do_not_know_marks_the_answer():
    gen = StubGenerator("I'm sorry, the passages do not contain the answer.")
    ans = RAGPipeline(StubRetriever(), gen, abstain_below=0.6).answer(COVERED)
    assert ans.abstained and gen.calls == 1 and ans.metadata["abstain_reason"] == "model"
    cb = closed_book(gen, ABSENT)
    assert cb.abstained and cb.metadata["abstain_reason"] == "model"
    assert not closed_book(StubGenerator("The Orva."), ABSENT).abstained


def test_the_default_threshold_is_a_cosine():
    assert RAGPipeline(StubRetriever(), StubGenerator()).abstain_below == DEFAULT_ABSTAIN_BELOW
    assert -1.0 <= DEFAULT_ABSTAIN_BELOW <= 1.0


@pytest.mark.parametrize("bad", [1.5, -2, float("nan"), float("inf"), "0.5", True])
def test_a_bad_threshold_names_the_field(bad):
    with pytest.raises(ConfigError) as e:
        RAGPipeline(StubRetriever(), StubGenerator(), abstain_below=bad)
    assert e.value.field == "abstain_below"


# -- the audit trail keeps the new field ------------------------------------------------------------


def test_abstained_and_metadata_round_trip_through_the_audit_log(tmp_path):
    ans = RAGPipeline(StubRetriever(), StubGenerator(), abstain_below=0.6).answer(ABSENT)
    assert Answer.from_dict(json.loads(json.dumps(ans.to_dict()))) == ans
    log = AuditLog(tmp_path / "log.jsonl")
    log.write(ans)
    back = read_audit_log(tmp_path / "log.jsonl")[0]
    assert back.abstained and back.metadata["abstain_reason"] == "retrieval"
    assert back.metadata["best_score"] == pytest.approx(0.31)


def test_an_old_record_without_the_field_still_loads(tmp_path):
    record = Answer("q", "a", [], "p", {s: 0.0 for s in STAGES}).to_dict()
    del record["abstained"]
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(record) + "\n")
    assert read_audit_log(path)[0].abstained is False
    record["abstained"] = "yes"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(DataError, match="old.jsonl:1: .*abstained"):
        read_audit_log(path)
