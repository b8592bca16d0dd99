"""The book's experiments at a tiny size, on the real packaged models (slow)."""

from __future__ import annotations

import pytest

from ragft_lib.experiments import ExperimentResult, ExperimentSettings, consistency, freshness, new_knowledge


def test_settings_scale_with_one_model_id():
    cpu = ExperimentSettings.for_model(None)
    gpu = ExperimentSettings.for_model("Qwen/Qwen2.5-1.5B-Instruct")
    assert cpu.generator is None and gpu.n_facts > cpu.n_facts and gpu.raft_max_length > cpu.raft_max_length
    assert cpu.key("a") != cpu.key("b") and cpu.key("a") == ExperimentSettings().key("a")


def test_context_adapters_get_their_own_epochs_and_length():
    cpu = ExperimentSettings.for_model(None)
    plain, ctx = cpu.lora_config(), cpu.lora_config(context=True)
    assert (plain.epochs, plain.max_length) == (cpu.epochs, cpu.max_length)
    assert (ctx.epochs, ctx.max_length) == (cpu.context_epochs, cpu.raft_max_length)
    assert ctx.epochs < plain.epochs  # on a CPU the long-context adapters train fewer epochs
    gpu = ExperimentSettings.for_model("Qwen/Qwen2.5-1.5B-Instruct")
    assert gpu.lora_config(context=True).epochs == gpu.epochs  # None: the same epochs as the rest
    assert ExperimentSettings(context_epochs=None).lora_config(context=True).epochs == ExperimentSettings().epochs


TINY = dict(n_facts=4, epochs=1, max_length=64, raft_max_length=352, n_consistency=2, max_new_tokens=16,
            context_epochs=1, n_format=6)


@pytest.fixture()
def tiny():
    return ExperimentSettings(**TINY)  # results not cached (use_cache=False); adapters reused by content


@pytest.mark.slow
def test_new_knowledge_tiny(tiny):
    res = new_knowledge(tiny, approaches=("closed-book", "rag", "lora"), use_cache=False)
    assert list(res.summary["approach"]) == ["closed-book", "rag", "lora"]
    cmp = res.compare("rag", "closed-book")
    assert cmp.n == 4 and cmp.ci[0] <= cmp.difference <= cmp.ci[1]
    assert (res.summary["n"] == 4).all() and ((res.summary["lo"] <= res.summary["accuracy"])
                                               & (res.summary["accuracy"] <= res.summary["hi"])).all()
    assert res.timings["train_lora_s"] > 0 and "recall@2" in res.extra["retrieval"]
    again = ExperimentResult.from_dict(res.to_dict())
    assert again.summary.equals(res.summary)


@pytest.mark.slow
def test_freshness_tiny(tiny):
    res = freshness(tiny, use_cache=False)
    t = res.timings
    assert t["retrain_s"] > t["index_update_s"] > 0
    assert set(res.frame["approach"]) == {"rag", "lora", "lora+rag (old adapter)"}
    assert res.extra["questions"] == 2 * res.extra["changed_facts"] > 0  # one trained, one held-out phrasing
    asked = {a["question"] for a in res.extra["answers"]}
    assert len(asked) == res.extra["questions"]


@pytest.mark.slow
def test_consistency_tiny(tiny):
    res = consistency(tiny, use_cache=False)
    assert set(res.summary["approach"]) == {"rag", "lora-aug+rag", "lora-aug", "few-shot+rag", "format-lora+rag"}
    n_format = res.summary.set_index("approach")["n_format"]
    assert (n_format[["rag", "few-shot+rag", "format-lora+rag"]] == TINY["n_format"]).all()
    assert (n_format[["lora-aug", "lora-aug+rag"]] == TINY["n_facts"]).all()
    # the format test's facts are outside the experiment's sample, and every system answers the same ones
    fmt = res.frame[res.frame["test"] == "format"]
    same = {a: set(g["fact_id"]) for a, g in fmt.groupby("approach")}
    assert same["rag"] == same["few-shot+rag"] == same["format-lora+rag"]
    assert not same["rag"] & same["lora-aug"]
    cmp = res.compare("format-lora+rag", "few-shot+rag", value="json_valid", where={"test": "format"})
    assert cmp.n == TINY["n_format"] and cmp.ci[0] <= cmp.difference <= cmp.ci[1]
    assert res.timings["train_format_adapter_s"] > 0


def test_decision_from_measurement_uses_the_measured_numbers():
    import pandas as pd

    from ragft_lib.experiments import decision_from_measurement

    summary = pd.DataFrame([
        dict(approach="closed-book", accuracy=0.0, lo=0.0, hi=0.0, n=20, prompt_tokens=40.0),
        dict(approach="rag", accuracy=0.8, lo=0.6, hi=0.95, n=20, prompt_tokens=340.0),
        dict(approach="lora-aug", accuracy=0.3, lo=0.1, hi=0.5, n=20, prompt_tokens=40.0),
    ])
    nk = ExperimentResult("new_knowledge", pd.DataFrame(), summary, {}, {"train_lora-aug": {"examples": 60}}, {})
    lat = {a: {"p50": 100.0, "p95": 200.0, "p99": 300.0} for a in ("rag", "fine-tune", "hybrid")}
    d = decision_from_measurement(nk, latency=lat, requests_per_day=10_000)
    assert d["measured_context_tokens"] == 300.0 and d["cost_inputs"].rag_context_tokens_per_request == 300.0
    assert d["scenario"].rag_quality_sufficient is True and d["scenario"].labeled_examples == 60
    assert d["recommendation"].approach in ("rag", "fine-tune", "hybrid")
    assert d["scenario"].finetune_quality_sufficient is False            # lora-aug 0.3 < 0.6: measured, not gated
    assert "Measured p95" in d["recommendation"].to_markdown()
    low = decision_from_measurement(nk, quality_target=0.9)
    assert low["scenario"].rag_quality_sufficient is False
    tuned_ok = decision_from_measurement(nk, quality_target=0.25)
    assert tuned_ok["scenario"].finetune_quality_sufficient is True
    assert not any(r.dimension == "training data" for r in tuned_ok["recommendation"].reasons)  # 60 labels, no gate


def test_facts_are_sampled_across_attributes_not_the_first_n():
    from ragft_lib.experiments import stratified_sample
    from ragft_lib.datasets import load_world

    world = load_world(seed=0)
    facts = world.facts_in("train")
    picked = stratified_sample(facts, 44, seed=0)
    attrs = {f.attribute for f in facts}
    assert len(picked) == 44 and {f.attribute for f in picked} == attrs  # every attribute, 4 each
    assert stratified_sample(facts, 44, seed=0) == picked and stratified_sample(facts, 44, seed=1) != picked
    assert picked != facts[:44]


def test_compare_pairs_on_the_same_questions_and_names_bad_approaches():
    import pandas as pd

    from ragft_lib.errors import ConfigError
    from ragft_lib.experiments import summarise

    f = pd.DataFrame({"approach": ["rag"] * 3 + ["lora"] * 2, "fact_id": [1, 2, 3, 1, 3],
                      "correct": [True, True, False, False, True]})
    res = ExperimentResult("x", f, summarise(f), {}, {}, {})
    cmp = res.compare("rag", "lora")
    assert cmp.n == 2 and (cmp.only_a, cmp.only_b) == (1, 1)  # question 2 is not shared: left out
    with pytest.raises(ConfigError) as e:
        res.compare("rag", "raft")
    assert e.value.field == "b"


def test_wilson_summary_does_not_collapse_at_the_ceiling():
    import pandas as pd

    from ragft_lib.experiments import summarise

    s = summarise(pd.DataFrame({"approach": ["rag"] * 60, "correct": [True] * 60}))
    assert s.loc[0, "accuracy"] == 1.0 and 0.9 < s.loc[0, "lo"] < 0.95 and s.loc[0, "hi"] == 1.0
