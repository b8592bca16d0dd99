"""ragft_lib.evaluate: answer metrics, bootstrap CI, answer_accuracy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragft_lib.datasets import GENERAL_QUESTIONS, QAPair
from ragft_lib.errors import ConfigError, DataError
from ragft_lib.evaluate import (
    Accuracy, answer_accuracy, answer_contained, bootstrap_ci, exact_match, normalise, score_answers, token_f1,
)


@pytest.mark.parametrize("text,expected", [
    ("The Ostreva River!", "ostreva river"),
    ("  An   apple, a pear. ", "apple pear"),
    ("Ærø café — “quoted”", "ærø cafe quoted"),
    ("H2O", "h2o"),
    ("", ""),
])
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_exact_match_and_f1():
    assert exact_match("the Ostreva.", "Ostreva")
    assert not exact_match("Ostreva river", "Ostreva")
    assert exact_match("7", ["seven", "7"])
    assert token_f1("Ostreva river", "Ostreva") == pytest.approx(2 / 3)
    assert token_f1("nothing here", "Ostreva") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("the", "Ostreva") == 0.0
    assert token_f1("b a", ["x", "a b"]) == 1.0


@pytest.mark.parametrize("pred,gold,expected", [
    ("It lies on the Ostreva river.", "Ostreva", True),
    ("It was founded in 1712.", "712", False),
    ("It was founded in 1712.", "1712", True),
    ("Seven days.", ("seven", "7"), True),
    ("The mayor is Irren Kavosk.", "Irren  Kavosk", True),
    ("The mayor is Irren.", "Irren Kavosk", False),
    ("Carbon dioxide (CO2).", ("carbon dioxide", "CO2"), True),
    ("anything", "the", False),  # a gold answer that normalises to nothing never matches
])
def test_answer_contained(pred, gold, expected):
    assert answer_contained(pred, gold) is expected


@pytest.mark.parametrize("pred, gold, question, expected", [
    ("__len__", "__len__", "What does len() call?", True),          # the bare answer, with its punctuation
    ("It calls __len__.", "__len__", "What does len() call?", True),
    ("It calls len().", "__len__", "What does len() call?", False),  # only the question's own word
    ("len", "__len__", "What does len() call?", False),
    ("Ostreva", "Ostreva", "Is the river the Ostreva?", False),      # an echo of the question
    ("The mayor is Ilse Varga.", "Ilse Varga", "Who is the mayor of Dunmere?", True),
    ("mayor of Dunmere", "Ilse Varga", "Who is the mayor of Dunmere?", False),
])
def test_answer_contained_strict_about_echoes(pred, gold, question, expected):
    assert answer_contained(pred, gold, question=question) is expected


def test_bad_gold():
    with pytest.raises(ConfigError):
        answer_contained("x", [])
    with pytest.raises(ConfigError):
        normalise(3)


@given(st.text(max_size=40), st.text(min_size=1, max_size=20))
def test_metric_properties(pred, gold):
    assert 0.0 <= token_f1(pred, gold) <= 1.0
    if exact_match(pred, gold) and normalise(gold):
        assert answer_contained(pred, gold)
        assert token_f1(pred, gold) == 1.0
    assert normalise(normalise(pred)) == normalise(pred)


def test_bootstrap_ci():
    values = [1.0] * 70 + [0.0] * 30
    mean, lo, hi = bootstrap_ci(values, seed=1)
    assert mean == pytest.approx(0.7) and lo < 0.7 < hi and hi - lo < 0.25
    assert bootstrap_ci(values, seed=1) == (mean, lo, hi)
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)
    _, lo9, hi9 = bootstrap_ci(values, confidence=0.5, seed=1)
    assert lo <= lo9 <= hi9 <= hi
    med = bootstrap_ci([1, 2, 3, 100], statistic=lambda x: float(sorted(x)[len(x) // 2]), n_resamples=200)
    assert med[0] == 3 and med[1] >= 1 and med[2] <= 100
    with pytest.raises(DataError):
        bootstrap_ci([])
    with pytest.raises(ConfigError):
        bootstrap_ci([1.0], confidence=1.5)


class EchoGenerator:
    """Stands in for a Generator: answers with a canned reply per question, records batch sizes."""

    def __init__(self, replies):
        self.replies = replies
        self.calls = []

    def chat_batch(self, conversations, max_new_tokens=64, *, system=None, batch_size=8, progress=False):
        self.calls.append((len(conversations), max_new_tokens, batch_size))
        return [self.replies.get(c if isinstance(c, str) else c[-1]["content"], "I do not know.") for c in conversations]


def test_answer_accuracy_accepts_pairs_tuples_and_dicts():
    gen = EchoGenerator({"Q1?": "It is the Ostreva.", "Q2?": "Seven.", "Q3?": "Maybe 1712?",
                         "Q4?": "no idea"})
    items = [QAPair("Q1?", "Ostreva", "f1", "d1", "s1"), ("Q2?", ("seven", "7")),
             {"prompt": "Q3?", "answer": "1712"}, {"question": "Q4?", "answers": ["x"]}]
    acc = answer_accuracy(gen, items, max_new_tokens=9, batch_size=3)
    assert isinstance(acc, Accuracy) and acc.n == 4 and float(acc) == 0.75
    assert acc.correct == [True, True, True, False]
    assert gen.calls == [(4, 9, 3)]
    assert acc.ci[0] <= 0.75 <= acc.ci[1]
    df = acc.to_frame()
    assert list(df.columns) == ["question", "answer", "prediction", "correct"] and df["correct"].sum() == 3
    assert "(n=4)" in str(acc)
    acc_em = answer_accuracy(gen, items, metric=lambda p, a: exact_match(p, a))
    assert acc_em.accuracy == 0.25  # only "Seven." is an exact match


def test_answer_accuracy_general_questions_format():
    gen = EchoGenerator({q: a[0] for q, a in GENERAL_QUESTIONS})
    assert answer_accuracy(gen, GENERAL_QUESTIONS).accuracy == 1.0


@pytest.mark.parametrize("bad,match", [
    ([], "no pairs"),
    ([{"prompt": "q"}], "pair 0: a dict needs"),
    ([("q", "")], "answers must be non-empty"),
    ([42], "pair 0: expected"),
    ([("", "a")], "question must be"),
])
def test_answer_accuracy_bad_pairs(bad, match):
    with pytest.raises(DataError, match=match):
        answer_accuracy(EchoGenerator({}), bad)


def test_thousands_separators_and_score_answers():
    assert normalise("48,200 people") == "48200 people"
    assert score_answers(["a b", "c"], ["b", "d"]) == [1.0, 0.0]
    with pytest.raises(ConfigError, match="metric"):
        score_answers(["a"], ["a"], metric="bleu")
    with pytest.raises(ConfigError, match="predictions"):
        score_answers(["a"], ["a", "b"])


# -- structured output ---------------------------------------------------------------------

from ragft_lib.evaluate import json_validity, parse_json_object, schema_match  # noqa: E402


def test_parse_json_object_is_strict():
    assert parse_json_object('{"a": "1"}') == {"a": "1"}
    assert parse_json_object('\n {"a": "1"}  ') == {"a": "1"}
    assert parse_json_object('```json\n{"a": "1"}\n```') is None
    assert parse_json_object('The answer: {"a": "1"}') is None
    assert parse_json_object('["a"]') is None
    assert parse_json_object('{"a": ') is None
    assert parse_json_object("") is None
    with pytest.raises(ConfigError):
        parse_json_object(None)


def test_json_validity_checks_keys_and_string_values():
    keys = ["entity", "attribute", "value"]
    preds = ['{"entity": "X", "attribute": "river", "value": "Y"}',
             '{"entity": "X", "attribute": "river"}',
             '{"entity": "X", "attribute": "river", "value": "Y", "extra": "Z"}',
             '{"entity": "X", "attribute": "river", "value": 1841}',
             'X lies on the Y river.']
    assert json_validity(preds, keys) == [True, False, False, False, False]
    assert json_validity(preds) == [True, True, True, False, False]


def test_schema_match_counts_fields():
    t = {"entity": "Brindlemere", "attribute": "river", "value": "Ostreva"}
    preds = ['{"entity": "Brindlemere", "attribute": "river", "value": "Ostreva"}',
             '{"entity": "the brindlemere", "attribute": "region", "value": "Ostreva"}',
             '{"value": "Ostreva"}', "no json"]
    assert schema_match(preds, [t] * 4) == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])
    with pytest.raises(ConfigError):
        schema_match(preds, [t])
    with pytest.raises(DataError):
        schema_match(["{}"], [{}])


# --- retrieval, citations, format, consistency, multiple choice ---------------------------------

from ragft_lib.evaluate import (  # noqa: E402
    answer_agreement, mc_options, mrr, multiple_choice, recall_at_k,
)


def test_recall_and_mrr():
    ranked = [["a", "b", "c"], ["x", "y", "z"], ["q", "r", "s"]]
    assert recall_at_k(ranked, ["a", "z", "nope"], 1) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, ["a", "z", "nope"], 3) == pytest.approx(2 / 3)
    assert mrr(ranked, ["a", {"z", "y"}, "nope"]) == pytest.approx((1 + 1 / 2 + 0) / 3)
    with pytest.raises(DataError):
        recall_at_k(ranked, ["a"], 1)


def test_answer_agreement():
    assert answer_agreement(["The Ostreva.", "ostreva", "Ostreva!"]) == 1.0
    assert answer_agreement(["a1", "b2", "c3", "a1"]) == 0.5
    with pytest.raises(DataError):
        answer_agreement([])


def test_mc_options_are_plausible_and_deterministic():
    from ragft_lib.datasets import load_world

    w = load_world()
    f = w.facts_in("train")[0]
    opts, i = mc_options(f, w.facts)
    assert len(opts) == 4 and opts[i] == f.answer and len(set(opts)) == 4
    assert mc_options(f, w.facts) == (opts, i)


@pytest.mark.slow
def test_multiple_choice_prefers_the_contextual_answer(generator):
    ctx = "The mayor of Meisdale is Thindrem Thountuszoum."
    q = "Who is the mayor of Meisdale?"
    opts = ["Pos Davro", "Thindrem Thountuszoum", "Souv Sathkrithbro"]
    assert multiple_choice(generator, q, opts, context=ctx) == 1


def test_answer_accuracies_share_one_generation_call():
    from ragft_lib.evaluate import answer_accuracies

    gen = EchoGenerator({"Q1?": "It is the Ostreva.", "Q2?": "Seven.", "Q3?": "no idea"})
    accs = answer_accuracies(gen, {"a": [("Q1?", "Ostreva"), ("Q2?", "seven")], "b": [("Q3?", "x")]},
                             max_new_tokens=5)
    assert gen.calls == [(3, 5, 32)]  # both sets in one batched call
    assert list(accs) == ["a", "b"] and accs["a"].accuracy == 1.0 and accs["b"].accuracy == 0.0
    assert accs["a"].predictions == ["It is the Ostreva.", "Seven."] and accs["b"].questions == ["Q3?"]
    single = answer_accuracy(gen, [("Q1?", "Ostreva"), ("Q2?", "seven")])
    assert (single.accuracy, single.ci, single.correct) == (accs["a"].accuracy, accs["a"].ci, accs["a"].correct)
    with pytest.raises(DataError, match="set 'b', pair 0: expected"):
        answer_accuracies(gen, {"a": [("Q1?", "x")], "b": [42]})
    with pytest.raises(DataError, match="set 'b': no pairs"):
        answer_accuracies(gen, {"a": [("Q1?", "x")], "b": []})
    with pytest.raises(DataError, match="no question sets"):
        answer_accuracies(gen, {})
