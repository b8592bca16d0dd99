"""The headline experiment's pieces: settings, candidate replies, seed-averaged paired comparisons,
and the batched log-likelihood scorer (against the one-at-a-time one)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from ragft_lib.errors import ConfigError, DataError
from ragft_lib.experiments import ExperimentResult, HeadlineSettings, compare_systems, per_question, summarise
from ragft_lib.experiments.headline import _option_texts


def test_settings_hold_the_sample_standard():
    assert HeadlineSettings().n_test >= 200
    with pytest.raises(ConfigError, match=r"^n_test: must be >= 100"):
        HeadlineSettings(n_test=99)
    with pytest.raises(ConfigError, match=r"^paraphrases: "):
        HeadlineSettings(paraphrases=4)  # the last phrasing is the held-out question
    with pytest.raises(ConfigError, match=r"^seeds: "):
        HeadlineSettings(seeds=0)
    assert HeadlineSettings().key() == HeadlineSettings().key() != HeadlineSettings(seeds=5).key()


def test_option_texts_put_each_value_into_the_facts_sentence():
    fact = SimpleNamespace(statement="Palstoumstead lies on the Stelnaela river.", answer="Stelnaela")
    assert _option_texts(fact, ["Vaskora", "Stelnaela"]) == [
        "Palstoumstead lies on the Vaskora river.", "Palstoumstead lies on the Stelnaela river."]
    odd = SimpleNamespace(statement="It was founded long ago.", answer="1432")
    assert _option_texts(odd, ["1432", "1501"]) == ["1432", "1501"]


def _result():
    rows = []
    for q in range(4):
        rows.append(dict(approach="rag", seed=-1, fact_id=q, attribute="a", scoring="mc", correct=q < 3))
        rows.append(dict(approach="closed-book", seed=-1, fact_id=q, attribute="a", scoring="mc", correct=q == 0))
        for seed in (0, 1, 2):
            rows.append(dict(approach="lora-aug", seed=seed, fact_id=q, attribute="a", scoring="mc",
                             correct=(q + seed) % 2 == 0))
    frame = pd.DataFrame(rows)
    return ExperimentResult("headline", frame, summarise(frame), {}, {}, {})


def test_per_question_averages_the_seeds():
    res = _result()
    assert per_question(res, "lora-aug").tolist() == pytest.approx([2 / 3, 1 / 3, 2 / 3, 1 / 3])
    assert per_question(res, "rag").tolist() == [1.0, 1.0, 1.0, 0.0]
    with pytest.raises(ConfigError, match="no 'mc' rows of approach 'nope'"):
        per_question(res, "nope")


def test_compare_systems_paired_exact_or_bootstrap_over_seeds():
    res = _result()
    exact = compare_systems(res, "rag", "closed-book")
    assert (exact.n, exact.only_a, exact.only_b) == (4, 2, 0)
    seed0 = compare_systems(res, "rag", "lora-aug", seed=0)  # one seed: 0/1 outcomes, exact test
    assert seed0.n == 4 and seed0.value_b == 0.5
    diff, lo, hi = compare_systems(res, "rag", "lora-aug")  # seed-averaged: paired bootstrap
    assert diff == pytest.approx(0.75 - 0.5) and lo <= diff <= hi
    with pytest.raises(ConfigError, match="for seed 7"):
        compare_systems(res, "lora-aug", "rag", seed=7)


def test_continuation_logprobs_rejects_bad_input():
    from ragft_lib.evaluate import continuation_logprobs

    gen = SimpleNamespace()
    with pytest.raises(ConfigError, match="^prompts: "):
        continuation_logprobs(gen, "a prompt", ["x"])
    with pytest.raises(DataError, match="2 prompts but 1 continuations"):
        continuation_logprobs(gen, ["a", "b"], ["x"])
    with pytest.raises(DataError, match=r"continuations\[0\]: expected a non-empty string"):
        continuation_logprobs(gen, ["a"], [""])


@pytest.mark.slow
def test_batched_scores_equal_one_at_a_time(generator):
    from ragft_lib.evaluate import continuation_logprobs, option_logprobs

    q, opts = "Which river flows through Palstoumstead?", ["It is the Vaskora.", "The Stelnaela river.", "No idea"]
    one = option_logprobs(generator, q, opts)
    batched = continuation_logprobs(generator, [generator.format_prompt(q)] * 3, opts, batch_size=2)
    assert batched == pytest.approx(one, abs=1e-3)


def test_comparison_entry_exact_for_untrained_and_seed_averaged_for_adapters():
    from ragft_lib.experiments.headline import comparison_entry

    res = _result()
    exact, per = comparison_entry(res, "rag", "closed-book", id="t-exact", dimension="new-knowledge", chapter="35",
                                  claim="c", metric="accuracy")
    assert per == [] and exact.n == 4 and exact.value_a == 0.75 and exact.value_b == 0.25
    avg, per = comparison_entry(res, "rag", "lora-aug", id="t-avg", dimension="new-knowledge", chapter="35",
                                claim="c", metric="accuracy", note="why")
    assert len(per) == 3 and avg.extra["seeds"] == [0, 1, 2]
    assert avg.value_b == pytest.approx(sum(c.value_b for c in per) / 3)
    assert avg.ci[0] <= avg.difference <= avg.ci[1]
    assert avg.note.startswith("why; per seed: 0: ") and "averaged over 3 seeds" in avg.test
    # one system trained once, the other with three seeds: only the shared seed is compared, exactly
    one = res.frame[(res.frame["approach"] == "lora-aug") & (res.frame["seed"] == 0)].assign(approach="once")
    mixed = ExperimentResult("headline", pd.concat([res.frame, one]), res.summary, {}, {}, {})
    e, per = comparison_entry(mixed, "once", "lora-aug", id="t-mixed", dimension="new-knowledge", chapter="35",
                              claim="c", metric="accuracy")
    assert per == [] and e.n == 4 and e.difference == 0 and "seed 0 only" in e.note


def test_changed_items_offer_the_new_and_the_old_value():
    from ragft_lib.datasets import load_world
    from ragft_lib.experiments.freshness import _changed_items

    world = load_world()
    facts = world.facts_in("train")[:40]
    changes, items, old_at = _changed_items(facts, world.facts, 4, seed=0)
    assert set(changes) == {f.id for f in facts}
    for f, (opts, right), old in zip(facts, items, old_at):
        assert changes[f.id] != f.answer and right != old and len(opts) == 4 and len(set(opts)) == 4
        assert changes[f.id] in opts[right] and f.answer in opts[old]
    assert _changed_items(facts, world.facts, 4, seed=0) == (changes, items, old_at)  # deterministic


def test_freshness_at_scale_refuses_other_settings():
    from ragft_lib.experiments import ExperimentSettings, freshness_at_scale

    with pytest.raises(ConfigError, match="^settings: must be a HeadlineSettings"):
        freshness_at_scale(ExperimentSettings())


def test_seeded_adapters_choose_epochs_on_validation_then_train_the_other_seeds(monkeypatch):
    """The shared training loop of the headline and jargon experiments, with training stubbed out."""
    import ragft_lib.finetune as finetune
    from ragft_lib.experiments.lab import seeded_adapters

    trained = []

    def fake_train(gen, examples, cfg, progress=False):
        trained.append((cfg.epochs, cfg.seed))
        return SimpleNamespace(generator=(cfg.epochs, cfg.seed), metrics=SimpleNamespace(wall_time_s=1.5))

    monkeypatch.setattr(finetune, "train_or_load", fake_train)
    scores = {1: [True, False, False], 2: [True, True, False], 3: [True, True, False]}
    timings: dict = {}
    said = []
    chosen = seeded_adapters(
        "base", [{"prompt": "q", "completion": "a"}], max_epochs=3, seeds=3, seed=5, learning_rate=1e-3,
        max_length=32, validate=lambda g: scores[g[0]], timings=timings, say=said.append)
    epochs, val, adapters = chosen.epochs, chosen.validation, chosen.adapters
    assert chosen.learning_rate == 1e-3 and chosen.validation_lr == {1e-3: scores[2]}  # no other rate tried
    assert epochs == 2  # 2 and 3 tie on validation: the smaller wins
    assert val == scores and sorted(adapters) == [5, 6, 7]
    assert adapters == {5: (2, 5), 6: (2, 6), 7: (2, 7)}
    assert trained == [(1, 5), (2, 5), (3, 5), (2, 6), (2, 7)]  # the chosen first seed is not retrained
    assert timings["train_e3_s5_s"] == 1.5 and "epochs chosen on validation: 2" in said


def test_seeded_adapters_then_choose_the_learning_rate_at_the_chosen_epochs(monkeypatch):
    """Epochs first (at the given rate), then each extra rate at those epochs; ties keep the given rate."""
    import ragft_lib.finetune as finetune
    from ragft_lib.experiments.lab import seeded_adapters

    trained = []

    def fake_train(gen, examples, cfg, progress=False):
        trained.append((cfg.epochs, cfg.seed, cfg.learning_rate))
        return SimpleNamespace(generator=(cfg.epochs, cfg.seed, cfg.learning_rate),
                               metrics=SimpleNamespace(wall_time_s=2.0))

    monkeypatch.setattr(finetune, "train_or_load", fake_train)
    right = {(1, 3e-3): 1, (2, 3e-3): 2, (2, 1e-3): 2, (2, 1e-2): 3}
    timings: dict = {}
    chosen = seeded_adapters(
        "base", [{"prompt": "q", "completion": "a"}], max_epochs=2, seeds=2, seed=0, learning_rate=3e-3,
        max_length=32, validate=lambda g: [True] * right[g[0], g[2]] + [False] * (4 - right[g[0], g[2]]),
        timings=timings, say=lambda m: None, learning_rates=(1e-3, 3e-3, 1e-2))
    assert chosen.epochs == 2 and chosen.learning_rate == 1e-2
    assert {lr: sum(v) for lr, v in chosen.validation_lr.items()} == {3e-3: 2, 1e-3: 2, 1e-2: 3}
    assert chosen.adapters == {0: (2, 0, 1e-2), 1: (2, 1, 1e-2)}
    assert trained == [(1, 0, 3e-3), (2, 0, 3e-3), (2, 0, 1e-3), (2, 0, 1e-2), (2, 1, 1e-2)]
    assert timings["train_e2_s0_lr0.01_s"] == 2.0 and timings["train_e2_s0_s"] == 2.0
    right[2, 1e-2] = 2  # a tie between rates keeps the given one
    tied = seeded_adapters(
        "base", [{"prompt": "q", "completion": "a"}], max_epochs=2, seeds=1, seed=0, learning_rate=3e-3,
        max_length=32, validate=lambda g: [True] * right[g[0], g[2]] + [False] * (4 - right[g[0], g[2]]),
        timings={}, say=lambda m: None, learning_rates=(1e-3, 1e-2))
    assert tied.learning_rate == 3e-3


def test_seeded_adapters_then_choose_the_rank_at_the_chosen_epochs_and_rate(monkeypatch):
    """The third coordinate: ranks at the chosen epochs and rate (alpha = 2 x rank); ties keep the given rank."""
    import ragft_lib.finetune as finetune
    from ragft_lib.experiments.lab import factor_grid, seeded_adapters

    trained = []

    def fake_train(gen, examples, cfg, progress=False):
        trained.append((cfg.epochs, cfg.seed, cfg.learning_rate, cfg.r, cfg.alpha))
        return SimpleNamespace(generator=(cfg.epochs, cfg.learning_rate, cfg.r), metrics=SimpleNamespace(wall_time_s=3.0))

    monkeypatch.setattr(finetune, "train_or_load", fake_train)
    right = {(1, 3e-3, 8): 1, (2, 3e-3, 8): 2, (2, 1e-3, 8): 1, (2, 9e-3, 8): 3, (2, 9e-3, 4): 3, (2, 9e-3, 16): 4}

    def run(**kw):
        return seeded_adapters(
            "base", [{"prompt": "q", "completion": "a"}], max_epochs=2, seeds=2, seed=0, learning_rate=3e-3,
            max_length=32, validate=lambda g: [True] * right[g] + [False] * (5 - right[g]), say=lambda m: None,
            learning_rates=factor_grid(3e-3, 3), rank=8, ranks=factor_grid(8, 2, integer=True), **kw)

    timings: dict = {}
    chosen = run(timings=timings)
    assert (chosen.epochs, chosen.learning_rate, chosen.rank) == (2, 9e-3, 16)
    assert {r: sum(v) for r, v in chosen.validation_rank.items()} == {8: 3, 4: 3, 16: 4}
    assert chosen.adapters == {0: (2, 9e-3, 16), 1: (2, 9e-3, 16)}
    assert trained == [(1, 0, 3e-3, 8, 16), (2, 0, 3e-3, 8, 16), (2, 0, 1e-3, 8, 16), (2, 0, 9e-3, 8, 16),
                       (2, 0, 9e-3, 4, 8), (2, 0, 9e-3, 16, 32), (2, 1, 9e-3, 16, 32)]
    assert timings["train_e2_s0_lr0.009_r16_s"] == 3.0 and timings["train_e2_s0_s"] == 3.0
    right[2, 9e-3, 16] = 3  # a tie between ranks keeps the given one, and the first seed is not retrained
    trained.clear()
    tied = run(timings={})
    assert tied.rank == 8 and tied.adapters == {0: (2, 9e-3, 8), 1: (2, 9e-3, 8)}
    assert trained[-1] == (2, 1, 9e-3, 8, 16)


def test_headline_adapter_config_keeps_the_rank_8_key_and_takes_the_chosen_rate_and_rank():
    """Adapters trained before the rank search (r=8, alpha=16 by default) keep their cache key."""
    from ragft_lib.experiments.headline import HeadlineSettings, headline_adapter_config
    from ragft_lib.finetune import LoRAConfig

    s = HeadlineSettings()
    assert headline_adapter_config(s, 2, 0) == LoRAConfig(target_modules="all", epochs=2, learning_rate=3e-3,
                                                          max_length=72, batch_size=8, seed=0)
    cfg = headline_adapter_config(s, 3, 1, learning_rate=1e-3, rank=16)
    assert (cfg.epochs, cfg.seed, cfg.learning_rate, cfg.r, cfg.alpha) == (3, 1, 1e-3, 16, 32)
    with pytest.raises(ConfigError, match="rank_factor"):
        HeadlineSettings(rank_factor=0.5)
