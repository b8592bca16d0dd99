"""The form tasks of chapter 20 (format, style): settings, item splits and scoring, no model loaded."""

from types import SimpleNamespace

import pytest

from ragft_lib.errors import ConfigError


def test_form_settings_validate_at_construction():
    from ragft_lib.experiments import FormSettings

    assert FormSettings().task == "format" and FormSettings(task="style").n_test == 112
    with pytest.raises(ConfigError, match="^task: must be one of 'format', 'style', got 'layout'"):
        FormSettings(task="layout")
    with pytest.raises(ConfigError, match="^n_test: must be >= 100"):
        FormSettings(n_test=50)
    with pytest.raises(ConfigError, match="^rank_factor"):
        FormSettings(rank_factor=0)
    assert FormSettings(task="style").key() != FormSettings().key()


@pytest.mark.parametrize("task", ["format", "style"])
def test_form_items_keep_validation_and_test_facts_apart_from_training(task):
    from ragft_lib.datasets import extraction_task, load_world, style_task
    from ragft_lib.experiments import FormSettings
    from ragft_lib.experiments.form import form_items

    world = load_world()
    s = FormSettings(task=task)
    shots, train, val, test = form_items(s, world)
    assert (len(shots), len(train), len(val), len(test)) == (3, 48, 40, 112)
    trained = {e["fact_id"] for e in shots + train}
    assert not trained & {e["fact_id"] for e in val}
    assert len({e["fact_id"] for e in val}) == 40  # one item per validation fact
    eval_ids = {f.id for f in world.facts_in("eval")}
    assert {e["fact_id"] for e in test} <= eval_ids and not (trained | {e["fact_id"] for e in val}) & eval_ids
    # the shots and training items are the ones chapter 20 always drew (its cached answers stay valid)
    task_fn = extraction_task if task == "format" else style_task
    assert shots + train == task_fn(world, "train", n=51, seed=0)
    with pytest.raises(ConfigError, match="^n_validation: the train split has"):
        form_items(FormSettings(task=task, n_validation=100_000), world)


def test_form_scores_are_strict():
    from ragft_lib.experiments.form import _scorer

    target = {"entity": "Brindlemere", "attribute": "river", "value": "Ostreva"}
    items = [{"target": target}] * 3
    good = '{"entity": "Brindlemere", "attribute": "river", "value": "Ostreva"}'
    wrong_field = '{"entity": "Brindlemere", "attribute": "region", "value": "Ostreva"}'
    fenced = "```json\n" + good + "\n```"
    rows = _scorer("format")([good, wrong_field, fenced], items)
    assert [r["correct"] for r in rows] == [True, True, False]
    assert [round(r["fields"], 3) for r in rows] == [1.0, 0.667, 0.0]
    assert rows[1]["field_attribute"] is False and rows[1]["field_value"] is True
    style = _scorer("style")(["Registry note: Brindlemere lies on the Ostreva. -- OR.", "It lies on the Ostreva."],
                             [{"entity": "Brindlemere", "answer": "Ostreva"}] * 2)
    assert [(r["correct"], r["answer_kept"]) for r in style] == [(True, True), (False, True)]


def test_comparison_entry_compares_a_share_column_by_the_paired_bootstrap():
    """A value that is not 0/1 (the share of JSON fields right) is compared by the paired bootstrap,
    per seed too, and the entry's values are the seed-averaged means."""
    import pandas as pd

    from ragft_lib.experiments import ExperimentResult, comparison_entry

    rows = []
    for q in range(120):
        rows.append(dict(approach="few-shot", seed=-1, fact_id=str(q), scoring="free-form", correct=q % 2 == 0,
                         fields=1 / 3))
        for seed in (0, 1, 2):
            rows.append(dict(approach="lora", seed=seed, fact_id=str(q), scoring="free-form", correct=True,
                             fields=1.0 if q % 3 else 2 / 3))
    res = ExperimentResult("form", pd.DataFrame(rows), pd.DataFrame(), {}, {}, {}, {})
    entry, per = comparison_entry(res, "lora", "few-shot", id="fields-test", dimension="format", chapter="20", claim="c",
                                  metric="m", scoring="free-form", value="fields")
    assert entry.n == 120 and entry.verdict == "supported" and len(per) == 3 and all(isinstance(c, tuple) for c in per)
    assert entry.value_b == pytest.approx(1 / 3) and entry.value_a == pytest.approx((80 + 40 * 2 / 3) / 120)
    assert entry.ci[0] <= entry.difference <= entry.ci[1] and "per seed: 0: supported" in entry.note
    valid, _ = comparison_entry(res, "lora", "few-shot", id="validity-test", dimension="format", chapter="20", claim="c",
                                metric="m", scoring="free-form")
    assert valid.value_a == 1.0 and valid.value_b == 0.5 and valid.verdict == "supported"
    with pytest.raises(ConfigError, match="^value: the result has no column 'tokens'"):
        comparison_entry(res, "lora", "few-shot", id="tokens-test", dimension="format", chapter="20", claim="c", metric="m",
                         scoring="free-form", value="tokens")


@pytest.mark.slow
def test_form_task_runs_end_to_end_on_the_packaged_model(tmp_path, monkeypatch):
    """The smallest run: one adapter (1 epoch, no other rate or rank, one seed), every system answering
    the 100 test items; the frame has a row per system and item and the validation record what was tried."""
    monkeypatch.setenv("RAGFT_CACHE", str(tmp_path))
    from ragft_lib.experiments import FormSettings, form_task
    from ragft_lib.experiments.form import form_table

    s = FormSettings(task="style", n_train=8, n_validation=10, n_test=100, max_epochs=1, lr_factor=1, rank_factor=1,
                     seeds=1)
    res = form_task(s, progress=False)
    f = res.frame
    assert sorted(f.approach.unique()) == ["few-shot", "lora", "prompted"] and len(f) == 300
    assert res.extra["validation"] == {"epochs": {"1": pytest.approx(res.extra["validation"]["epochs"]["1"])},
                                       "learning_rate": {"0.003": res.extra["validation"]["epochs"]["1"]},
                                       "rank": {"8": res.extra["validation"]["epochs"]["1"]}}
    table = form_table(res)
    assert list(table.system) == ["prompted", "few-shot", "lora"] and (table.n == 100).all()
    assert table.set_index("system").loc["few-shot", "prompt tokens / request"] > \
        table.set_index("system").loc["prompted", "prompt tokens / request"]
    assert form_task(s, progress=False).frame.equals(f)  # the second call loads the cached result


def test_comparison_entry_on_one_shared_seed_compares_a_share_on_that_seed_alone():
    """Against a three-seed system, a system trained once is compared on the seed both have: the
    values, the difference and the note all speak of that seed (not of an average over the others)."""
    import pandas as pd

    from ragft_lib.experiments import ExperimentResult, comparison_entry

    rows = []
    for q in range(120):
        rows.append(dict(approach="once", seed=0, fact_id=str(q), scoring="s", correct=True, fields=1.0 if q % 2 else 0.5))
        for seed in (0, 1, 2):
            rows.append(dict(approach="thrice", seed=seed, fact_id=str(q), scoring="s", correct=True,
                             fields=0.5 if seed == 0 else 0.0))
    res = ExperimentResult("x", pd.DataFrame(rows), pd.DataFrame(), {}, {}, {}, {})
    entry, per = comparison_entry(res, "once", "thrice", id="one-seed", dimension="format", chapter="20", claim="c",
                                  metric="m", scoring="s", value="fields")
    assert (entry.value_a, entry.value_b, entry.difference) == (0.75, 0.5, 0.25) and len(per) == 1
    assert entry.note.startswith("seed 0 only") and entry.verdict == "supported"
