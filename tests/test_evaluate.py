"""Answer metrics and bootstrap intervals."""

import pytest

from ragft_lib.errors import ConfigError
from ragft_lib.evaluate import answer_contained, bootstrap_ci, exact_match, normalize_answer, score_answers, token_f1


def test_normalize():
    assert normalize_answer("The  Ostreva, river!") == "ostreva river"
    assert normalize_answer("48,200") == "48200"


def test_answer_contained_whole_words_only():
    assert answer_contained("The mayor of X is Pos Davro.", "Pos Davro") == 1.0
    assert answer_contained("It was founded in 13011.", "1301") == 0.0
    assert answer_contained("Born in May.", ["June", "May"]) == 1.0
    assert answer_contained("anything", "") == 0.0


def test_exact_and_f1():
    assert exact_match("Paris.", "paris") == 1.0 and exact_match("Paris, France", "Paris") == 0.0
    assert token_f1("Paris France", "Paris") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0 and token_f1("x", "y") == 0.0


def test_bootstrap_ci_brackets_the_mean_and_is_deterministic():
    vals = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1]
    mean, lo, hi = bootstrap_ci(vals)
    assert lo <= mean <= hi and mean == 0.7
    assert bootstrap_ci(vals) == (mean, lo, hi)
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0, 1.0)
    with pytest.raises(ConfigError, match="values"):
        bootstrap_ci([])


def test_score_answers_validates():
    assert score_answers(["a b", "c"], ["b", "d"]) == [1.0, 0.0]
    with pytest.raises(ConfigError, match="metric"):
        score_answers(["a"], ["a"], metric="bleu")
    with pytest.raises(ConfigError, match="predictions"):
        score_answers(["a"], ["a", "b"])
