"""Chapter helpers: cost tables, the 1M-scenario summary, the explorer, the rules table, the
worked-scenarios table, sweeps and the decision form."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ragft_lib.cost import (
    APPROACHES,
    CostInputs,
    breakdown_frame,
    cheapest_by_volume,
    cost_per_request,
    crossover,
    explorer,
    sample_inputs,
)
from ragft_lib.decision import (
    FLAG_RULES,
    RULE_BASE,
    RULES,
    Scenario,
    form,
    load_scenarios,
    main_reasons,
    recommend,
    rules_frame,
    sweep,
    verdicts_frame,
)
from ragft_lib.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# ------------------------------------------------------------------------------------------
# cost tables
# ------------------------------------------------------------------------------------------


def test_breakdown_totals_are_the_cost_per_request() -> None:
    x = CostInputs(knowledge_update_days=7)
    f = breakdown_frame(x, requests_per_day=(500, 2_000_000))
    for r in (500, 2_000_000):
        for a in APPROACHES:
            want = 1000 * cost_per_request(x.replace(requests_per_day=r), a)
            assert f.loc["total", (r, a)] == pytest.approx(want)
            assert f.loc[f.index != "total", (r, a)].sum() == pytest.approx(want)
    assert "retraining" in f.index and "custom_model_hosting" not in f.index  # all-zero rows dropped


def test_sampled_inputs_are_valid_cost_inputs() -> None:
    xs = sample_inputs(200, seed=3)
    assert set(xs["hosting"]) == {"api", "self-hosted"}
    assert np.isinf(xs["knowledge_update_days"]).any()
    for i in range(0, 200, 17):
        row = {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in xs.items()}
        if math.isinf(row["knowledge_update_days"]):
            row["knowledge_update_days"] = None
        CostInputs.from_dict(row)  # raises if any drawn value is invalid
    with pytest.raises(ConfigError, match="gpu_hour_usd"):
        sample_inputs(10, ranges={"gpu_hour_usd": (1, 2, "cubic")})


def test_cheapest_by_volume_is_a_reproducible_share_table() -> None:
    f = cheapest_by_volume(n=30_000, seed=1)
    assert f.attrs["scenarios"] >= 30_000
    assert list(f.columns) == ["rag", "fine-tune", "hybrid"]              # prompt-only is left out by default
    assert np.allclose(f.sum(axis=1), 1.0)
    assert f["fine-tune"].iloc[-1] > f["fine-tune"].iloc[0]          # fine-tuning wins with volume
    assert f.equals(cheapest_by_volume(n=30_000, seed=1))
    assert 0 <= f.attrs["never_share"] <= 1


# ------------------------------------------------------------------------------------------
# cost explorer
# ------------------------------------------------------------------------------------------


def test_explorer_redraws_on_every_change() -> None:
    pytest.importorskip("ipywidgets")
    ex = explorer()
    assert ex.inputs() == CostInputs()
    assert str(crossover(CostInputs())) in ex.message.value
    assert ex.output.outputs, "the figure is drawn into the output widget"
    ex.sliders["finetuned_token_price_multiplier"].value = 4.0
    assert str(crossover(CostInputs(finetuned_token_price_multiplier=4.0))) in ex.message.value
    ex.static.value = True
    assert ex.inputs().knowledge_update_days is None
    ex.hosting.value = "self-hosted"
    assert ex.inputs().hosting == "self-hosted"
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()


def test_explorer_rejects_unknown_fields() -> None:
    pytest.importorskip("ipywidgets")
    with pytest.raises(ConfigError, match="hosting"):
        explorer(fields={"hosting": (1, 2)})


# ------------------------------------------------------------------------------------------
# decision tables
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=[f"{r[0]}->{r[2]}" for r in RULES])
def test_every_rule_row_is_what_recommend_does(rule: tuple) -> None:
    dimension, _when, favours, _weight, trigger = rule
    base = Scenario.from_dict(RULE_BASE)
    assert not any(r.dimension == dimension and r.favours == favours
                   for r in recommend(base, explain_changes=False).reasons if dimension != "cost at volume")
    rec = recommend(base.replace(**trigger), explain_changes=False)
    assert any(r.dimension == dimension and r.favours == favours for r in rec.reasons), rec.reasons


def test_rules_frame_covers_every_flag_rule() -> None:
    f = rules_frame()
    assert list(f.columns) == ["dimension", "when", "favours", "weight", "why", "example"]
    for field, dimension, favours, _w, why in FLAG_RULES:
        row = f[f["dimension"] == dimension].iloc[0]
        assert row["favours"] == favours and row["why"] == why and field in row["example"]


def test_verdicts_frame_agrees_with_recommend_on_every_example() -> None:
    scenarios = load_scenarios(EXAMPLES)
    assert len(scenarios) == len([p for p in EXAMPLES.iterdir() if p.suffix in (".json", ".yaml", ".yml")])
    f = verdicts_frame(scenarios)
    for name, s in scenarios.items():
        rec = recommend(s)
        assert f.loc[name, "verdict"] == rec.approach
        assert f.loc[name, "main reasons"].split(", ") == main_reasons(rec)
    assert set(f["verdict"]) == {"rag", "fine-tune", "hybrid"}
    with pytest.raises(DataError, match="no such folder"):
        load_scenarios(ROOT / "nope")


def test_main_reasons_of_a_hybrid_name_both_sides() -> None:
    rec = recommend(Scenario(knowledge_update_days=1, strict_format=True, labeled_examples=2_000),
                    explain_changes=False)
    assert rec.approach == "hybrid"
    names = [m.split(" (")[0] for m in main_reasons(rec, top=5)]
    assert names[0] == "combination" and "knowledge freshness" in names and "output format" in names


def test_sweep_flips_and_validates() -> None:
    s = Scenario(labeled_examples=2_000, knowledge_update_days=None)
    rows = sweep(s, "strict_format", [False, True])
    assert [r["approach"] for r in rows] == ["rag", "fine-tune"]
    assert rows[1]["strict_format"] is True
    with pytest.raises(DataError, match="nope"):
        sweep(s, "nope", [1])
    with pytest.raises(ConfigError, match="labeled_examples"):
        sweep(s, "labeled_examples", [-1])


# ------------------------------------------------------------------------------------------
# decision form
# ------------------------------------------------------------------------------------------


def test_markdown_without_headings() -> None:
    rec = recommend(Scenario(), explain_changes=False)
    text = rec.to_markdown(headings=False)
    assert "#" not in text and "**Reasons**" in text
    import re

    assert text == re.sub(r"^#{2,3} (.*)$", r"**\1**", rec.to_markdown(), flags=re.M)


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.glob("*.*") if p.suffix in (".json", ".yaml", ".yml")), ids=lambda p: p.name)
def test_form_round_trips_every_example(path: Path) -> None:
    pytest.importorskip("ipywidgets")
    s = Scenario.from_file(path)
    f = form(s, explain_changes=False)
    assert f.scenario() == s
    rec = f.submit()
    assert rec is not None and rec.approach == recommend(s).approach
    assert f.output.outputs and rec.approach in f.output.outputs[-1]["data"]["text/html"]


def test_form_reports_bad_input_by_field_and_keeps_working() -> None:
    pytest.importorskip("ipywidgets")
    f = form(explain_changes=False)
    f.inputs["labeled_examples"].value = "-3"
    assert f.submit() is None and "labeled_examples" in f.error.value
    f.inputs["labeled_examples"].value = "lots"
    assert f.submit() is None and "labeled_examples" in f.error.value and "number" in f.error.value
    f.inputs["labeled_examples"].value = "2,000"
    f.inputs["knowledge_update_days"].value = ""          # empty = static
    f.inputs["strict_format"].value = True
    assert f.inputs["rag_quality_sufficient"].label == "not measured"
    f.inputs["rag_quality_sufficient"].value = "no"
    rec = f.submit()
    assert f.error.value == "" and rec is not None
    assert rec.scenario.knowledge_update_days is None and rec.scenario.labeled_examples == 2_000
    assert rec.approach == "fine-tune"


def test_verdict_map_is_recommend_on_each_cell_and_plots() -> None:
    from ragft_lib.decision import plot_verdict_map, verdict_map

    s = Scenario(labeled_examples=2_000, knowledge_update_days=None)
    xs, ys = [1e3, 1e5, 1e7], [None, 7, 365]
    m = verdict_map(s, "requests_per_day", xs, "knowledge_update_days", ys)
    assert m.shape == (3, 3)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            want = recommend(s.replace(requests_per_day=x, knowledge_update_days=y), explain_changes=False).approach
            assert m.iloc[i, j] == want
    assert m.loc[None, 1e3] == m.iloc[0, 0]           # None stays None (not NaN) in the index
    ax = plot_verdict_map(m)
    assert len(ax.texts) == 9 and [t.get_text() for t in ax.get_yticklabels()][0] == "none"


def test_widgets_show_a_static_stand_in_while_the_book_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the static HTML page no kernel runs callbacks: no dead controls, a note instead."""
    pytest.importorskip("ipywidgets")
    monkeypatch.setenv("RAGFT_BOOK_BUILD", "1")
    for widget in (explorer(), form(explain_changes=False)):
        bundle = widget._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" not in bundle
        assert "Jupyter or Colab" in bundle["text/html"] and "live" in bundle["text/html"]
    monkeypatch.setenv("RAGFT_BOOK_BUILD", "0")
    assert "application/vnd.jupyter.widget-view+json" in explorer()._repr_mimebundle_()
