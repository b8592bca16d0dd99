"""Measured latency: quantile intervals, how many samples a tail needs, paired differences, SLO
verdicts, and the run of the four systems (synthetic records; the timing itself is a slow test)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ragft_lib.errors import ConfigError, DataError
from ragft_lib.experiments.latency import (
    INTERACTIVE_SLOS,
    LATENCY_SYSTEMS,
    TIMED_STAGES,
    LatencyRun,
    LatencyRunSettings,
    measure_latency,
)
from ragft_lib.latency import (
    LatencySLO,
    QuantileEstimate,
    paired_median_difference,
    quantile_ci,
    samples_needed,
)


def test_quantile_ci_contains_the_estimate_and_the_bootstrap_stays_inside_the_data() -> None:
    xs = np.random.default_rng(0).lognormal(0, 0.5, 300).tolist()
    for q in (0.5, 0.95, 0.99):
        e = quantile_ci(xs, q)
        assert e.n == 300 and e.q == q and e.name == f"p{round(100 * q)}"
        assert e.value == pytest.approx(float(np.quantile(xs, q)))
        assert e.low <= e.value <= e.high <= max(xs)
        assert e.exact_low <= e.value
    assert quantile_ci(xs, 0.5).bounded and quantile_ci(xs, 0.95).bounded
    assert not quantile_ci(xs, 0.99).bounded            # 300 < 368: the p99's upper end is open
    assert quantile_ci(xs, 0.99).interval[1] == math.inf
    assert quantile_ci(xs, 0.5, seed=1).value == quantile_ci(xs, 0.5, seed=2).value


def test_quantile_ci_is_reproducible_and_narrows_with_n() -> None:
    rng = np.random.default_rng(1)
    small, large = rng.lognormal(0, 0.5, 100).tolist(), rng.lognormal(0, 0.5, 2000).tolist()
    assert quantile_ci(small, 0.95, seed=3) == quantile_ci(small, 0.95, seed=3)
    w_small = quantile_ci(small, 0.5).high - quantile_ci(small, 0.5).low
    w_large = quantile_ci(large, 0.5).high - quantile_ci(large, 0.5).low
    assert w_large < w_small / 2


def test_distribution_free_interval_covers_the_true_quantile() -> None:
    """The order-statistic interval's coverage, checked by simulation against a known lognormal p95."""
    rng = np.random.default_rng(7)
    true_p95 = math.exp(0.5 * 1.6448536269514722)
    hits = 0
    reps = 200
    for _ in range(reps):
        e = quantile_ci(rng.lognormal(0, 0.5, 150).tolist(), 0.95, n_resamples=100)
        hits += e.exact_low <= true_p95 <= e.exact_high
    assert hits / reps >= 0.9   # nominal 95 %, exact binomial coverage is at least that in expectation


def test_samples_needed_matches_its_definition_and_quantile_ci() -> None:
    s = samples_needed(0.99, above=10)
    assert (s.for_finite_ci, s.for_above, s.n) == (368, 1000, 1000)
    assert 0.99 ** s.for_finite_ci <= 0.025 < 0.99 ** (s.for_finite_ci - 1)
    assert samples_needed(0.95, above=1).for_finite_ci == 72 and samples_needed(0.95, above=1).for_above == 20
    assert samples_needed(0.5).for_finite_ci == 6
    xs = np.random.default_rng(2).lognormal(0, 0.4, 400)
    for q in (0.95, 0.99):
        n = samples_needed(q).for_finite_ci
        assert quantile_ci(xs[:n].tolist(), q, n_resamples=100).bounded
        assert not quantile_ci(xs[: n - 1].tolist(), q, n_resamples=100).bounded


def test_paired_median_difference() -> None:
    base = np.random.default_rng(3).lognormal(0, 0.3, 200)
    d, lo, hi = paired_median_difference((base + 50).tolist(), base.tolist())
    assert d == pytest.approx(50) and lo == pytest.approx(50) and hi == pytest.approx(50)  # a constant shift
    noisy = base * np.random.default_rng(4).uniform(0.9, 1.1, 200)
    d, lo, hi = paired_median_difference(noisy.tolist(), base.tolist())
    assert lo <= d <= hi and lo < 0.1 and hi > -0.1
    with pytest.raises(ConfigError, match="^b: must have as many timings as a"):
        paired_median_difference([1.0, 2.0], [1.0])


@pytest.mark.parametrize("samples, message", [
    ([], "samples: needs at least one timing, got none"),
    (["1.0", 2.0], "samples: timing 0 must be a number, got str"),
    ([1.0, True], "samples: timing 1 must be a number, got bool"),
    ([1.0, float("nan")], "samples: timing 1 must be finite and >= 0"),
    ([1.0, -2.0], "samples: timing 1 must be finite and >= 0"),
    ("123", "samples: must be a sequence of timings, got str"),
    (None, "samples: must be a sequence of timings, got NoneType"),
    ({"a": 1.0}, "samples: must be a sequence of timings, got dict"),
])
def test_quantile_ci_names_bad_timings(samples: object, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")):
        quantile_ci(samples, 0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("q", [0, 1, 1.5, -0.1, 99, True, "0.99", None])
def test_quantile_level_out_of_range(q: object) -> None:
    with pytest.raises(ConfigError, match="^q: must be a quantile level strictly between 0 and 1"):
        quantile_ci([1.0, 2.0, 3.0], q)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="^q: "):
        samples_needed(q)  # type: ignore[arg-type]


def test_other_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="^confidence: "):
        quantile_ci([1.0, 2.0], 0.5, confidence=1.0)
    with pytest.raises(ConfigError, match="^n_resamples: "):
        quantile_ci([1.0, 2.0], 0.5, n_resamples=10)
    with pytest.raises(ConfigError, match="^above: "):
        samples_needed(0.99, above=0)
    with pytest.raises(ConfigError, match="^a: needs at least one timing"):
        paired_median_difference([], [])


def test_verdicts_follow_the_wider_interval() -> None:
    e = QuantileEstimate(0.95, 800.0, 700.0, 900.0, 690.0, 950.0, 300, 0.95)
    assert e.verdict(1000) == "meets" and e.verdict(600) == "misses" and e.verdict(920) == "cannot tell"
    # the bootstrap alone (<= 900) would say "meets" at 920; the order statistics reach 950
    open_top = QuantileEstimate(0.99, 900.0, 800.0, 990.0, 790.0, math.inf, 200, 0.95)
    assert open_top.verdict(10_000) == "cannot tell" and open_top.verdict(500) == "misses"
    with pytest.raises(ConfigError, match="^target: "):
        e.verdict(0)


def test_latency_slo_is_validated() -> None:
    assert LatencySLO(0.99, 2000, "s").name == "p99"
    with pytest.raises(ConfigError, match="^scenario: "):
        LatencySLO(0.99, 2000, "")
    with pytest.raises(ConfigError, match="^target_ms: "):
        LatencySLO(0.95, 0, "s")
    with pytest.raises(ConfigError, match="^quantile: "):
        LatencySLO(1.0, 100, "s")
    with pytest.raises(ConfigError, match="^estimate: must be a QuantileEstimate of the p99"):
        LatencySLO(0.99, 2000, "s").verdict(QuantileEstimate(0.95, 800.0, 700.0, 900.0, 690.0, 950.0, 300, 0.95))
    # the book's scenario targets are declared constants, not derived from any measurement
    assert [(s.name, s.target_ms) for s in INTERACTIVE_SLOS] == [("p95", 1000.0), ("p99", 2000.0)]


def test_run_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="^n_requests: "):
        LatencyRunSettings(n_requests=0)
    with pytest.raises(ConfigError, match="^new_tokens: "):
        LatencyRunSettings(new_tokens=0)
    with pytest.raises(ConfigError, match="^reuse: "):
        measure_latency(reuse="yes")  # type: ignore[arg-type]


def _run(n: int = 120, max_load: float = 0.5, cpus: int = 2) -> LatencyRun:
    rng = np.random.default_rng(5)
    base_s = {"closed-book": 0.40, "lora-aug": 0.48, "rag": 0.70, "lora-aug+rag": 1.30}
    records = []
    for i in range(n):
        slow = rng.lognormal(0, 0.1)  # one moment of the machine, shared by the round
        for s in LATENCY_SYSTEMS:
            stages = {st: 0.0 for st in TIMED_STAGES}
            stages.update(prefill=0.1 * slow, decode=base_s[s] * slow * rng.uniform(0.97, 1.03))
            records.append({"system": s, "request": i, "load1": 0.3, "new_tokens": 12, "prompt_tokens": 40,
                            **stages, "total": sum(stages.values())})
    return LatencyRun(settings={"n_requests": n, "new_tokens": 12}, machine={"cpu_count": cpus},
                      load={"start": [0.1] * 3, "end": [0.2] * 3, "max_load1": max_load}, wall_s=1.0,
                      records=records, measured_at="2026-01-01T00:00:00Z")


def test_latency_run_statistics_from_records() -> None:
    run = _run()
    assert all(run.n(s) == 120 for s in LATENCY_SYSTEMS)
    qs = run.quantiles()
    assert set(qs) == set(LATENCY_SYSTEMS) and set(qs["rag"]) == {"p50", "p95", "p99"}
    assert qs["rag"]["p50"].value > qs["closed-book"]["p50"].value
    d, lo, hi = run.difference("rag", "closed-book")
    assert 0 < lo <= d <= hi          # paired rounds: the shared slowness cancels
    v = run.verdicts()
    assert v["closed-book"]["p99"] == "cannot tell"   # 120 requests cannot bound a p99
    assert v["closed-book"]["p95"] == "meets" and v["lora-aug+rag"]["p95"] == "misses"   # ~0.6 s and ~1.7 s
    pct = run.percentiles_ms()
    assert set(pct) == {"rag", "fine-tune", "hybrid"} and pct["hybrid"]["p50"] > pct["fine-tune"]["p50"]
    medians = run.stage_medians_ms()
    assert list(medians.index) == list(LATENCY_SYSTEMS) and medians.loc["rag", "total"] == pytest.approx(
        qs["rag"]["p50"].value, rel=1e-9)
    assert not run.overloaded and run.warning == ""
    again = LatencyRun.from_dict(run.to_dict())
    assert again.totals_ms("rag") == run.totals_ms("rag") and again.reused is False
    with pytest.raises(ConfigError, match="^system: must be one of"):
        run.totals_ms("gpt")
    with pytest.raises(DataError, match="not a latency run"):
        LatencyRun.from_dict({"settings": {}})


def test_a_busy_machine_is_reported() -> None:
    run = _run(n=10, max_load=7.5, cpus=2)
    assert run.overloaded and "7.5 on 2 cores" in run.warning


@pytest.mark.slow
def test_measure_latency_times_equal_answers_stage_by_stage(tmp_path, monkeypatch) -> None:
    # stored runs go to tmp_path (measured live, not reused); models and the adapter come from the usual caches
    monkeypatch.setattr("ragft_lib.experiments.cache.result_path", lambda name, key: tmp_path / f"{name}-{key}.json")
    run = measure_latency(n_requests=3, new_tokens=4, warmup=1)
    f = run.frame()
    assert len(f) == 3 * len(LATENCY_SYSTEMS) and (f["new_tokens"] == 4).all()
    for s in LATENCY_SYSTEMS:
        assert run.n(s) == 3
    rag, alone = f[f["system"] == "rag"], f[f["system"] == "closed-book"]
    assert (rag["embed_query"] > 0).all() and (alone["embed_query"] == 0).all()
    assert (rag["prompt_tokens"] > alone["prompt_tokens"].max()).all()
    assert ((f["prefill"] > 0) & (f["decode"] > 0)).all()
    assert run.machine["cpu_count"] >= 1 and len(run.load["start"]) == 3 and not run.reused
    again = measure_latency(n_requests=3, new_tokens=4, warmup=1, reuse=True)
    assert again.reused and again.totals_ms("rag") == run.totals_ms("rag")
    assert len(list(tmp_path.glob("latency-*.json"))) == 1
