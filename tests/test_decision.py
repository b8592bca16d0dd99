"""Decision engine: the issue's API, rules, properties, loading and the numpy-free path."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragft_lib.cost import CostInputs
from ragft_lib.decision import MIN_LABELED_EXAMPLES, Recommendation, Scenario, recommend
from ragft_lib.errors import ConfigError, DataError, RagftError
from ragft_lib.latency import simulate

ROOT = Path(__file__).resolve().parents[1]
APPROACHES = {"rag", "fine-tune", "hybrid", "prompt"}
SECTIONS = ("## Verdict:", "### Reasons", "### Cost crossover", "### Latency check", "### What would change the verdict")

scenarios = st.builds(
    Scenario,
    stage=st.sampled_from(["prototype", "production"]),
    knowledge_update_days=st.none() | st.sampled_from([1, 3, 7, 14, 30, 60, 365]),
    kb_documents=st.integers(0, 2_000_000),
    labeled_examples=st.integers(0, 100_000),
    requests_per_day=st.floats(1, 1e7),
    latency_p95_slo_ms=st.none() | st.floats(100, 10_000),
    needs_citations=st.booleans(),
    regulated=st.booleans(),
    strict_format=st.booleans(),
    specialized_jargon=st.booleans(),
    style_transfer=st.booleans(),
    rag_quality_sufficient=st.none() | st.booleans(),
    finetune_quality_sufficient=st.none() | st.booleans(),
    prompt_quality_sufficient=st.none() | st.booleans(),
    hosting=st.sampled_from(["api", "self-hosted"]),
)


def test_issue_example_exactly_as_written() -> None:
    s = Scenario(stage="production", knowledge_update_days=1, kb_documents=60_000,
                 labeled_examples=2_000, requests_per_day=300_000, latency_p95_slo_ms=None,
                 needs_citations=True, regulated=False, strict_format=True,
                 specialized_jargon=False, style_transfer=False, rag_quality_sufficient=None)
    rec = recommend(s)
    assert rec.approach == "hybrid"
    dims = {r.dimension: r.favours for r in rec.reasons}
    assert dims["citations"] == "rag" and dims["output format"] == "fine-tune" and dims["combination"] == "hybrid"
    md = rec.to_markdown()
    for section in SECTIONS:
        assert section in md
    assert "614,331 requests/day" in md  # the cost crossover at daily knowledge changes


def test_every_field_has_a_default_and_complete_metadata() -> None:
    Scenario()  # every field has a default
    specs = Scenario.field_specs()
    assert [s["name"] for s in specs] == [f.name for f in dataclasses.fields(Scenario)]
    for s in specs:
        assert s["kind"] in ("float", "int", "bool", "choice")
        assert s["label"] and s["help"].endswith(".")
        if s["kind"] in ("float", "int"):
            assert s["unit"] and s["min"] == 0
        if s["nullable"]:
            assert s["null_means"]
        if s["kind"] == "choice":
            assert s["default"] in s["choices"]
    json.dumps(specs)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stage", "pilot", "must be one of 'prototype', 'production', got 'pilot'"),
        ("stage", 1, "must be one of"),
        ("knowledge_update_days", 0, "must be > 0 days, got 0"),
        ("knowledge_update_days", "weekly", "must be a number, got str 'weekly'"),
        ("kb_documents", -1, "must be >= 0 documents, got -1"),
        ("kb_documents", 10.5, "must be a whole number, got 10.5"),
        ("labeled_examples", True, "must be a number, got bool True"),
        ("requests_per_day", 0, "must be > 0 requests/day, got 0"),
        ("requests_per_day", float("nan"), "must be a finite number, got nan"),
        ("requests_per_day", "1e5", "PyYAML reads 1e5 as text"),
        ("latency_p95_slo_ms", -5, "must be > 0 ms, got -5"),
        ("needs_citations", "yes", "must be true or false, got 'yes'"),
        ("needs_citations", None, "must not be null"),
        ("regulated", 1, "must be true or false, got 1"),
        ("rag_quality_sufficient", "maybe", "must be true or false"),
        ("hosting", "cloud", "must be one of 'api', 'self-hosted'"),
    ],
)
def test_bad_fields_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Scenario.from_dict({field: value})
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ") and message in str(err.value)


def test_whole_floats_become_ints_and_unknown_fields_are_named() -> None:
    assert Scenario(labeled_examples=2000.0).labeled_examples == 2000  # JSON/YAML may write 2000.0
    with pytest.raises(ConfigError, match=r"^labelled_examples: unknown field \(did you mean 'labeled_examples'\?\)"):
        Scenario.from_dict({"labelled_examples": 10})
    with pytest.raises(ConfigError, match="^expected a mapping"):
        Scenario.from_dict(["stage", "prototype"])  # type: ignore[arg-type]


def test_load_json_and_yaml(tmp_path: Path) -> None:
    j = tmp_path / "s.json"
    j.write_text(json.dumps({"stage": "prototype", "kb_documents": 5}))
    y = tmp_path / "s.yml"
    y.write_text("stage: prototype\nknowledge_update_days: null\nneeds_citations: true\n")
    assert Scenario.from_json(j) == Scenario(stage="prototype", kb_documents=5)
    assert Scenario.from_file(y) == Scenario(stage="prototype", knowledge_update_days=None, needs_citations=True)


@pytest.mark.parametrize(
    ("name", "text", "error", "message"),
    [
        ("a.json", '{"stage": "prototype",}', DataError, r"a.json: invalid JSON at line 1"),
        ("a.yaml", "stage: [prototype\n", DataError, r"a.yaml: invalid YAML at line 2"),
        ("a.yaml", "- 1\n- 2\n", ConfigError, r"a.yaml: expected a mapping"),
        ("a.yaml", "", ConfigError, r"a.yaml: expected a mapping .* got NoneType"),
        ("a.yaml", "stage: prototype\ncitations: true\n", ConfigError, r"a.yaml: citations: unknown field"),
        ("a.yaml", "requests_per_day: -1\n", ConfigError, r"a.yaml: requests_per_day: must be > 0"),
        ("a.json", '{"regulated": "no"}', ConfigError, r"a.json: regulated: must be true or false"),
        ("a.toml", "stage = 1", DataError, r"a.toml: unknown scenario file type '.toml'"),
    ],
)
def test_bad_files_name_the_file_and_field(tmp_path: Path, name: str, text: str, error: type, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(error, match=message):
        Scenario.from_file(path)


def test_missing_file_and_missing_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="nope.json: no such file"):
        Scenario.from_file(tmp_path / "nope.json")
    (tmp_path / "s.yaml").write_text("stage: prototype\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(RagftError, match="reading YAML needs pyyaml"):
        Scenario.from_yaml(tmp_path / "s.yaml")


# ------------------------------------------------------------------------------------------
# rules
# ------------------------------------------------------------------------------------------

BASE = dict(stage="production", knowledge_update_days=None, kb_documents=500, labeled_examples=5_000,
            requests_per_day=5_000)


def _rec(**kw: object) -> Recommendation:
    return recommend(Scenario(**{**BASE, **kw}))


def test_few_labels_rule_fine_tuning_out() -> None:
    rec = _rec(labeled_examples=MIN_LABELED_EXAMPLES - 1, strict_format=True, style_transfer=True)
    assert rec.approach == "rag"
    assert any(r.dimension == "training data" and r.weight == 3 for r in rec.reasons)
    conflict = [r for r in rec.reasons if r.dimension == "conflict"]
    assert conflict and "output format" in conflict[0].why and "style" in conflict[0].why


def test_prototype_starts_with_rag() -> None:
    rec = _rec(stage="prototype", style_transfer=True, rag_quality_sufficient=False)
    assert rec.approach == "rag" and rec.reasons[0].dimension == "stage"


def test_behaviour_with_static_knowledge_gives_fine_tune() -> None:
    assert _rec(style_transfer=True).approach == "fine-tune"
    assert _rec(strict_format=True, specialized_jargon=True).approach == "fine-tune"


def test_behaviour_meeting_changing_or_cited_facts_gives_hybrid() -> None:
    assert _rec(strict_format=True, knowledge_update_days=1).approach == "hybrid"
    assert _rec(style_transfer=True, needs_citations=True).approach == "hybrid"
    assert _rec(specialized_jargon=True, regulated=True).approach == "hybrid"


def test_facts_alone_give_rag_unless_rag_measured_insufficient() -> None:
    assert _rec(needs_citations=True, knowledge_update_days=3).approach == "rag"
    assert _rec(needs_citations=True, rag_quality_sufficient=False).approach == "hybrid"


def test_crossover_points() -> None:
    # labels available and RAG quality insufficient
    assert _rec(rag_quality_sufficient=False).approach == "fine-tune"
    # cost at the modelled volume (static knowledge, clean labels): far past the crossover
    rec = _rec(requests_per_day=5_000_000)
    assert rec.approach == "fine-tune" and any(r.dimension == "cost at volume" for r in rec.reasons)
    assert _rec(requests_per_day=1_000).approach == "rag"
    # a p95 SLO that retrieval's overhead cannot meet (default percentiles: rag 2150, fine-tune 1906 ms)
    rec = _rec(latency_p95_slo_ms=2_000)
    assert rec.approach == "fine-tune" and any(r.dimension == "latency" for r in rec.reasons)
    assert rec.latency["meets"] == {"rag": False, "fine-tune": True, "hybrid": False}
    # output consistency
    assert _rec(strict_format=True).approach == "fine-tune"


def test_latency_that_nothing_meets_is_a_note_not_a_reason() -> None:
    rec = _rec(latency_p95_slo_ms=500)
    assert not any(r.dimension == "latency" for r in rec.reasons)
    assert any("No approach meets" in n for n in rec.notes)


def test_custom_latency_and_prices() -> None:
    fast = {a: {"p50": 100.0, "p95": 200.0, "p99": 300.0} for a in APPROACHES}
    assert _rec(latency_p95_slo_ms=2_000).approach == "fine-tune"
    assert recommend(Scenario(**BASE, latency_p95_slo_ms=2_000), latency=fast).approach == "rag"
    report = simulate(n=2_000)
    assert recommend(Scenario(**BASE), latency=report).latency["percentiles_ms"] == report.percentiles_ms
    assert _rec(requests_per_day=5_000_000).approach == "fine-tune"
    dear_custom_model = CostInputs(finetuned_token_price_multiplier=10)
    rec = recommend(Scenario(**{**BASE, "requests_per_day": 5_000_000}), cost_inputs=dear_custom_model)
    assert rec.approach == "rag" and rec.cost["requests_per_day"] == 5_000_000
    assert rec.cost["crossover_requests_per_day"] is None
    with pytest.raises(DataError, match="lack p95 for hybrid"):
        recommend(Scenario(), latency={"rag": {"p95": 1}, "fine-tune": {"p95": 1}})


def test_accepts_a_mapping() -> None:
    assert recommend({"stage": "prototype"}).approach == "rag"


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------


@given(scenarios)
def test_every_verdict_has_reasons_and_a_full_report(s: Scenario) -> None:
    rec = recommend(s, explain_changes=False)
    assert rec.approach in APPROACHES
    assert any(r.favours == rec.approach for r in rec.reasons)
    for r in rec.reasons:
        assert r.dimension and r.why and r.favours in APPROACHES
    md = rec.to_markdown()
    assert all(section in md for section in SECTIONS)
    assert json.loads(json.dumps(rec.to_dict()))["approach"] == rec.approach
    assert f'data-approach="{rec.approach}"' in rec.to_html()


@given(scenarios)
def test_irrelevant_changes_do_not_change_the_verdict(s: Scenario) -> None:
    verdict = recommend(s, explain_changes=False).approach
    # a latency target every approach meets is no constraint
    assert recommend(s.replace(latency_p95_slo_ms=3.6e6), explain_changes=False).approach == verdict
    # a round trip through a dict (and JSON) is the same scenario
    assert recommend(Scenario.from_dict(json.loads(json.dumps(s.to_dict()))), explain_changes=False).approach == verdict
    # once fine-tuning is ruled out (a prototype; too few labels and no measured fine-tuned quality;
    # or fine-tuning measured insufficient), volume, hosting and style no longer matter
    few_labels = s.labeled_examples < MIN_LABELED_EXAMPLES and s.finetune_quality_sufficient is not True
    if s.stage == "prototype" or few_labels or s.finetune_quality_sufficient is False:
        for change in ({"requests_per_day": 1e7}, {"hosting": "self-hosted"}, {"style_transfer": True}):
            assert recommend(s.replace(**change), explain_changes=False).approach == verdict


@given(scenarios)
def test_what_would_change_really_flips_the_verdict(s: Scenario) -> None:
    rec = recommend(s)
    for change in rec.what_would_change:
        assert change.current == getattr(s, change.field)
        flipped = recommend(s.replace(**{change.field: change.new}), explain_changes=False).approach
        assert flipped == change.approach != rec.approach


def test_what_would_change_finds_the_nearest_value() -> None:
    rec = _rec(labeled_examples=5_000)  # rag at low volume, static knowledge
    by_field = {c.field: c for c in rec.what_would_change}
    assert by_field["style_transfer"].new is True and by_field["style_transfer"].approach == "fine-tune"
    # a saving counts by its size: just past the crossover it is negligible and the verdict stays,
    # the nearest volume that flips it is the first candidate at which the saving counts
    cross = rec.cost["crossover_requests_per_day"]
    flip = by_field["requests_per_day"]
    assert flip.new > cross * 1.02 and flip.approach == "fine-tune"
    assert recommend(rec.scenario.replace(requests_per_day=round(cross * 1.02)), explain_changes=False).approach == "rag"
    assert recommend(rec.scenario.replace(requests_per_day=flip.new), explain_changes=False).approach == "fine-tune"


def test_html_escapes_text() -> None:
    html = recommend(Scenario()).to_html()
    assert "<strong>" in html and "<script" not in html and html.endswith("</section>")


# ------------------------------------------------------------------------------------------
# the browser path: standard library only
# ------------------------------------------------------------------------------------------


def test_decision_and_scalar_cost_run_without_numpy() -> None:
    code = textwrap.dedent(
        """
        import json, sys
        for name in ("numpy", "pandas", "matplotlib", "yaml"):
            sys.modules[name] = None
        from ragft_lib.decision import Scenario, recommend
        from ragft_lib.cost import CostInputs, crossover, monthly_cost, sensitivity
        rec = recommend(Scenario(knowledge_update_days=1, strict_format=True, labeled_examples=2000,
                                 needs_citations=True, hosting="self-hosted", latency_p95_slo_ms=2000))
        c = crossover(CostInputs(hosting="self-hosted"))
        rows = sensitivity(CostInputs())
        heavy = [m for m in ("numpy", "pandas", "matplotlib") if sys.modules.get(m) is not None]
        print(json.dumps([rec.approach, c.method, len(rows), monthly_cost(CostInputs(), "rag"), heavy,
                          len(rec.what_would_change), "<section" in rec.to_html()]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    approach, method, rows, rag, heavy, changes, html = json.loads(out.stdout)
    assert (approach, method, heavy, html) == ("hybrid", "piecewise closed-form", [], True)
    assert rows > 10 and rag > 0 and changes > 0


# -- cost inputs as a mapping; bundled example files ------------------------------------------


def test_recommend_takes_cost_inputs_as_a_mapping() -> None:
    scenario = Scenario(stage="production", labeled_examples=5000, knowledge_update_days=None)
    prices = {"gpu_hour_usd": 9.0, "training_gpu_hours": 40.0}
    by_mapping = recommend(scenario, cost_inputs=prices)
    by_object = recommend(scenario, cost_inputs=CostInputs.from_dict(prices))
    assert by_mapping.to_dict() == by_object.to_dict()
    with pytest.raises(ConfigError, match=r"^cost_inputs: gpu_hour: unknown field .*'gpu_hour_usd'"):
        recommend(scenario, cost_inputs={"gpu_hour": 9.0})
    with pytest.raises(ConfigError, match=r"^cost_inputs: must be CostInputs or a mapping of its fields, got str"):
        recommend(scenario, cost_inputs="cheap")


def test_bundled_examples_are_found_by_name_from_any_folder(tmp_path, monkeypatch) -> None:
    from ragft_lib.decision import examples_dir, find_scenario_file

    monkeypatch.chdir(tmp_path)  # no examples/ here
    found = find_scenario_file("support_bot_prototype")
    assert found == examples_dir() / "support_bot_prototype.yaml"
    assert find_scenario_file("examples/news_assistant.json") == examples_dir() / "news_assistant.json"
    own = tmp_path / "support_bot_prototype.yaml"
    own.write_text("stage: production\n")
    assert find_scenario_file("support_bot_prototype.yaml") == Path("support_bot_prototype.yaml")  # a file wins
    with pytest.raises(DataError, match=r"^nope.yaml: no such file, and no example scenario of that name "
                                        r"\(examples: .*support_bot_prototype"):
        find_scenario_file("nope.yaml")


# ------------------------------------------------------------------------------------------
# measurement over rules of thumb, savings by their size, every threshold documented
# ------------------------------------------------------------------------------------------

#: The issue's scenario: static knowledge, clean labels, RAG quality measured sufficient.
AT_SCALE = {"stage": "production", "knowledge_update_days": None, "labeled_examples": 5_000,
            "rag_quality_sufficient": True}


@pytest.mark.parametrize("requests_per_day", [20e6, 50e6])
def test_a_large_saving_at_scale_recommends_fine_tuning(requests_per_day: float) -> None:
    rec = recommend({**AT_SCALE, "requests_per_day": requests_per_day})
    assert rec.approach == "fine-tune", rec.summary
    m = rec.cost["monthly_usd"]
    cost = next(r for r in rec.reasons if r.dimension == "cost at volume")
    assert cost.favours == "fine-tune" and cost.weight == 3
    saving = m["rag"] - m["fine-tune"]
    assert f"${saving:,.0f}/month" in cost.why and f"{saving / m['rag']:.0%} of rag's bill" in cost.why
    # the RAG quality reason is still there, outweighed
    assert any(r.dimension == "measured quality" and r.favours == "rag" for r in rec.reasons)


def test_the_same_scenario_at_two_thousand_requests_a_day_stays_rag() -> None:
    rec = recommend({**AT_SCALE, "requests_per_day": 2_000})
    assert rec.approach == "rag", rec.summary
    assert not any(r.favours == "fine-tune" and r.dimension == "cost at volume" for r in rec.reasons)


def test_a_small_saving_does_not_count_as_a_vote() -> None:
    from ragft_lib.decision import DecisionThresholds, saving_weight

    t = DecisionThresholds()
    assert saving_weight(990, 1_000, t) == 0                      # 1 %: negligible
    assert saving_weight(1_000, 1_050, t) == 0                    # $50: negligible
    assert saving_weight(800, 1_000, t) == 1                      # 20 % but $200
    assert saving_weight(80_000, 100_000, t) == 2                 # 20 % and $20,000
    assert saving_weight(60_000, 100_000, t) == 3                 # 40 % and $40,000
    assert saving_weight(60_000, 100_000, t.replace(cost_usd_strong=50_000)) == 2
    # just past the crossover fine-tuning is cheaper, but by too little to count
    x = recommend({**AT_SCALE, "rag_quality_sufficient": None}, explain_changes=False)
    cross = x.cost["crossover_requests_per_day"]
    near = recommend({**AT_SCALE, "requests_per_day": cross * 1.01}, explain_changes=False)
    assert near.cost["monthly_usd"]["fine-tune"] < near.cost["monthly_usd"]["rag"]
    assert not any(r.dimension == "cost at volume" for r in near.reasons)
    assert any(n.startswith("Cost does not decide: fine-tune saves only") for n in near.notes)


def test_measured_fine_tuned_quality_overrides_the_label_gate() -> None:
    few = {"stage": "production", "knowledge_update_days": None, "labeled_examples": 48, "style_transfer": True}
    gated = recommend(few, explain_changes=False)
    assert gated.approach == "rag" and "no measured fine-tuned quality" in gated.summary
    assert "this book's rule of thumb" in next(r.why for r in gated.reasons if r.dimension == "training data")
    measured = recommend({**few, "finetune_quality_sufficient": True}, explain_changes=False)
    assert measured.approach == "fine-tune"
    assert not any(r.dimension == "training data" for r in measured.reasons)
    assert not any("overfits" in r.why for r in measured.reasons)
    # measured insufficient rules fine-tuning out whatever the label count
    bad = recommend({**few, "labeled_examples": 50_000, "finetune_quality_sufficient": False}, explain_changes=False)
    assert bad.approach == "rag" and "measured insufficient" in bad.summary
    # both measured sufficient: quality does not decide, cost and the other needs do
    both = recommend({**AT_SCALE, "finetune_quality_sufficient": True, "requests_per_day": 20e6}, explain_changes=False)
    assert both.approach == "fine-tune"
    assert any("both measured sufficient" in n for n in both.notes)


def test_prompt_only_when_measured_good_enough_and_nothing_needs_retrieval() -> None:
    base = {"stage": "production", "knowledge_update_days": None, "labeled_examples": 2_000}
    rec = recommend({**base, "prompt_quality_sufficient": True}, explain_changes=False)
    assert rec.approach == "prompt"
    assert rec.cost["monthly_usd"]["prompt"] > 0
    cited = recommend({**base, "prompt_quality_sufficient": True, "needs_citations": True}, explain_changes=False)
    assert cited.approach != "prompt"
    assert "prompt" in {c.approach for c in recommend(base).what_would_change}


def test_every_threshold_is_a_documented_parameter() -> None:
    from ragft_lib.decision import THRESHOLD_SOURCES, DecisionThresholds

    specs = DecisionThresholds.field_specs()
    assert specs and all("this book's assumption" in s["help"] or "Source:" in s["help"] for s in specs)
    assert set(THRESHOLD_SOURCES) == {s["name"] for s in specs}
    strict = DecisionThresholds(min_labeled_examples=10_000, clean_labeled_examples=10_000)
    s = {"stage": "production", "knowledge_update_days": None, "labeled_examples": 5_000, "style_transfer": True}
    assert recommend(s, explain_changes=False).approach == "fine-tune"
    assert recommend(s, thresholds=strict, explain_changes=False).approach == "rag"
    assert recommend(s, thresholds={"min_labeled_examples": 10_000, "clean_labeled_examples": 10_000},
                     explain_changes=False).approach == "rag"
    with pytest.raises(ConfigError, match="^min_labeled_examples: "):
        DecisionThresholds(min_labeled_examples=-1)
    with pytest.raises(ConfigError, match="^thresholds: "):
        recommend(s, thresholds=5)


def test_latency_is_labelled_simulated_or_measured() -> None:
    assert "Simulated p95" in recommend(Scenario()).to_markdown()
    measured = {a: {"p50": 100.0, "p95": 200.0, "p99": 300.0} for a in ("rag", "fine-tune", "hybrid")}
    md = recommend(Scenario(), latency=measured, latency_kind="measured").to_markdown()
    assert "Measured p95" in md and "Simulated" not in md
    with pytest.raises(ConfigError, match="^latency_kind: "):
        recommend(Scenario(), latency=measured, latency_kind="guessed")


def test_the_citation_of_the_label_gate_says_no_more_than_its_source() -> None:
    md = recommend({"labeled_examples": 48}).to_markdown()
    assert "overfits" not in md and "Biderman" not in md
