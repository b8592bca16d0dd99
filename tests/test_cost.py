"""Cost model: validation, formulas, crossover, sensitivity, grid and plots."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragft_lib.cost import (
    APPROACHES,
    DAYS_PER_MONTH,
    DEFAULT_PRICES,
    PRICES_AS_OF,
    CostInputs,
    cost_breakdown,
    cost_grid,
    cost_per_request,
    costs,
    crossover,
    monthly_cost,
    plot_costs,
    plot_sensitivity,
    sensitivity,
)
from ragft_lib.errors import ConfigError

FLOAT_FIELDS = [f.name for f in dataclasses.fields(CostInputs) if f.metadata["kind"] == "float"]

# ------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------


def _pos(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def cost_inputs(draw: st.DrawFn) -> CostInputs:
    prompt = draw(_pos(0, 5_000))
    return CostInputs(
        requests_per_day=draw(_pos(1, 1e7)),
        prompt_tokens_per_request=prompt,
        output_tokens_per_request=draw(_pos(0, 2_000)),
        rag_context_tokens_per_request=draw(_pos(0, 20_000)),
        instruction_tokens_saved_by_finetuning=draw(_pos(0, 1)) * prompt,
        knowledge_update_days=draw(st.none() | _pos(0.5, 400)),
        hosting=draw(st.sampled_from(["api", "self-hosted"])),
        price_per_1k_input_tokens_usd=draw(_pos(0, 0.02)),
        price_per_1k_output_tokens_usd=draw(_pos(0, 0.08)),
        finetuned_token_price_multiplier=draw(_pos(0.5, 4)),
        vector_store_usd_per_month=draw(_pos(0, 2_000)),
        gpu_hour_usd=draw(_pos(0, 10)),
        min_gpus=draw(st.sampled_from([0.0, 1.0, 2.0])),
        training_gpu_hours=draw(_pos(0, 100)),
        data_prep_usd=draw(_pos(0, 50_000)),
        finetuned_hosting_usd_per_month=draw(_pos(0, 3_000)),
        few_shot_tokens_per_request=draw(_pos(0, 5_000)),
        retrain_cadence_days=draw(st.none() | _pos(0.5, 400)),
        index_tokens=draw(_pos(0, 1e10)),
        reembed_tokens_per_update=draw(_pos(0, 1e9)),
        embedding_price_per_1k_tokens_usd=draw(_pos(0, 0.01)),
    )


# ------------------------------------------------------------------------------------------
# inputs and validation
# ------------------------------------------------------------------------------------------


def test_price_table_is_dated_and_made_of_fields() -> None:
    assert re.fullmatch(r"20\d\d-\d\d", PRICES_AS_OF)
    names = {f.name for f in dataclasses.fields(CostInputs)}
    assert set(DEFAULT_PRICES) <= names
    x = CostInputs()
    assert all(getattr(x, k) == v for k, v in DEFAULT_PRICES.items())


def test_from_prices_replaces_the_table() -> None:
    x = CostInputs.from_prices({"gpu_hour_usd": 1.5, "price_per_1k_input_tokens_usd": 0.001}, requests_per_day=7)
    assert (x.gpu_hour_usd, x.price_per_1k_input_tokens_usd, x.requests_per_day) == (1.5, 0.001, 7.0)
    assert x.price_per_1k_output_tokens_usd == DEFAULT_PRICES["price_per_1k_output_tokens_usd"]


def test_field_specs_are_complete_and_json_ready() -> None:
    specs = CostInputs.field_specs()
    assert [s["name"] for s in specs] == [f.name for f in dataclasses.fields(CostInputs)]
    for s in specs:
        assert s["label"] and s["help"].endswith(".") and s["kind"] in ("float", "int", "choice")
        if s["kind"] in ("float", "int"):
            assert s["unit"] and s["min"] == 0
    json.dumps(specs)


@pytest.mark.parametrize("name", FLOAT_FIELDS)
@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "3", True, [1]])
def test_every_numeric_field_rejects_bad_values(name: str, bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        CostInputs(**{name: bad})
    assert err.value.field == name
    assert str(err.value).startswith(f"{name}: ")


@pytest.mark.parametrize("name", ["requests_per_day", "knowledge_update_days", "amortisation_months",
                                  "prefill_tokens_per_gpu_second", "decode_tokens_per_gpu_second",
                                  "finetuned_token_price_multiplier"])
def test_zero_is_invalid_where_it_divides(name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}: must be > 0"):
        CostInputs(**{name: 0})


def test_other_bad_inputs() -> None:
    with pytest.raises(ConfigError, match="^hosting: must be one of 'api', 'self-hosted', got 'cloud'"):
        CostInputs(hosting="cloud")
    with pytest.raises(ConfigError, match="^instruction_tokens_saved_by_finetuning: must be <= "):
        CostInputs(prompt_tokens_per_request=100, instruction_tokens_saved_by_finetuning=200)
    with pytest.raises(ConfigError, match="^gpu_hour: unknown field .*'gpu_hour_usd'"):
        CostInputs.from_dict({"gpu_hour": 2})
    with pytest.raises(ConfigError, match="^prices.json: requests_per_day: must be > 0"):
        CostInputs.from_dict({"requests_per_day": -3}, source="prices.json")
    with pytest.raises(ConfigError, match="^approach: must be one of"):
        monthly_cost(CostInputs(), "prompting")
    with pytest.raises(ConfigError, match="^than: must differ"):
        crossover(CostInputs(), "rag", "rag")
    with pytest.raises(ConfigError, match="^relative_change: must be > 0"):
        sensitivity(CostInputs(), relative_change=0)
    with pytest.raises(ConfigError, match="^fields: unknown numeric field"):
        sensitivity(CostInputs(), fields=["hosting"])


def test_replace_validates() -> None:
    assert CostInputs().replace(knowledge_update_days=None).knowledge_update_days is None
    with pytest.raises(ConfigError, match="^gpu_hour_usd"):
        CostInputs().replace(gpu_hour_usd=-2)


# ------------------------------------------------------------------------------------------
# formulas
# ------------------------------------------------------------------------------------------


def test_breakdown_items_per_approach() -> None:
    x = CostInputs(knowledge_update_days=None)
    ft = cost_breakdown(x, "fine-tune")
    rag = cost_breakdown(x, "rag")
    assert ft["vector_store"] == ft["query_embedding"] == ft["vector_search"] == 0
    assert ft["retraining"] == 0  # static knowledge
    assert rag["training"] == rag["retraining"] == rag["custom_model_hosting"] == 0
    assert rag["vector_store"] == x.vector_store_usd_per_month
    assert cost_breakdown(x, "hybrid")["retraining"] == 0  # hybrid learns behaviour, not facts


def test_worked_example_by_hand() -> None:
    """Fine-tuned API cost at 10k requests/day, from the formulas written out."""
    x = CostInputs(requests_per_day=10_000, knowledge_update_days=30)
    tokens = (800 - 500) * 0.0004 / 1000 + 250 * 0.0016 / 1000
    per_month = 10_000 * DAYS_PER_MONTH
    training = 8 * 2.5
    expected = (2.0 * tokens * per_month + (training + 3_000) / 12
                + DAYS_PER_MONTH / 30 * (training + 300))
    assert monthly_cost(x, "fine-tune") == pytest.approx(expected)


def test_self_hosted_has_a_gpu_floor() -> None:
    x = CostInputs(hosting="self-hosted", requests_per_day=1, min_gpus=2)
    assert cost_breakdown(x, "rag")["generation_gpu"] == pytest.approx(2 * 2.5 * 24 * DAYS_PER_MONTH)
    assert cost_breakdown(x, "rag")["generation_tokens"] == 0


@given(cost_inputs(), st.sampled_from(APPROACHES), _pos(1.0, 100.0))
def test_cost_is_monotone_in_volume(x: CostInputs, approach: str, factor: float) -> None:
    low = monthly_cost(x, approach)
    high = monthly_cost(x.replace(requests_per_day=x.requests_per_day * factor), approach)
    assert high >= low - 1e-9 * max(1.0, low)


@given(cost_inputs(), st.sampled_from(APPROACHES))
def test_per_request_and_monthly_agree(x: CostInputs, approach: str) -> None:
    per_month = x.requests_per_day * DAYS_PER_MONTH
    assert cost_per_request(x, approach) * per_month == pytest.approx(monthly_cost(x, approach))
    assert sum(cost_breakdown(x, approach).values()) == pytest.approx(monthly_cost(x, approach))
    assert costs(x)[approach]["monthly_usd"] == pytest.approx(monthly_cost(x, approach))


# ------------------------------------------------------------------------------------------
# crossover
# ------------------------------------------------------------------------------------------


#: The largest volume CostInputs accepts (its field's ``max``): the curves are probed up to it.
MAX_REQUESTS = {s["name"]: s for s in CostInputs.field_specs()}["requests_per_day"]["max"]


def _diff(x: CostInputs, r: float, a: str = "fine-tune", b: str = "rag") -> float:
    y = x.replace(requests_per_day=min(r, MAX_REQUESTS))
    return monthly_cost(y, a) - monthly_cost(y, b)


@given(cost_inputs(), st.sampled_from([("fine-tune", "rag"), ("hybrid", "rag"), ("fine-tune", "hybrid")]))
def test_crossover_is_consistent_with_the_cost_curves(x: CostInputs, pair: tuple[str, str]) -> None:
    c = crossover(x, *pair)
    scale = 1e-7 * (monthly_cost(x, pair[0]) + monthly_cost(x, pair[1]) + 1)
    if c.requests_per_day is None:
        # never: at some high volume the candidate is still dearer
        assert any(_diff(x, r, *pair) > -scale for r in (1e7, 1e9, 1e11))
        return
    assert c.method in ("closed-form", "piecewise closed-form", "none")
    above = [r for r in (c.requests_per_day * k + 1e-6 for k in (1.001, 2, 10, 1000)) if r <= MAX_REQUESTS]
    assert all(_diff(x, r, *pair) <= scale * max(1.0, r / x.requests_per_day) for r in above)
    if 1e-3 < c.requests_per_day <= MAX_REQUESTS:
        assert _diff(x, c.requests_per_day * 0.999, *pair) > -scale * 10


def test_crossover_closed_form_by_hand() -> None:
    x = CostInputs(knowledge_update_days=None)
    rag, ft = cost_breakdown(x.replace(requests_per_day=1), "rag"), cost_breakdown(x.replace(requests_per_day=1), "fine-tune")
    fixed = lambda b: (b["vector_store"] + b["indexing"] + b["reembedding"] + b["training"] + b["retraining"]  # noqa: E731
                       + b["custom_model_hosting"])
    slope = lambda b: b["generation_tokens"] + b["query_embedding"] + b["vector_search"]  # noqa: E731
    expected = (fixed(ft) - fixed(rag)) / (slope(rag) - slope(ft))
    c = crossover(x)
    assert c.method == "closed-form"
    assert c.requests_per_day == pytest.approx(expected)


def test_crossover_never_and_always() -> None:
    never = crossover(CostInputs(finetuned_token_price_multiplier=10))
    assert never.never and never.requests_per_day is None and "never" in str(never)
    always = crossover(CostInputs(data_prep_usd=0, training_gpu_hours=0, knowledge_update_days=None,
                                  vector_store_usd_per_month=100))
    assert always.requests_per_day == 0.0 and "every volume" in str(always)


def test_self_hosted_crossover_is_piecewise() -> None:
    c = crossover(CostInputs(hosting="self-hosted", knowledge_update_days=None))
    assert c.method == "piecewise closed-form"
    assert _diff(CostInputs(hosting="self-hosted", knowledge_update_days=None), c.requests_per_day) == pytest.approx(0, abs=1e-6)


def test_faster_knowledge_changes_push_the_crossover_up() -> None:
    values = [crossover(CostInputs(knowledge_update_days=d)).requests_per_day for d in (90, 30, 7, 1)]
    assert values == sorted(values)


# ------------------------------------------------------------------------------------------
# sensitivity
# ------------------------------------------------------------------------------------------


def test_sensitivity_rows_are_sorted_and_true() -> None:
    x = CostInputs()
    rows = sensitivity(x, relative_change=0.25)
    assert [r.swing for r in rows] == sorted((r.swing for r in rows), reverse=True)
    top = rows[0]
    assert crossover(x.replace(**{top.field: top.low_value})).requests_per_day == top.crossover_low
    assert crossover(x.replace(**{top.field: top.high_value})).requests_per_day == top.crossover_high
    assert "requests_per_day" not in {r.field for r in rows}


def test_sensitivity_skips_invalid_variations() -> None:
    # raising the saved tokens above the prompt is invalid: that field is skipped, not an error
    x = CostInputs(prompt_tokens_per_request=500, instruction_tokens_saved_by_finetuning=500)
    fields = {r.field for r in sensitivity(x)}
    assert "instruction_tokens_saved_by_finetuning" not in fields and "prompt_tokens_per_request" not in fields


# ------------------------------------------------------------------------------------------
# grid
# ------------------------------------------------------------------------------------------


@given(st.lists(cost_inputs(), min_size=1, max_size=8))
def test_grid_equals_the_scalar_functions(xs: list[CostInputs]) -> None:
    cols = {f.name: [getattr(x, f.name) for x in xs] for f in dataclasses.fields(CostInputs)}
    cols["knowledge_update_days"] = [math.inf if v is None else v for v in cols["knowledge_update_days"]]
    g = cost_grid(**cols)
    for i, x in enumerate(xs):
        for a in APPROACHES:
            assert g[a][i] == pytest.approx(monthly_cost(x, a), rel=1e-9, abs=1e-9)
        assert APPROACHES[g["cheapest"][i]] in APPROACHES
        c = crossover(x).requests_per_day
        assert g["crossover_requests_per_day"][i] == pytest.approx(math.inf if c is None else c, rel=1e-9)


def test_grid_broadcasts() -> None:
    g = cost_grid(requests_per_day=np.geomspace(1e2, 1e7, 6)[:, None], hosting=np.array(["api", "self-hosted"]))
    assert g["rag"].shape == g["crossover_requests_per_day"].shape == (6, 2)
    assert APPROACHES[g["cheapest"][0, 0]] == "rag"


def test_gpus_always_on_are_whole() -> None:
    with pytest.raises(ConfigError, match=r"^min_gpus: must be a whole number, got 0.5"):
        CostInputs(min_gpus=0.5)
    with pytest.raises(ConfigError, match=r"^min_gpus: must be >= 0 GPUs, got -1"):
        CostInputs(min_gpus=-1)
    assert CostInputs(min_gpus=2.0).min_gpus == 2 and isinstance(CostInputs(min_gpus=2.0).min_gpus, int)
    assert CostInputs(min_gpus=0).min_gpus == 0  # scale to zero: no floor
    with pytest.raises(ConfigError, match=r"^min_gpus: must be a whole number, got 1.5"):
        cost_grid(min_gpus=np.array([1.0, 1.5]))


def test_functions_take_inputs_or_a_mapping_and_name_anything_else() -> None:
    assert costs({"requests_per_day": 5000}) == costs(CostInputs(requests_per_day=5000))
    assert crossover({"hosting": "self-hosted"}).requests_per_day == crossover(
        CostInputs(hosting="self-hosted")).requests_per_day
    for fn in (costs, crossover, sensitivity, cost_per_request, monthly_cost, cost_breakdown, plot_costs):
        with pytest.raises(ConfigError, match=r"^inputs: must be CostInputs or a mapping of its fields, got str 'nope'"):
            fn("nope")
    with pytest.raises(ConfigError, match=r"^inputs: gpu_hour: unknown field"):
        costs({"gpu_hour": 2})
    with pytest.raises(ConfigError, match=r"^base: must be CostInputs or a mapping"):
        cost_grid(42, requests_per_day=[1.0])


def test_grid_rejects_bad_arrays() -> None:
    with pytest.raises(ConfigError, match=r"^gpu_hour_usd: must be >= 0 USD/hour, got -1.0"):
        cost_grid(gpu_hour_usd=np.array([1.0, -1.0]))
    with pytest.raises(ConfigError, match="^requests_per_day: must be a finite number, got nan"):
        cost_grid(requests_per_day=np.array([1.0, np.nan]))
    with pytest.raises(ConfigError, match="^hosting: must be 'api' or 'self-hosted', got 'gpu'"):
        cost_grid(hosting=np.array(["api", "gpu"]))
    with pytest.raises(ConfigError, match="^bogus: unknown field"):
        cost_grid(bogus=[1.0])
    with pytest.raises(ConfigError, match="^instruction_tokens_saved_by_finetuning"):
        cost_grid(prompt_tokens_per_request=np.array([100.0]))


# ------------------------------------------------------------------------------------------
# plots
# ------------------------------------------------------------------------------------------


def test_plots_draw_curves_and_bars() -> None:
    import matplotlib.pyplot as plt

    ax = plot_costs(CostInputs())
    assert [line.get_label() for line in ax.get_lines()[:4]] == list(APPROACHES)
    x = CostInputs()
    ax2 = plot_sensitivity(sensitivity(x), baseline=crossover(x).requests_per_day, top=5)
    assert len(ax2.patches) == 5
    plt.close("all")


# ------------------------------------------------------------------------------------------
# prompt-only, cost over time, inputs from measurements
# ------------------------------------------------------------------------------------------


def test_prompt_is_the_base_model_with_examples_and_nothing_else() -> None:
    from ragft_lib.vocabulary import APPROACHES as VOCABULARY_APPROACHES

    assert "prompt" in APPROACHES and APPROACHES is VOCABULARY_APPROACHES
    x = CostInputs(requests_per_day=1_000, few_shot_tokens_per_request=600)
    b = cost_breakdown(x, "prompt")
    assert {k for k, v in b.items() if v > 0} == {"generation_tokens"}   # no index, no training
    per_request = ((x.prompt_tokens_per_request + 600) * x.price_per_1k_input_tokens_usd
                   + x.output_tokens_per_request * x.price_per_1k_output_tokens_usd) / 1000
    assert b["generation_tokens"] == pytest.approx(per_request * 1_000 * DAYS_PER_MONTH)
    more = x.replace(few_shot_tokens_per_request=1_200)
    assert monthly_cost(more, "prompt") > monthly_cost(x, "prompt")
    assert monthly_cost(more, "rag") == monthly_cost(x, "rag")          # examples only in the prompt line


def test_grid_cheapest_leaves_prompt_out_unless_asked() -> None:
    g = cost_grid(requests_per_day=np.array([1e3]), knowledge_update_days=None)
    assert APPROACHES[g["cheapest"][0]] == "rag"
    g = cost_grid(requests_per_day=np.array([1e3]), knowledge_update_days=None, among=APPROACHES)
    assert APPROACHES[g["cheapest"][0]] == "prompt"
    with pytest.raises(ConfigError, match="^among: must be one of"):
        cost_grid(among=("rag", "gpt"))


def test_reembedding_and_batched_retraining_are_priced() -> None:
    x = CostInputs(knowledge_update_days=1, reembed_tokens_per_update=1e9, embedding_price_per_1k_tokens_usd=0.0001)
    assert cost_breakdown(x, "rag")["reembedding"] == pytest.approx(DAYS_PER_MONTH * 1e9 * 0.0001 / 1000)
    assert cost_breakdown(x, "fine-tune")["reembedding"] == 0
    batched = x.replace(retrain_cadence_days=30)
    assert cost_breakdown(batched, "fine-tune")["retraining"] == pytest.approx(
        cost_breakdown(x, "fine-tune")["retraining"] / 30)
    # batching never retrains more often than the knowledge changes
    slow = CostInputs(knowledge_update_days=90, retrain_cadence_days=7)
    assert cost_breakdown(slow, "fine-tune")["retraining"] == cost_breakdown(slow.replace(retrain_cadence_days=None),
                                                                            "fine-tune")["retraining"]


def test_cumulative_costs_pay_one_offs_upfront_and_events_when_they_happen() -> None:
    from ragft_lib.cost import cumulative_costs

    x = CostInputs(requests_per_day=10_000, knowledge_update_days=61, retrain_cadence_days=None)
    c = cumulative_costs(x, horizon_months=4)
    training = x.training_gpu_hours * x.gpu_hour_usd
    upfront = training + x.data_prep_usd
    assert c["upfront"]["fine-tune"] == pytest.approx(upfront)
    steps = np.diff([0.0] + c["fine-tune"])
    running = c["running"]["fine-tune"]
    assert steps[0] == pytest.approx(upfront + running)
    # each month pays its running cost plus the retrainings that happen in it (days 61 and 122)
    events = [round((s - running) / (training + x.retrain_data_prep_usd)) for s in steps[1:]]
    assert sum(events) == math.floor(4 * DAYS_PER_MONTH / 61) and set(events) <= {0, 1}
    # the monthly model and the cumulative one agree over the amortisation period, events averaged out
    long = cumulative_costs(x.replace(knowledge_update_days=None), horizon_months=12)
    assert long["fine-tune"][-1] == pytest.approx(12 * monthly_cost(x.replace(knowledge_update_days=None), "fine-tune"))


def test_break_even_month_never_and_beyond_the_horizon() -> None:
    from ragft_lib.cost import break_even, cumulative_costs

    big = CostInputs(requests_per_day=20_000_000, knowledge_update_days=None)
    b = break_even(big)
    c = cumulative_costs(big)
    assert b.month is not None and all(c["fine-tune"][i] <= c["rag"][i] for i in range(b.month - 1, 36))
    assert "breaks even" in str(b) and b.to_dict()["month"] == b.month
    never = break_even(big.replace(requests_per_day=1_000_000, rag_context_tokens_per_request=254))
    assert never.never and never.saving_usd_per_month < 0 and "never" in str(never)
    later = break_even(big.replace(requests_per_day=2_000, rag_context_tokens_per_request=254), horizon_months=12)
    assert later.month is None and later.estimate_month > 12 and not later.never
    assert f"about month {later.estimate_month}" in str(later)


@pytest.mark.parametrize("horizon", [0, -3, 2.5, 601, "a year"])
def test_a_bad_horizon_names_the_field(horizon: object) -> None:
    from ragft_lib.cost import break_even, cumulative_costs

    for fn in (cumulative_costs, break_even):
        with pytest.raises(ConfigError, match="^horizon_months: "):
            fn(CostInputs(), horizon_months=horizon)


def test_the_scalar_cost_path_imports_only_the_standard_library() -> None:
    import subprocess
    import sys

    code = ("import sys\nfor m in ('numpy', 'pandas', 'matplotlib'): sys.modules[m] = None\n"
            "from ragft_lib.cost import CostInputs, break_even, cost_inputs_from_measurements, cumulative_costs\n"
            "m = cost_inputs_from_measurements({'context_tokens': 254})\n"
            "print(break_even(m.inputs.replace(requests_per_day=2e7, knowledge_update_days=None)).month)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().isdigit() or out.stdout.strip() == "None"


def test_inputs_from_measurements_carry_their_provenance() -> None:
    from ragft_lib.cost import PROVENANCE, cost_inputs_from_measurements
    from ragft_lib.experiments import ContextTokens

    ctx = ContextTokens(n=100, mean=254.0, p50=251.0, p95=282.0, low=220, high=294, k=2, context_budget=512)
    m = cost_inputs_from_measurements(
        {"context_tokens": ctx, "few_shot_tokens": {"value": 310, "source": "chapter 32's few-shot prompt"},
         "throughput": {"prefill_tokens_per_s": 900.0, "decode_tokens_per_s": 30.0}},
        given={"requests_per_day": 2e6, "knowledge_update_days": None})
    x = m.inputs
    assert (x.rag_context_tokens_per_request, x.few_shot_tokens_per_request) == (254.0, 310.0)
    assert (x.prefill_tokens_per_gpu_second, x.decode_tokens_per_gpu_second) == (900.0, 30.0)
    assert set(m.provenance.values()) <= set(PROVENANCE)
    assert set(m.of("measured")) == {"few_shot_tokens_per_request", "rag_context_tokens_per_request",
                                  "prefill_tokens_per_gpu_second", "decode_tokens_per_gpu_second"}
    assert set(m.of("given")) == {"requests_per_day", "knowledge_update_days"}
    assert "gpu_hour_usd" in m.of("assumed")
    assert "100 measured requests" in m.sources["rag_context_tokens_per_request"]
    rows = {r["input"]: r for r in m.table()}
    assert rows["few_shot_tokens_per_request"]["source"].endswith("chapter 32's few-shot prompt")
    assert rows["gpu_hour_usd"]["provenance"] == "assumed"
    deciding = m.deciding_assumptions()
    assert all(m.provenance[f] == "assumed" for f in deciding)


@pytest.mark.parametrize(("measurements", "error", "message"), [
    ({}, "DataError", "lack context_tokens"),
    ({"few_shot_tokens": 300}, "DataError", "lack context_tokens"),
    ({"context_tokens": 254, "throughput": {"prefill_tokens_per_s": 900}}, "DataError",
     "throughput lacks decode_tokens_per_s"),
    ({"context_tokens": 254, "throughput": 5}, "DataError", "throughput must be a mapping"),
    ({"context_tokens": "many"}, "DataError", "context_tokens must be a finite number"),
    ({"context_tokens": {"n": 3}}, "DataError", "context_tokens has no 'value'"),
    ({"context_tokens": 254, "latency_ms": 3}, "ConfigError", "unknown measurement 'latency_ms'"),
])
def test_inputs_from_measurements_name_what_is_missing(measurements: dict, error: str, message: str) -> None:
    from ragft_lib import errors
    from ragft_lib.cost import cost_inputs_from_measurements

    with pytest.raises(getattr(errors, error), match=message):
        cost_inputs_from_measurements(measurements)
    with pytest.raises(ConfigError, match="^rag_context_tokens_per_request: is measured"):
        cost_inputs_from_measurements({"context_tokens": 254}, given={"rag_context_tokens_per_request": 9})


def test_context_for_crossover_is_where_the_order_flips() -> None:
    from ragft_lib.cost import context_for_crossover

    x = CostInputs(requests_per_day=1_000_000)
    t = context_for_crossover(x)
    below, above = x.replace(rag_context_tokens_per_request=t * 0.99), x.replace(rag_context_tokens_per_request=t * 1.01)
    assert monthly_cost(below, "fine-tune") > monthly_cost(below, "rag")
    assert monthly_cost(above, "fine-tune") < monthly_cost(above, "rag")
    gpu = x.replace(hosting="self-hosted", knowledge_update_days=None, requests_per_day=1e7)
    assert context_for_crossover(gpu) == 0.0            # cheaper even without context: the saved instructions
    assert monthly_cost(gpu.replace(rag_context_tokens_per_request=0), "fine-tune") < monthly_cost(
        gpu.replace(rag_context_tokens_per_request=0), "rag")
    assert context_for_crossover(x.replace(finetuned_token_price_multiplier=100), max_tokens=10_000) is None
    with pytest.raises(ConfigError, match="^cheaper: "):
        context_for_crossover(x, cheaper="lora")
