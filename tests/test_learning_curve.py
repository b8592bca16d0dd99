"""The learning-curve experiment's pieces: settings, nested training sets, the general questions, and
the reading of a result (points with intervals, seed-averaged paired comparisons)."""

from __future__ import annotations

import pandas as pd
import pytest

from ragft_lib.datasets import load_world
from ragft_lib.errors import ConfigError, DataError
from ragft_lib.experiments import ExperimentResult, LearningCurveSettings, learning_curve
from ragft_lib.experiments.learning_curve import (compare_points, curve_points, general_questions,
                                                  nested_training_sets)


def test_default_settings_meet_the_brief():
    s = LearningCurveSettings()
    assert s.sizes() == [100, 150, 224, 334, 500]
    assert len(s.sizes()) >= 5 and s.sizes()[-1] >= 500 and s.n_test >= 100 and s.n_general >= 100
    assert s.key() == LearningCurveSettings().key() != LearningCurveSettings(seeds=2).key()


@pytest.mark.parametrize("kwargs, field", [
    ({"n_test": 1}, "n_test"),
    ({"max_pairs": 100}, "max_pairs"),          # not more than one pair per test fact
    ({"max_pairs": 601}, "max_pairs"),          # more than six pairs per test fact
    ({"n_test": 4, "max_pairs": 6, "n_sizes": 5}, "n_sizes"),  # five distinct sizes do not fit in 4..6
    ({"epochs": 0}, "epochs"),
    ({"fixed_steps": 0}, "fixed_steps"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"seeds": 0}, "seeds"),
    ({"n_general": 2}, "n_general"),
    ({"options": 1}, "options"),
    ({"k": 0}, "k"),
])
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^{field}: ") as e:
        LearningCurveSettings(**kwargs)
    assert e.value.field == field


def test_learning_curve_rejects_other_settings():
    with pytest.raises(ConfigError, match=r"^settings: must be a LearningCurveSettings"):
        learning_curve({"n_test": 100})


def test_training_sets_are_nested_and_cover_every_fact():
    facts = load_world().facts_in("train")[:10]
    sizes = [10, 17, 33, 60]
    sets = nested_training_sets(facts, sizes, seed=3)
    for small, large in zip(sizes, sizes[1:]):
        assert sets[large][:small] == sets[small]           # a smaller set is a prefix of a larger one
    ids = {f.id for f in facts}
    for n in sizes:
        assert len(sets[n]) == n
        assert {e["fact_id"] for e in sets[n]} == ids          # every fact at least once
    # the first block is one question phrasing of each fact; the held-out phrasing is never trained on
    assert sorted(e["prompt"] for e in sets[10]) == sorted(f.questions[0] for f in facts)
    heldout = {f.heldout_question for f in facts}
    assert not heldout & {e["prompt"] for e in sets[60]}
    assert len({(e["prompt"], e["completion"]) for e in sets[60]}) == 60   # six distinct pairs per fact
    assert nested_training_sets(facts, sizes, seed=3) == sets and nested_training_sets(facts, sizes, seed=4) != sets


def test_training_sets_bad_input():
    facts = load_world().facts_in("train")[:3]
    with pytest.raises(ConfigError, match=r"^sizes: .*from 1 to 18"):
        nested_training_sets(facts, [19])
    with pytest.raises(ConfigError, match=r"^sizes: "):
        nested_training_sets(facts, [0])
    with pytest.raises(DataError, match="no facts"):
        nested_training_sets([], [1])


def test_general_questions_from_cldr():
    qs = general_questions(100, options=4, seed=0)
    assert len(qs) == 100 and len({q["id"] for q in qs}) == 100
    assert sum(q["kind"] == "city" for q in qs) == 50
    tokyo = general_questions(200, seed=0)
    by_id = {q["id"]: q for q in tokyo}
    if "city:JP" in by_id:  # Japan has one time zone, Asia/Tokyo
        q = by_id["city:JP"]
        assert q["options"][q["right"]] == "Tokyo is in Japan."
    for q in qs:
        assert len(q["options"]) == 4 and len(set(q["options"])) == 4 and 0 <= q["right"] < 4
    assert general_questions(100, seed=0) == qs and general_questions(100, seed=1) != qs
    with pytest.raises(ConfigError, match=r"^n_general: "):
        general_questions(1)
    with pytest.raises(ConfigError, match=r"^n_general: at most"):
        general_questions(10_000)
    with pytest.raises(ConfigError, match=r"^options: "):
        general_questions(10, options=1)


def _result() -> ExperimentResult:
    rows = []
    for q in range(6):
        rows.append(dict(curve="rag", pairs=0, steps=0, seed=-1, questions="test", item=q, correct=True))
        rows.append(dict(curve="closed-book", pairs=0, steps=0, seed=-1, questions="test", item=q, correct=q == 0))
        rows.append(dict(curve="closed-book", pairs=0, steps=0, seed=-1, questions="general", item=q, correct=q < 5))
        for seed in (0, 1):
            rows.append(dict(curve="fixed-epochs", pairs=10, steps=2, seed=seed, questions="test", item=q,
                             correct=q < 1 + seed))
            rows.append(dict(curve="fixed-epochs", pairs=40, steps=5, seed=seed, questions="test", item=q,
                             correct=q < 5))
        rows.append(dict(curve="fixed-epochs", pairs=20, steps=3, seed=0, questions="test", item=q, correct=q < 3))
    frame = pd.DataFrame(rows)
    return ExperimentResult("learning_curve", frame, pd.DataFrame(), {}, {}, {},
                            {"seeds": [0, 1], "sizes": [10, 20, 40], "chance": 0.25, "fixed_steps": 3,
                             "fixed_epochs": 1, "n_test": 6, "n_general": 6})


def test_curve_points_use_the_first_seed_and_report_the_spread():
    pts = curve_points(_result()).set_index(["curve", "pairs", "questions"])
    p = pts.loc[("fixed-epochs", 10, "test")]
    assert p["accuracy"] == pytest.approx(1 / 6) and p["n"] == 6 and p["lo"] < p["accuracy"] < p["hi"]
    assert p["seed_accuracies"] == [round(1 / 6, 3), round(2 / 6, 3)]
    assert pts.loc[("fixed-epochs", 20, "test")]["seed_accuracies"] is None
    assert pts.loc[("closed-book", 0, "general")]["accuracy"] == pytest.approx(5 / 6)


def test_compare_points_pairs_on_questions_and_averages_seeds():
    res = _result()
    c = compare_points(res, ("fixed-epochs", 40), ("fixed-epochs", 10))
    assert c["seeds"] == (2, 2) and "bootstrap" in c["test"] and c["n"] == 6
    assert c["value_a"] == pytest.approx(5 / 6) and c["value_b"] == pytest.approx(1.5 / 6)
    assert c["difference"] == pytest.approx(c["value_a"] - c["value_b"])
    assert c["ci"][0] <= c["difference"] <= c["ci"][1]
    one = compare_points(res, ("rag", 0), ("closed-book", 0), labels=("rag", "closed-book"))
    assert one["seeds"] == (0, 0) and one["a"] == "rag" and one["difference"] == pytest.approx(5 / 6)
    assert one["verdict"] == "supported"
    with pytest.raises(ConfigError, match=r"^b: no 'test' rows for curve 'fixed-steps' at 10 pairs"):
        compare_points(res, ("fixed-epochs", 40), ("fixed-steps", 10))


@pytest.mark.slow
def test_tiny_learning_curve_runs_end_to_end():
    s = LearningCurveSettings(n_test=4, max_pairs=8, n_sizes=2, seeds=2, n_general=4, fixed_steps=1)
    res = learning_curve(s, use_cache=False, progress=False)
    f = res.frame
    assert res.extra["sizes"] == [4, 8] and res.extra["fixed_steps"] == 1
    assert set(f["curve"]) == {"closed-book", "rag", "fixed-epochs", "fixed-steps"}
    fs = f[f["curve"] == "fixed-steps"]
    assert set(fs["steps"]) == {1} and set(fs["pairs"]) == {4, 8} and set(fs["seed"]) == {0, 1}
    fe = f[f["curve"] == "fixed-epochs"].groupby("pairs")["steps"].first()
    assert fe[4] == 1 and fe[8] == 1  # one epoch of 4 and of 8 pairs at batch 8
    assert len(f[(f["curve"] == "closed-book") & (f["questions"] == "general")]) == 4
    assert not len(f[(f["curve"] == "rag") & (f["questions"] == "general")])
    c = compare_points(res, ("fixed-epochs", 8), ("fixed-epochs", 4))
    assert c["n"] == 4 and c["ci"][0] <= c["difference"] <= c["ci"][1]
