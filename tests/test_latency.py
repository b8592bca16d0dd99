"""Latency model: distributions, fitting from samples, simulation, SLA check and plots."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from ragft_lib.errors import ConfigError, DataError
from ragft_lib.latency import (
    DEFAULT_PERCENTILES_MS,
    STAGES,
    Empirical,
    LatencyProfile,
    LogNormal,
    plot_distributions,
    plot_tail,
    simulate,
    sla_check,
)
from ragft_lib.vocabulary import TRAINED_OR_RETRIEVED as APPROACHES  # the approaches the latency model simulates


def test_stored_default_percentiles_match_the_simulation() -> None:
    report = simulate(LatencyProfile(), n=200_000, seed=0)
    for a in APPROACHES:
        for q, v in DEFAULT_PERCENTILES_MS[a].items():
            assert report.percentiles_ms[a][q] == pytest.approx(v, rel=0.002), (a, q)


def test_simulation_is_seeded_and_ordered() -> None:
    a, b = simulate(n=5_000, seed=3), simulate(n=5_000, seed=3)
    assert a.percentiles_ms == b.percentiles_ms
    assert simulate(n=5_000, seed=4).percentiles_ms != a.percentiles_ms
    for approach in APPROACHES:
        p = a.percentiles_ms[approach]
        assert p["p50"] < p["p95"] < p["p99"]
    assert a.percentiles_ms["rag"]["p95"] > a.percentiles_ms["fine-tune"]["p95"]
    assert a.table()[0]["approach"] == "rag" and set(a.table()[0]) == {"approach", "p50", "p95", "p99"}


def test_composition_of_constant_stages_is_exact() -> None:
    const = {s: Empirical((v,)) for s, v in zip(STAGES, (0.01, 0.02, 0.03, 0.04, 1.0))}
    p = LatencyProfile(**const, rag_context_tokens=1000, prefill_s_per_context_token=0.0002,
                       finetuned_generate_factor=1.5)
    pct = simulate(p, n=1_000).percentiles_ms
    assert pct["fine-tune"]["p50"] == pytest.approx(1500.0)
    assert pct["rag"]["p50"] == pytest.approx(1000 + 100 + 200)
    assert pct["hybrid"]["p50"] == pytest.approx(1500 + 100 + 200)


def test_longer_context_slows_rag_only() -> None:
    short = simulate(LatencyProfile(rag_context_tokens=0), n=20_000).percentiles_ms
    long = simulate(LatencyProfile(rag_context_tokens=8_000), n=20_000).percentiles_ms
    assert long["rag"]["p50"] - short["rag"]["p50"] == pytest.approx(800, abs=1)
    assert long["fine-tune"] == short["fine-tune"]


def test_lognormal_quantiles_and_fit() -> None:
    d = LogNormal(0.2, 0.4)
    assert d.quantile(0.5) == pytest.approx(0.2)
    assert d.quantile(0.95) == pytest.approx(0.2 * math.exp(0.4 * 1.6448536), rel=1e-6)
    draws = d.sample(np.random.default_rng(0), 50_000)
    fit = LogNormal.fit(draws)
    assert fit.median_s == pytest.approx(0.2, rel=0.01) and fit.sigma == pytest.approx(0.4, rel=0.02)


def test_from_samples_empirical_and_parametric() -> None:
    timings = [{"embed_query": 0.01 + i * 1e-4, "search": 0.003, "generate": 1.0 + i / 100, "total": 9}
               for i in range(50)]
    p = LatencyProfile.from_samples(timings)
    assert isinstance(p.search, Empirical) and len(p.search.samples_s) == 50
    assert p.fetch_chunks == LatencyProfile().fetch_chunks  # absent stage keeps the default
    q = LatencyProfile.from_samples(timings, parametric=True, rag_context_tokens=500)
    assert isinstance(q.generate, LogNormal) and q.rag_context_tokens == 500
    r = LatencyProfile.from_samples(timings, samples_context_tokens=2000)  # measured with context
    assert min(r.generate.samples_s) == pytest.approx(1.0 - 2000 * 0.0001)


@pytest.mark.parametrize(
    ("timings", "message"),
    [
        ([], "non-empty list"),
        ({"search": 0.1}, "non-empty list"),
        ([{"total": 1.0}], "no sample has any of the stages"),
        ([{"search": 0.1}, {"generate": 1.0}], r"timings\[0\] has no 'generate'"),
        ([{"search": -0.1}], r"timings\[0\]\['search'\] must be a finite number of seconds >= 0, got -0.1"),
        ([{"search": "fast"}], r"timings\[0\]\['search'\] must be a finite number"),
        ([{"search": math.nan}], r"timings\[0\]\['search'\]"),
        ([{"search": 0.1}, "x"], r"timings\[1\] must be a dict"),
    ],
)
def test_from_samples_rejects_bad_timings(timings: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        LatencyProfile.from_samples(timings)  # type: ignore[arg-type]


def test_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="^median_s: must be > 0"):
        LogNormal(0.0)
    with pytest.raises(ConfigError, match="^sigma: must be >= 0"):
        LogNormal(0.1, -1)
    with pytest.raises(ConfigError, match="^samples_s: needs at least one sample"):
        Empirical(())
    with pytest.raises(ConfigError, match="^search: must be a LogNormal or Empirical"):
        LatencyProfile(search=0.01)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="^prefill_s_per_context_token: must be a finite number"):
        LatencyProfile(prefill_s_per_context_token=math.nan)
    with pytest.raises(ConfigError, match="^n: must be an integer >= 100"):
        simulate(n=10)
    with pytest.raises(DataError, match="at least 2 positive"):
        LogNormal.fit([0.1, 0.0])


def test_sla_check() -> None:
    pct = {"rag": {"p95": 900.0, "p99": 1500.0}, "fine-tune": {"p95": 700.0, "p99": 900.0}}
    assert sla_check(pct) == {"rag": True, "fine-tune": True}
    assert sla_check(pct, p95_ms=800) == {"rag": False, "fine-tune": True}
    assert sla_check(pct, p95_ms=1000, p99_ms=1000) == {"rag": False, "fine-tune": True}
    with pytest.raises(ConfigError, match="^p95_ms: must be > 0"):
        sla_check(pct, p95_ms=-1)
    report = simulate(n=2_000)
    assert report.sla_check(p95_ms=1e9) == {a: True for a in APPROACHES}


def test_plots() -> None:
    import matplotlib.pyplot as plt

    report = simulate(LatencyProfile(finetuned_generate_factor=0.8), n=5_000)
    ax = plot_distributions(report)
    curves = [line for line in ax.get_lines() if line.get_label() in APPROACHES]
    assert [c.get_label() for c in curves] == list(APPROACHES)  # one cumulative curve per approach
    for c in curves:
        y = c.get_ydata()
        assert y[0] == 0 and y[-1] == 1 and (np.diff(y) >= 0).all()
    styles = {(c.get_linestyle(), c.get_linewidth()) for c in curves}
    assert len(styles) == 3, "coinciding curves must stay distinguishable"
    same = simulate(LatencyProfile(finetuned_generate_factor=1.0), n=2_000)
    labels = [line.get_label() for line in plot_distributions(same).get_lines()]
    assert "hybrid (same as rag)" in labels
    ax = plot_tail(report, slo_ms=2000)
    assert [line.get_label() for line in ax.get_lines()[:3]] == list(APPROACHES)
    plt.close("all")


def _fake_measurements():
    return {
        "rag": [{"embed_query": 0.01, "search": 0.001, "fetch_chunks": 0.0001, "build_prompt": 0.002, "generate": 2.0},
                {"embed_query": 0.02, "search": 0.002, "fetch_chunks": 0.0002, "build_prompt": 0.003, "generate": 2.2}],
        "closed_book": [{"embed_query": 0.0, "search": 0.0, "fetch_chunks": 0.0, "build_prompt": 0.0001,
                         "generate": 1.0}] * 2,
        "context_tokens": [400, 420], "new_tokens": [20, 22],
        "prefill_rag_s": [0.5, 0.52], "prefill_closed_s": [0.1, 0.1],
    }


def test_profile_round_trip(tmp_path):
    import json

    from ragft_lib.latency import LatencyProfile, profile_from_measurements

    prof = profile_from_measurements(_fake_measurements(), generator="g")
    assert prof["generator"] == "g" and prof["rag_context_tokens"] == 410.0
    assert abs(prof["prefill_s_per_context_token"] - 0.001) < 1e-4
    assert abs(prof["tokens_per_s"] - 21 / 0.9) < 1.0
    path = tmp_path / "p.json"
    path.write_text(json.dumps(prof))
    p = LatencyProfile.from_profile(path)
    assert p.search.samples_s == (0.001, 0.002) and p.generate.samples_s == (1.0, 1.0)
    assert abs(p.extra_prefill_s - 0.41) < 0.05
    assert LatencyProfile.from_profile(prof, finetuned_generate_factor=1.2).finetuned_generate_factor == 1.2


def test_profile_errors(tmp_path):
    from ragft_lib.latency import LatencyProfile, profile_from_measurements

    with pytest.raises(DataError, match="no such latency profile"):
        LatencyProfile.from_profile(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(DataError, match="not a JSON"):
        LatencyProfile.from_profile(bad)
    with pytest.raises(DataError, match="not a ragft latency profile"):
        LatencyProfile.from_profile({"format": "x"})
    with pytest.raises(DataError, match="measure_timings"):
        profile_from_measurements({"rag": []})


@pytest.mark.parametrize(("samples", "message"), [
    (("a",), "sample 0 must be a number of seconds, got str 'a'"),
    ((0.1, None), "sample 1 must be a number of seconds, got NoneType None"),
    ((0.1, True), "sample 1 must be a number of seconds, got bool True"),
    ("0.1", "must be a sequence of seconds, got str '0.1'"),
    (0.1, "must be a sequence of seconds, got float 0.1"),
    ((), "needs at least one sample"),
    ((0.1, -0.2), "must be >= 0"),
])
def test_empirical_names_the_bad_sample(samples, message) -> None:
    with pytest.raises(ConfigError, match="^samples_s: " + re.escape(message)):
        Empirical(samples)


def test_empirical_takes_any_sequence_of_numbers() -> None:
    assert Empirical(np.array([0.01, 0.02, 0.03])).quantile(0.5) == pytest.approx(0.02)
    assert Empirical([1, 2]).samples_s == (1.0, 2.0)
